# expect: spill-partial
# Reading the top byte of a spilled pointer.
stxdw [r10-8], r10
ldxb r0, [r10-1]
exit
