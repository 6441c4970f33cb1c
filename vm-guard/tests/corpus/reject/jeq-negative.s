# expect: rbpf-divergence
ldxdw r2, [r1+8]
mov r0, 0
jeq r2, -1, out
mov r0, 1
out:
exit
