# expect: pointer-compare
# Comparing the pointer leaks address bits into control flow.
mov r0, 0
jgt r1, 4096, out
mov r0, 1
out:
exit
