# expect: uninitialized
# r3 is written only when the opcode is non-zero.
ldxb r2, [r1+0]
jeq r2, 0, join
mov r3, 1
join:
mov r0, r3
exit
