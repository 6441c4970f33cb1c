# expect: out-of-bounds
# be16 of a byte moves it to bits 8..15: up to 0xff00.
ldxb r2, [r1+0]
be16 r2
add r1, r2
ldxb r0, [r1+0]
exit
