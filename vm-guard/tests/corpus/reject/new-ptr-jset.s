# expect: pointer-compare
# jset on a pointer tests address bits (alignment).
mov r0, 0
jset r1, 7, out
mov r0, 1
out:
exit
