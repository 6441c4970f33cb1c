# expect: store
# Writing into the context (the descriptor under judgement).
mov r0, 0
stxdw [r1+8], r0
exit
