# expect: load-out-of-context
ldxdw r0, [r1-32768]
exit
