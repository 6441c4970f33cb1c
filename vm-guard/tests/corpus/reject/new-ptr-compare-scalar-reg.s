# expect: pointer-compare
# A number compared with a pointer.
mov r0, 0
mov r2, 4096
jgt r2, r1, out
mov r0, 1
out:
exit
