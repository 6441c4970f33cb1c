# expect: pointer-unbounded
# The spill holds the value before the shift; bounding the shifted register does not bound
# what the fill reads back.
ldxw r2, [r1+72]
stxdw [r10-8], r2
rsh r2, 1
mov r0, 0
jgt r2, 7, out
ldxdw r2, [r10-8]
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
