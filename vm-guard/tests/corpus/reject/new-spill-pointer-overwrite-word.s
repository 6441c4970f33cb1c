# expect: spill-partial
# Overwriting the high word of a spilled pointer.
mov r2, 0
stxdw [r10-16], r1
stxw [r10-12], r2
mov r0, 0
exit
