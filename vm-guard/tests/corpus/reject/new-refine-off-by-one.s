# expect: out-of-bounds
# nobjects <= 8 admits index 8: objects[8] starts at 224, past the context.
ldxw r2, [r1+72]
mov r0, 0
jgt r2, 8, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
