# expect: incomplete-lddw
# lddw in the last slot.
# raw: 0x00000000000000b7 0x0000000000000018
