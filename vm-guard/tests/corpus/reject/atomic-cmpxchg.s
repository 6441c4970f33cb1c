# expect: atomic
# BPF_CMPXCHG on a 32-bit word (0xc3, imm 0xf1)
# raw: 0x00000000000000b7 0x000000f1000021c3 0x0000000000000095
