# expect: out-of-bounds
# A byte-sized index reaches 255, past the 224-byte context.
ldxb r2, [r1+0]
add r1, r2
ldxb r0, [r1+0]
exit
