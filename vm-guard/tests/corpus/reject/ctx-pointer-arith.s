# expect: out-of-bounds
# Pointer arithmetic on the context is fine, but the load at r1 + 200 + 24 ends past 224.
add r1, 200
ldxdw r0, [r1+24]
exit
