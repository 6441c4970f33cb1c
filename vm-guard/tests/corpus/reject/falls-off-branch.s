# expect: falls-off-end
# The not-taken path of the last conditional runs past the end.
ldxb r0, [r1+0]
jeq r0, 1, +1
exit
mov r0, 2
