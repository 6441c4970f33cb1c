# expect: out-of-bounds
# The safe path (r3 = 0, the fall-through, explored first) completes at the join; the unsafe
# one (r3 = 200, the branch, explored second) must not be pruned against it.
ldxb r2, [r1+0]
mov r3, 200
jeq r2, 0, join
mov r3, 0
join:
add r1, r3
ldxdw r0, [r1+30]
exit
