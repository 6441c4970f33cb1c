# lddw, 32-bit jumps, byte swaps and 64-bit arithmetic.
lddw r2, 0x123456789abcdef0
ldxw r3, [r1+4]
jeq32 r3, -1, reject
be16 r3
be64 r2
le64 r2
xor r2, r3
arsh r2, 63
mod r2, 7
div32 r3, 3
mov r0, 0
ja done
reject:
mov r0, 9
done:
exit
