# The last 8 bytes of the context: objects[7].size.
ldxdw r0, [r1+216]
and r0, 0
exit
