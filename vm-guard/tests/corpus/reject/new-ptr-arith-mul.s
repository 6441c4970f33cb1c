# expect: pointer-arith
# Multiplying a pointer.
mul r1, 2
mov r0, 0
exit
