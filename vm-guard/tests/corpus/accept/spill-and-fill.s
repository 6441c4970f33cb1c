# A spill and a fill, as clang writes them when it runs out of registers.
ldxdw r2, [r1+8]
stxdw [r10-8], r2
stxdw [r10-16], r1
mov r0, 0
ldxdw r1, [r10-16]
ldxdw r3, [r10-8]
ldxw r0, [r1+4]
add r0, r3
exit
