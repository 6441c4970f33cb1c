# expect: pointer-unbounded
# sub32 of 1 from a value that may be 0 wraps to 0xffffffff.
ldxw r2, [r1+72]
mov r0, 0
jgt r2, 7, out
sub32 r2, 1
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
