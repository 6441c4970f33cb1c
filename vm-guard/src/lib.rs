//! Verified eBPF guards for sbpf-ring producers.
//!
//! A guard is a small eBPF program that judges one submission entry before a producer
//! publishes it. It reads one read-only context — the 64-byte [`Sqe`](sbpf_ring::abi::Sqe)
//! followed by the ring's limits ([`context`]) — and returns 0 to accept or a non-zero reason
//! code. Guards are best written in C ([`source`] loads `clang -target bpf -O2` objects, with
//! their constant data). Our [`verifier`], of the kernel verifier's class, proves every path
//! safe — each access inside the context, the stack or the constant data, no pointer leaked,
//! every loop ended within a budget — so a verified guard may run under rbpf's x86-64 JIT
//! ([`vm`]), which checks nothing itself; elsewhere, or on request, it runs under the
//! interpreter.
//!
//! A [`Guard`] chains stages (first rejection wins) and implements
//! [`sbpf_ring::validate::Validator`], so `sbpf-ring` never depends on rbpf.
//!
//! A guard is policy, not a security boundary: the process owns the shared pages and can
//! write any entry it likes without running its guard. The consumer's own validation
//! (`check_entry`, and the kernel module's copy of it) is the enforcement.
//!
//! ```
//! use sbpf_guard::{Engine, Guard, Stage};
//! use sbpf_ring::{abi::{opcode, Sqe}, validate::{Limits, ObjectLimit, Validator}};
//!
//! let mut guard = Guard::new([Stage::bounds(Engine::Jit), Stage::read_only(Engine::Jit)]);
//! let mut limits = Limits::new(4096);
//! limits.push(ObjectLimit::new(1, 64));
//!
//! let load = Sqe { opcode: opcode::LOAD64, obj_id: 1, obj_off: 8, ..Sqe::default() };
//! assert!(guard.validate(&load, &limits).is_ok());
//!
//! let store = Sqe { opcode: opcode::STORE64, obj_id: 1, obj_off: 8, ..Sqe::default() };
//! let why = guard.validate(&store, &limits).unwrap_err();
//! assert_eq!(why.code, sbpf_guard::builtin::code::NOT_READ_ONLY);
//! assert!(why.reason.contains("read-only"));
//! assert_eq!(guard.counters().rejected(why.code), 1);
//! ```

pub mod builtin;
pub mod context;
pub mod guard;
pub mod source;
pub mod stats;
pub mod verifier;
pub mod vm;

pub use guard::{Guard, GuardCounters, GuardError, Stage, Verdict};
pub use stats::GuardStats;
pub use verifier::{verify, Policy, Rule, VerifierLog, VerifyError};
pub use vm::{Engine, Program};
