# expect: unknown-opcode
# ldxsb (BPF_LDX|BPF_MEMSX|BPF_B, 0x91): sign-extending load of the v4 ISA, not in rbpf 0.4.1.
# raw: 0x0000000000001091 0x0000000000000095
