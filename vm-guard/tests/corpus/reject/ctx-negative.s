# expect: load-out-of-context
# A negative offset reads before the context.
ldxb r0, [r1-1]
exit
