# expect: out-of-bounds
# rbpf masks a shift of 64 to 0: r2 stays 200.
mov r2, 200
mov r3, 64
lsh r2, r3
add r1, r2
ldxdw r0, [r1+30]
exit
