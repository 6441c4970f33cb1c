# expect: out-of-bounds
# A negative offset reads before the context.
ldxb r0, [r1-1]
exit
