# expect: not-a-pointer
# r1 is overwritten on one path only; the load after the join may go through a number.
ldxb r2, [r1+0]
jeq r2, 0, join
mov r1, 4096
join:
ldxdw r0, [r1+8]
exit
