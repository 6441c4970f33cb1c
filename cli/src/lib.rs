//! The subcommands of the `sbpf-ring` command, as a library so tests drive them too.

pub mod bench;
pub mod demo;
pub mod demo_bpf;
pub mod guard;
