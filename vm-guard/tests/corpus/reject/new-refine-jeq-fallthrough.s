# expect: pointer-unbounded
# Falling through jeq r2, 3 only says r2 != 3.
ldxw r2, [r1+72]
mov r0, 0
jeq r2, 3, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
