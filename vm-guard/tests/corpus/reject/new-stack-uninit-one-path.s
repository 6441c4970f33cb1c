# expect: stack-uninit
# The slot is written on one path only.
ldxb r2, [r1+0]
jeq r2, 0, skip
stdw [r10-8], 5
skip:
ldxdw r0, [r10-8]
exit
