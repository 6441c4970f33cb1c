# expect: pointer-leak
# A 4-byte store of a pointer keeps half an address as data.
stxw [r10-8], r1
ldxw r0, [r10-8]
exit
