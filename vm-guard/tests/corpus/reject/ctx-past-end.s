# expect: load-out-of-context
# The context is 240 bytes; an 8-byte load at 240 reads past it.
ldxdw r0, [r1+240]
exit
