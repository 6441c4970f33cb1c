# expect: out-of-bounds
# A store above the frame pointer: the stack is r10-512 .. r10.
mov r2, 1
stxdw [r10+0], r2
mov r0, 0
exit
