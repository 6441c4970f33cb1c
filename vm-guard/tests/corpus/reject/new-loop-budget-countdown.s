# expect: budget
# Counting an unknown 64-bit value down to zero: each iteration is a new state.
ldxdw r2, [r1+8]
mov r0, 0
again:
sub r2, 1
jne r2, 0, again
exit
