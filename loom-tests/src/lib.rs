//! Loom models of the sbpf-ring protocol (in construction).
