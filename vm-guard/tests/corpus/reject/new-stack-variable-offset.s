# expect: stack-var-off
# Stack offsets must be constants.
ldxb r2, [r1+0]
and r2, 7
mov r3, r10
sub r3, 16
add r3, r2
mov r0, 0
exit
