# clang's min(): compare a copy, use the original. The copy and the original are linked, so
# the bound on one is a bound on both.
ldxw r2, [r1+72]
mov r3, r2
mov r0, 0
jgt r3, 7, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
