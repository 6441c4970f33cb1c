# expect: pointer-compare
# A signed comparison of pointers.
mov r2, r1
add r2, 8
mov r0, 0
jsgt r2, r1, out
mov r0, 1
out:
exit
