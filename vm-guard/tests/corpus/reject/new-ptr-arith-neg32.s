# expect: pointer-arith
# Negating a pointer.
neg32 r1
mov r0, 0
exit
