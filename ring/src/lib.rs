//! # sbpf-ring
//!
//! Shared-memory submission and completion rings between user programs and the kernel:
//! requests to read, write and atomically update kernel-resident memory objects travel
//! without a system call each. A kernel module (`kmod/`) maps the rings into the process
//! and a kernel thread consumes them; where the module is not loaded, the local backend
//! runs the same ABI in process memory with a poller thread in its place.
//!
//! An operation is a call that returns its own result, from any thread (the ring's
//! [`Dispatcher`] routes each completion to its caller), or a future with the `tokio`
//! feature; buffers come from a pool over the arena and belong to the request in flight:
//!
//! ```
//! use sbpf_ring::Ring;
//!
//! let ring = Ring::builder().sq_entries(64).arena_size(64 * 1024).build()?;
//! let counter = ring.create_object(4096)?;
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| ring.fetch_add(counter, 0, 1).unwrap());
//!     }
//! });
//! assert_eq!(ring.load(counter, 0)?, 4);
//!
//! let mut buf = ring.buffers().alloc(5).unwrap();
//! buf.write(b"hello")?;
//! let (written, buf) = ring.write_from(counter, 64, buf);
//! let (read, buf) = ring.read_into(counter, 64, buf);
//! assert_eq!((written?, read?, buf.to_vec()), (5, 5, b"hello".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
//! # let ring = sbpf_ring::Ring::builder().arena_size(64 * 1024).build()?;
//! # let table = ring.create_object(4096)?;
//! // With the `tokio` feature: the same operations as futures (`Send`), woken through the
//! // ring's fd. A future publishes its request when polled with room in the ring: dropped
//! // before, it performed nothing; after, it cancels nothing (the request completes, then
//! // its buffer returns), so a timeout around a mutation leaves it maybe performed.
//! let d = ring.dispatcher()?;
//! let tasks: Vec<_> = (0..64u64)
//!     .map(|i| {
//!         let (d, buf) = (d.clone(), ring.buffers().alloc(64).unwrap());
//!         tokio::spawn(async move { d.read_into_async(table, i * 64, buf).await.0 })
//!     })
//!     .collect();
//! for t in tasks {
//!     assert_eq!(t.await??, 64);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The raw path stays: producer handles publish entries, and the one [`CompletionQueue`]
//! reads completions in order (it and the dispatcher exclude each other):
//!
//! ```
//! use sbpf_ring::{op, Ring};
//!
//! let ring = Ring::builder().sq_entries(64).arena_size(4096).build()?;
//! let counter = ring.create_object(4096)?;
//! let mut submitter = ring.submitter();
//! let mut completions = ring.completions()?;
//!
//! submitter.submit(op::FetchAdd64::new(counter, 0, 5).user_data(1).build())?;
//! submitter.submit(op::Load64::new(counter, 0).user_data(2).build())?;
//! completions.wait(2, None)?;
//! let done: Vec<_> = completions.iter().collect();
//! assert_eq!(done[0].user_data(), 1);
//! assert_eq!(done[1].value(), 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every entry passes the producer's [`Validator`] before a slot is reserved: the native
//! [`BoundsValidator`] by default, or a verified eBPF guard from the `sbpf-guard` crate.
//! The consumer validates its own copy again ([`validate::check_entry`]); the producer-side
//! check rejects early, with a reason, but the consumer's is the one that protects memory.
//!
//! # Ordering contract
//!
//! Positions are free-running `u32`s; a slot is `pos & (entries - 1)`. "Kernel" is the
//! ring's consumer: the module's poller or ENTER path, or the local poller thread. The
//! steps are the functions of [`protocol`], each of which names its pair at the site.
//!
//! Submission ring, many producers, one kernel consumer:
//!
//! 1. A producer that sees no room answers Full at once (relaxed loads, a hint; a
//!    single-producer handle asks its cached head, refreshed as in 2). Otherwise it
//!    validates the entry on its private copy first (no slot is taken for an entry that is
//!    refused).
//! 2. Reserve: load `sq.head` (**acquire**, pairs with 6), then `sq.tail`; `tail - head >=
//!    entries` is Full; else take `[tail, tail + n)` by CAS on `sq.tail` (relaxed: it only
//!    divides positions among producers). A single-producer handle stores instead.
//! 3. Write the entry's first 60 bytes into the slot.
//! 4. Publish: store `seq = pos + 1` (**release**, pairs with 5); a batch issues one release
//!    fence and then relaxed stores.
//! 5. The kernel, at its private head, loads the slot's `seq` (**acquire**, pairs with 4);
//!    only `seq == head + 1` means published. It copies the entry once and uses only the copy.
//! 6. It advances its private head and stores `sq.head` (**release**, pairs with 2) so the
//!    slot can be reused. It never reads `sq.tail`.
//!
//! Wake-up: a kernel idle for its idle time sets NEED_WAKEUP in `sq.flags`, issues a full
//! fence (A), looks at its head once more, and only then sleeps. A producer, after 4,
//! issues a full fence (B) and reads `sq.flags`; if NEED_WAKEUP is set it kicks (an ENTER
//! ioctl, or the local poller's event). By A and B, either the kernel's second look sees
//! the entry or the producer sees the flag: no wake-up is lost.
//!
//! Completion ring, kernel to one consumer:
//!
//! 7. The kernel takes a submission only when a completion slot is free: `cq.tail -
//!    cq.head` (**acquire**, pairs with 9) `< entries`. No overflow list; a full CQ is
//!    backpressure, and every taken entry gets exactly one completion.
//! 8. It writes the completion and stores `cq.tail` (**release**, pairs with 9).
//! 9. The consumer loads `cq.tail` (**acquire**, pairs with 8), reads the entries, and
//!    stores `cq.head` (**release**, pairs with 7).
//!
//! Full-CQ wake-up: a kernel that has published entries waiting but no completion slot
//! sleeps with the same handshake as above (NEED_WAKEUP, full fence A, a second look at
//! the room). The consumer, after 9, issues a full fence (E) and reads `sq.flags`; if
//! NEED_WAKEUP is set it kicks. By A and E, either the kernel's second look sees the new
//! `cq.head` or the consumer sees the flag. The module does not rely on this alone: its
//! `poll()` and ENTER(GETEVENTS) wake a poller that sleeps on a full CQ.
//!
//! Shutdown ([`Ring::shutdown`]) closes a user-side gate: it stores `closed`, issues a full
//! fence (C) and snapshots `sq.tail`. A producer, after 3 and before 4, issues a full fence
//! (D) and reads `closed`. By C and D, either the snapshot covers its reservation, and it
//! publishes and the kernel consumes the entry, or the producer sees the gate closed and
//! leaves the slot unpublished, getting its entry back ([`SubmitError::Closed`]). An entry
//! is performed or handed back, never both, never neither.
//!
//! # Per-request results
//!
//! The [`Dispatcher`] keeps every request in flight in a slab keyed by `user_data` (slot
//! index plus generation, XORed with a per-dispatcher key): a completion whose
//! `user_data` names no live request is counted ([`DispatchStats`]: forged or stale) and
//! dropped, never handed to a caller. No thread is added: a waiting caller that finds no
//! one routing becomes the leader, drains the completion ring and wakes each request's
//! waiter; the others park, and a leader that has its own result unparks one of them to
//! lead next. The protocol is `waiters.rs` (model-checked in `loom-tests/`).
//!
//! # Closing a ring
//!
//! A ring closes in one of three ways, all with the same effect:
//!
//! - [`Ring::shutdown`], which also reports what it had to hand back;
//! - dropping the [`Ring`] (the report is discarded);
//! - dropping the [`CompletionQueue`]: there is one per ring, so no completion could be
//!   read again, and producers are told so instead of filling the rings (as a pipe's
//!   writers are when its reader goes). Entries published before are still performed;
//!   their completions are discarded.
//!
//! When a ring closes:
//!
//! - every producer handle ([`Submitter`], [`SingleSubmitter`]) answers
//!   [`SubmitError::Closed`] with the entry handed back, at once and from then on; an entry
//!   in the middle of its publication is either performed or handed back, never both,
//!   never neither (the gate below);
//! - the consumer finishes the entries published before the close while completions fit,
//!   then stops: the local backend's poller thread exits; on the kernel backend the module
//!   is told to stop (its poller exits, ENTER consumes nothing more), and entries it never
//!   took are handed back in the [`ShutdownReport`];
//! - a thread in [`CompletionQueue::wait`] returns as soon as the consumer has finished
//!   what was published before the close: with the completions it waited for, or
//!   [`Error::Closed`]; completions already posted stay readable;
//! - every caller of the [`Dispatcher`] (parked, leading, or waiting for room) and every
//!   pending future returns its result if it arrived, else [`Error::Closed`];
//! - the memory (mappings, the device file, objects held by this ring) lives until the
//!   last handle of any kind ([`Submitter`], [`Arena`], [`CompletionQueue`]) is dropped;
//!   a kernel object lives on while another ring or process holds it.
//!
//! # Trust
//!
//! The shared pages are writable by the process at any time. The kernel module reads
//! nothing from them but the `seq` word of the slot at its own head, copies each entry once
//! and validates the copy; a bad entry gets a completion with `-EINVAL`, `-ENOENT` or
//! `-EFAULT` and touches no memory. The producer-side validator is policy, not a security
//! boundary.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod abi;
#[cfg(not(loom))]
mod arena;
#[cfg(not(loom))]
pub mod bpf;
#[cfg(not(loom))]
mod bpfmap;
#[cfg(not(loom))]
mod buffers;
#[cfg(not(loom))]
mod complete;
#[cfg(not(loom))]
mod dispatch;
#[cfg(not(loom))]
pub mod kernel;
#[cfg(not(loom))]
mod local;
pub mod op;
pub mod protocol;
pub mod region;
#[cfg(not(loom))]
mod submit;
pub mod sync;
#[cfg(all(feature = "tokio", not(loom)))]
mod tokio;
pub mod validate;
#[cfg(loom)]
pub mod waiters;
#[cfg(not(loom))]
mod waiters;
#[cfg(not(loom))]
mod wakeup;

#[cfg(not(loom))]
pub use arena::{Arena, OutOfBounds};
#[cfg(not(loom))]
pub use bpfmap::{BpfMapObject, MapPath};
#[cfg(not(loom))]
pub use buffers::{ArenaBuf, BufferPool};
#[cfg(not(loom))]
pub use complete::{Completion, CompletionQueue, Completions, OpError};
#[cfg(not(loom))]
pub use dispatch::{DispatchStats, Dispatcher};
#[cfg(not(loom))]
pub use local::IdlePolicy;
#[cfg(not(loom))]
pub use ring::*;
#[cfg(not(loom))]
pub use submit::{BatchError, SingleSubmitter, SubmitError, Submitter};

pub use abi::{Cqe, Sqe, Stats};
pub use op::ObjectId;
pub use validate::{AcceptAll, BoundsValidator, Limits, Rejection, Validator};

#[cfg(not(loom))]
mod ring;
