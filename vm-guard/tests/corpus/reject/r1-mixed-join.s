# expect: pointer-returned
# r1 is the pointer on one path and a number on the other: after the join it is neither
# a load base nor a value (returning it could leak the pointer).
ldxb r2, [r1+0]
jeq r2, 0, join
mov r1, 7
join:
mov r0, r1
exit
