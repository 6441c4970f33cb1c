# Pointer arithmetic on the context: r1 + 200, then a load at +16 ends exactly at 224.
add r1, 200
ldxdw r0, [r1+16]
exit
