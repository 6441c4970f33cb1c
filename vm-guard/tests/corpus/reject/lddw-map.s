# expect: lddw-pseudo
# lddw r1, map_fd (src = BPF_PSEUDO_MAP_FD) needs a loader to patch it.
# raw: 0x0000000500001218 0x0000000000000000 0x00000000000000b7 0x0000000000000095
