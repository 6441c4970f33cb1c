# expect: pointer-arith
# Adding two pointers.
mov r2, r1
add r2, r1
mov r0, 0
exit
