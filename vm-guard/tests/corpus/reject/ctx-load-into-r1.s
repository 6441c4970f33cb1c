# expect: r1-overwritten
ldxdw r1, [r1+8]
ldxdw r0, [r1+0]
exit
