# expect: pointer-returned
# A spilled number on the fall-through (explored first, safe), a spilled pointer on the
# branch (explored second): the number in fp-8 must not prune the pointer.
ldxb r2, [r1+0]
stxdw [r10-8], r1
jeq r2, 0, join
stdw [r10-8], 0
join:
ldxdw r0, [r10-8]
exit
