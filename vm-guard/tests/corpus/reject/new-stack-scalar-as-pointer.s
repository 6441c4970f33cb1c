# expect: not-a-pointer
# A number spilled and filled is still a number.
mov r2, 4096
stxdw [r10-8], r2
ldxdw r3, [r10-8]
ldxw r0, [r3+0]
exit
