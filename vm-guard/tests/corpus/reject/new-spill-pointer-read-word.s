# expect: spill-partial
# Reading the low half of a spilled pointer would expose address bits.
stxdw [r10-8], r1
ldxw r0, [r10-8]
exit
