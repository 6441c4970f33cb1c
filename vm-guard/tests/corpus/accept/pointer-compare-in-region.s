# Two context pointers, both inside it, compare by their offsets: ctx + 8 > ctx always, so
# the out-of-bounds load behind the other outcome is dead code.
mov r2, r1
add r2, 8
mov r0, 0
jgt r2, r1, out
ldxdw r0, [r1+4096]
out:
exit
