# expect: rbpf-divergence
ldxdw r2, [r1+8]
mov32 r0, r2
exit
