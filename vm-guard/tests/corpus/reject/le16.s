# expect: rbpf-divergence
ldxdw r0, [r1+8]
le16 r0
exit
