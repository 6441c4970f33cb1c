# expect: out-of-bounds
# Copying r1 to another register is fine; the copy still has the context's bounds.
mov r2, r1
add r2, 300
ldxdw r0, [r2+0]
exit
