# expect: stack-uninit
# The path that wrote fp-8 must not prune the one that did not.
ldxb r2, [r1+0]
jeq r2, 0, skip
stdw [r10-8], 1
ja join
skip:
mov r0, 0
join:
ldxdw r0, [r10-8]
exit
