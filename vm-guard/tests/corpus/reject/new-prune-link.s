# expect: out-of-bounds
# At the join r2 and r3 hold bytes on both paths. On the fall-through (explored first) r3 is
# a copy of r2, so bounding r3 bounds r2 and the load is safe; on the branch (explored
# second) r3 was loaded separately and r2 stays 0..=255. Same ranges, but the equality the
# safe state relied on does not hold: no pruning.
ldxb r2, [r1+0]
ldxb r3, [r1+1]
ldxb r4, [r1+2]
jeq r4, 0, join
mov r3, r2
join:
mov r0, 0
jgt r3, 7, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
