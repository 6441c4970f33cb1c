//! Verified eBPF guards for sbpf-ring producers (in construction).
