# r3 is written on both paths before the join.
ldxb r2, [r1+0]
jeq r2, 0, zero
mov r3, 2
ja join
zero:
mov r3, 1
join:
mov r0, r3
sub r0, r3
exit
