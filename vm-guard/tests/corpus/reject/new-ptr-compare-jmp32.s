# expect: pointer-compare
# The low 32 bits of two pointers.
mov r2, r1
add r2, 8
mov r0, 0
jgt32 r2, r1, out
mov r0, 1
out:
exit
