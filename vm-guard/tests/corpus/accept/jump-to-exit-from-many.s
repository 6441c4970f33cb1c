# Several forward jumps to one exit, registers set before each.
ldxb r2, [r1+0]
mov r0, 1
jeq r2, 4, out
jeq r2, 5, out
jeq r2, 6, out
mov r0, 0
out:
exit
