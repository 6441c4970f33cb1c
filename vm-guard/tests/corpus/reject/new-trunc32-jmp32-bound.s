# expect: pointer-unbounded
# jgt32 bounds the low 32 bits only; the 64-bit value may be huge.
ldxdw r2, [r1+8]
mov r0, 0
jgt32 r2, 7, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
