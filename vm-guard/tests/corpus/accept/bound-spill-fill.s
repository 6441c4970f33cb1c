# A spilled register bounded after the spill: the fill reads back the bounded value.
ldxw r2, [r1+72]
stxdw [r10-8], r2
mov r0, 0
jgt r2, 7, out
ldxdw r3, [r10-8]
lsh r3, 4
add r1, r3
ldxw r0, [r1+96]
out:
exit
