# expect: pointer-unbounded
# r2 <= r3 bounds nothing when r3 is unknown.
ldxw r2, [r1+72]
ldxw r3, [r1+68]
mov r0, 0
jgt r2, r3, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
