# expect: r0-unset
# r0 is set on the first path explored only.
ldxb r2, [r1+0]
jne r2, 0, join
mov r0, 1
join:
exit
