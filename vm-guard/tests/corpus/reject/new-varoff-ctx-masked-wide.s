# expect: out-of-bounds
# and 0x7f gives 0..=127; 96 + 127 + 8 > 224.
ldxw r2, [r1+72]
and r2, 0x7f
add r1, r2
ldxdw r0, [r1+96]
exit
