//! sbpf-ring (in construction).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod validate;
