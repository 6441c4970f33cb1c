# expect: out-of-bounds
# As new-prune-link, but on the branch (explored second) r2 and r3 are each linked, to r5
# and r6: linked is not enough, they must be linked to each other.
ldxb r2, [r1+0]
ldxb r3, [r1+1]
ldxb r4, [r1+2]
mov r5, r2
mov r6, r3
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
