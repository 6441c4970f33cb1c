# expect: out-of-bounds
# for (i = 0; i <= 8; i++) reads objects[8].
mov r0, 0
mov r2, 0
again:
mov r3, r2
lsh r3, 4
mov r4, r1
add r4, r3
ldxw r5, [r4+96]
add r0, r5
add r2, 1
jle r2, 8, again
exit
