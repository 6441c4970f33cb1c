# expect: infinite-loop
# The loop body changes nothing the exit depends on.
mov r0, 0
again:
ldxb r2, [r1+0]
jne r2, 0, again
exit
