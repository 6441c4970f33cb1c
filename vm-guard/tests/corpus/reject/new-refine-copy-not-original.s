# expect: pointer-unbounded
# r3 = r2 >> 1 is no longer r2: bounding r3 <= 7 leaves r2 up to 15 (and here unbounded).
ldxw r2, [r1+72]
mov r3, r2
rsh r3, 1
mov r0, 0
jgt r3, 7, out
lsh r2, 4
add r1, r2
ldxw r0, [r1+96]
out:
exit
