# expect: reserved-field
# sdiv64 r0, r2 (div with off=1, v4 ISA): rbpf 0.4.1 would run an unsigned division.
# raw: 0x00000000000000b7 0x00000001000002b7 0x000000000001203f 0x0000000000000095
