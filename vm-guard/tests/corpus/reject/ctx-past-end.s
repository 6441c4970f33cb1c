# expect: out-of-bounds
# The context is 224 bytes; an 8-byte load at 224 reads past it.
ldxdw r0, [r1+224]
exit
