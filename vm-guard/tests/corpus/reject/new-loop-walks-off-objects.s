# expect: out-of-bounds
# A walk over objects[] that stops only at id 0 reaches objects[8].
mov r3, r1
add r3, 96
mov r0, 0
again:
ldxw r4, [r3+0]
add r3, 16
jne r4, 0, again
exit
