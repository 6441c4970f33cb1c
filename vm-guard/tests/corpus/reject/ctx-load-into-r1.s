# expect: not-a-pointer
ldxdw r1, [r1+8]
ldxdw r0, [r1+0]
exit
