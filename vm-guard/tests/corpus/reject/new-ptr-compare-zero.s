# expect: pointer-compare
# Testing the context pointer against 0 reveals address bits.
mov r0, 0
jeq r1, 0, out
mov r0, 1
out:
exit
