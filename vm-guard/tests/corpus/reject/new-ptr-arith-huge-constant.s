# expect: pointer-unbounded
# Offsets stay within 2^29.
add r1, 0x40000000
ldxb r0, [r1+0]
exit
