# expect: load-out-of-context
# A 4-byte load at 238 starts inside but ends 2 bytes past the context.
ldxw r0, [r1+238]
exit
