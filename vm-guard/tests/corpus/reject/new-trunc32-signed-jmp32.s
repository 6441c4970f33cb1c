# expect: pointer-unbounded
# jslt32 r2, 8 holds for every r2 whose low word is negative as an i32.
ldxw r2, [r1+72]
mov r0, 0
jslt32 r2, 8, use
exit
use:
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
exit
