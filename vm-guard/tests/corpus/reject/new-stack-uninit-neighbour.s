# expect: stack-uninit
# fp-8 is written; fp-16 is not.
mov r2, 1
stxdw [r10-8], r2
ldxdw r0, [r10-16]
exit
