# expect: budget
# 1000 x 1000 iterations exceed the budget of processed instructions.
mov r0, 0
mov r2, 0
outer:
mov r3, 0
inner:
add r3, 1
jlt r3, 1000, inner
add r2, 1
jlt r2, 1000, outer
exit
