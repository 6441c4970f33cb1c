# expect: tail-call
# BPF_JMP|BPF_X|BPF_CALL (0x8d): tail call / callx by register.
# raw: 0x00000000000000b7 0x000000000000008d 0x0000000000000095
