# expect: not-a-pointer
# A load through a register holding a number, not the context.
mov r2, 4096
ldxdw r0, [r2+0]
exit
