# expect: budget
# A loop whose exit depends on r0 wrapping around 2^64: every iteration is a new state, so
# exploration runs out of budget.
mov r0, 0
again:
add r0, 1
jne r0, 0, again
exit
