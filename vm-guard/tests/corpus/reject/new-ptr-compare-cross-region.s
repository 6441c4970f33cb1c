# expect: pointer-compare
# Context against stack: the distance between them is an address fact.
mov r0, 0
jgt r1, r10, out
mov r0, 1
out:
exit
