# expect: lddw-pseudo
# A read-only data pointer (lddw src=2) in a program that has no read-only data.
# raw: 0x0000000000002118 0x0000000000000000 0x0000000000001061 0x0000000000000095
