# expect: out-of-bounds
# An arithmetic shift by 60 leaves -8..=7.
ldxdw r2, [r1+8]
arsh r2, 60
add r1, r2
ldxb r0, [r1+0]
exit
