# expect: r1-as-value
# Copying r1 to another register to dereference it with another base.
mov r2, r1
add r2, 300
ldxdw r0, [r2+0]
exit
