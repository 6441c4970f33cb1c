# expect: out-of-bounds
# A 4-byte load at 222 starts inside but ends 2 bytes past the context.
ldxw r0, [r1+222]
exit
