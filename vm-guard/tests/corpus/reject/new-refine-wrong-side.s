# expect: pointer-unbounded
# The taken side of jge r2, 8 has r2 >= 8: no upper bound.
ldxw r2, [r1+72]
mov r0, 0
jge r2, 8, use
exit
use:
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
exit
