//! Runnable examples of the sbpf-ring API.
