# expect: out-of-bounds
# jlt r2, 9 leaves r2 = 8 possible on the taken side.
ldxw r2, [r1+72]
mov r0, 0
jlt r2, 9, use
exit
use:
lsh r2, 4
add r1, r2
ldxdw r0, [r1+104]
exit
