# expect: spill-partial
# Overwriting one byte of a spilled pointer would forge a pointer.
stxdw [r10-8], r1
stb [r10-8], 0
ldxdw r1, [r10-8]
ldxw r0, [r1+0]
exit
