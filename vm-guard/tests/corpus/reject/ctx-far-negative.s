# expect: out-of-bounds
ldxdw r0, [r1-32768]
exit
