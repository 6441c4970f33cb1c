//! Benchmarks of sbpf-ring (in construction).
