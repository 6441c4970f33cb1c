# expect: pointer-unbounded
# jslt r2, 8 holds for every negative r2, i.e. huge unsigned values.
ldxdw r2, [r1+8]
mov r0, 0
jslt r2, 8, use
exit
use:
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
exit
