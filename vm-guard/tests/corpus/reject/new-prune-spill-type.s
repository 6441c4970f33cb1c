# expect: pointer-returned
# A spilled number on one path, a spilled pointer on the other.
ldxb r2, [r1+0]
stdw [r10-8], 0
jeq r2, 0, join
stxdw [r10-8], r1
join:
ldxdw r0, [r10-8]
exit
