# expect: out-of-bounds
# An 8-byte read at fp-4 runs past the top of the stack.
stdw [r10-8], 1
ldxdw r0, [r10-4]
exit
