# expect: pointer-unbounded
# Falling through jsgt r2, 7 leaves every negative r2.
ldxdw r2, [r1+8]
mov r0, 0
jsgt r2, 7, out
add r1, r2
ldxw r0, [r1+96]
out:
exit
