# expect: pointer-unbounded
# Adding a 64-bit unknown to the context pointer.
ldxdw r2, [r1+8]
add r1, r2
ldxb r0, [r1+0]
exit
