# expect: out-of-bounds
# The safe path (r3 = 0) must not prune the unsafe one (r3 = 200).
ldxb r2, [r1+0]
mov r3, 0
jeq r2, 0, join
mov r3, 200
join:
add r1, r3
ldxdw r0, [r1+30]
exit
