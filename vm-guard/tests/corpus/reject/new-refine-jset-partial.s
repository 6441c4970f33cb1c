# expect: pointer-unbounded
# jset r2, 0xf8 not taken clears bits 3..7 only; bits 8..31 stay unknown.
ldxw r2, [r1+72]
mov r0, 0
jset r2, 0xf8, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
