# expect: r1-as-value
# Pointer arithmetic on the context: r1 must stay the context's start.
add r1, 200
ldxdw r0, [r1+16]
exit
