# expect: out-of-bounds
# r2 in -8..=0 (signed) moves the pointer before the context.
ldxdw r2, [r1+8]
mov r0, 0
jsgt r2, 0, out
jslt r2, -8, out
add r1, r2
ldxb r0, [r1+0]
out:
exit
