# expect: pointer-returned
# A spilled stack pointer filled into r0 is still a pointer.
stxdw [r10-8], r10
ldxdw r0, [r10-8]
exit
