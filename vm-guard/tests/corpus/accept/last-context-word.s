# The last 8 bytes of the context: object.size, the entry's own object (version 2).
ldxdw r0, [r1+232]
and r0, 0
exit
