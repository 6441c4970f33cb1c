//! The user/kernel ABI: the bytes that `kmod/include/uapi/sbpf_ring.h` describes in C.
//!
//! Every type here is `#[repr(C)]` and every offset and size is pinned at compile time below;
//! `tests/abi_c.rs` compiles the C header and compares each `offsetof`/`sizeof` with these.
//! Each field says which side writes it. "Kernel" means whoever consumes the submission
//! ring: the kernel module, or the local backend's poller thread, which plays its part.
//!
//! # Ring region
//!
//! One mapping at page offset [`OFF_RING`] holds, in this order:
//!
//! | offset | bytes | what | written by |
//! |---|---|---|---|
//! | 0 | 4 | SQ head | kernel |
//! | 64 | 4 | SQ tail | producers (user) |
//! | 128 | 4 | SQ flags ([`SQ_NEED_WAKEUP`]) | kernel |
//! | 132 | 4 | SQ ring mask | kernel, at setup |
//! | 136 | 4 | SQ ring entries | kernel, at setup |
//! | 192 | 4 | CQ head | completion consumer (user) |
//! | 256 | 4 | CQ tail | kernel |
//! | 320 | 4 | CQ flags | kernel |
//! | 324 | 4 | CQ ring mask | kernel, at setup |
//! | 328 | 4 | CQ ring entries | kernel, at setup |
//! | 384 | 128 | [`Stats`] mirror | kernel |
//! | 512 | 64 × SQ entries | submission entries ([`Sqe`]) | producers (user) |
//! | after | 32 × CQ entries | completion entries ([`Cqe`]) | kernel |
//!
//! The kernel reports every offset in [`SqOffsets`] and [`CqOffsets`] at setup, as io_uring
//! does, and user code uses the reported values (after checking them against the mapping).
//! The data arena is a second mapping at page offset [`OFF_ARENA`].

use core::mem::{offset_of, size_of};

/// Page offset (in bytes, as passed to `mmap`) of the ring region.
pub const OFF_RING: u64 = 0;
/// Page offset (in bytes, as passed to `mmap`) of the data arena.
pub const OFF_ARENA: u64 = 0x1000_0000;

/// Largest submission ring accepted at setup.
pub const MAX_SQ_ENTRIES: u32 = 1 << 15;
/// Largest completion ring accepted at setup.
pub const MAX_CQ_ENTRIES: u32 = 1 << 16;
/// Largest data arena accepted at setup, in bytes.
pub const MAX_ARENA_SIZE: u64 = 1 << 30;
/// Largest kernel object, in bytes.
pub const MAX_OBJECT_SIZE: u64 = 1 << 30;
/// Largest `len` of one READ or WRITE.
pub const MAX_IO_LEN: u32 = 1 << 20;

/// Bytes of the ring header that precede the submission entries.
pub const RING_HEADER_SIZE: u32 = 512;

/// Setup flag: the kernel runs a poller thread that consumes submissions without a system
/// call; it sleeps (setting [`SQ_NEED_WAKEUP`]) after `sq_idle_ms` without work.
pub const SETUP_SQPOLL: u32 = 1 << 0;
/// Setup flag: `cq_entries` is given by the caller instead of defaulting to twice `sq_entries`.
pub const SETUP_CQSIZE: u32 = 1 << 1;
/// Every setup flag this ABI version knows.
pub const SETUP_FLAGS_ALL: u32 = SETUP_SQPOLL | SETUP_CQSIZE;

/// SQ flag set by the poller before it sleeps: a producer that sees it must wake the kernel
/// (the ENTER ioctl with [`ENTER_SQ_WAKEUP`]).
pub const SQ_NEED_WAKEUP: u32 = 1 << 0;

/// SQ flag set, with [`SQ_NEED_WAKEUP`], by a local poller that sleeps because published
/// entries wait for a completion slot: the completion consumer must wake it after making
/// room. Only the local backend sets it; the module wakes such a poller itself from
/// `poll()` and ENTER with GETEVENTS, and the consumer kicks it on [`SQ_NEED_WAKEUP`].
pub const SQ_CQ_FULL: u32 = 1 << 1;

/// ENTER flag: wake the poller thread (SQPOLL rings).
pub const ENTER_SQ_WAKEUP: u32 = 1 << 0;
/// ENTER flag: after submitting, wait until `min_complete` completions are available.
pub const ENTER_GETEVENTS: u32 = 1 << 1;
/// Every ENTER flag this ABI version knows.
pub const ENTER_FLAGS_ALL: u32 = ENTER_SQ_WAKEUP | ENTER_GETEVENTS;

/// Operation codes of a submission entry. The one table of what each does is
/// [`crate::op`]'s documentation and the `docs/ABI.md` table.
pub mod opcode {
    /// Does nothing; completes with result 0.
    pub const NOP: u8 = 0;
    /// Copies `len` bytes from the object at `obj_off` into the arena at `arena_off`.
    pub const READ: u8 = 1;
    /// Copies `len` bytes from the arena at `arena_off` into the object at `obj_off`.
    pub const WRITE: u8 = 2;
    /// Loads the aligned 64-bit word at `obj_off`; the completion's `value` holds it.
    pub const LOAD64: u8 = 3;
    /// Stores `val` into the aligned 64-bit word at `obj_off`.
    pub const STORE64: u8 = 4;
    /// Atomically adds `val` to the aligned word at `obj_off`; `value` holds the old word.
    pub const FETCH_ADD64: u8 = 5;
    /// Atomically replaces the aligned word at `obj_off` by `val` if it equals `cmp`;
    /// `value` holds the old word, `result` is 1 if the swap happened and 0 if not.
    pub const CAS64: u8 = 6;
    /// BPF maps: inserts or replaces the element whose key is at `arena_off`, with the value
    /// that follows the key; `len` is key size plus value size, `val` the flags
    /// ([`super::MAP_ANY`], [`super::MAP_NOEXIST`], [`super::MAP_EXIST`]).
    pub const MAP_UPDATE: u8 = 7;
    /// BPF maps: copies the value of the element whose key is at `arena_off` into the arena
    /// right after the key; `len` is key size plus value size. `-ENOENT` when absent.
    pub const MAP_LOOKUP: u8 = 8;
    /// BPF maps: deletes the element whose key is at `arena_off`; `len` is the key size.
    pub const MAP_DELETE: u8 = 9;
    /// One past the largest opcode.
    pub const COUNT: u8 = 10;
}

/// MAP_UPDATE flag: create the element or replace it (`BPF_ANY`).
pub const MAP_ANY: u64 = 0;
/// MAP_UPDATE flag: create only; `-EEXIST` if it exists (`BPF_NOEXIST`).
pub const MAP_NOEXIST: u64 = 1;
/// MAP_UPDATE flag: replace only; `-ENOENT` if absent (`BPF_EXIST`).
pub const MAP_EXIST: u64 = 2;

/// A submission entry: 64 bytes, one per slot of the submission ring.
///
/// Every field is written by the producer that reserved the slot; `seq` is written last
/// (release) and publishes the rest. Fields an opcode does not use must be zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sqe {
    /// One of [`opcode`].
    pub opcode: u8,
    /// Entry flags; none are defined yet, so it must be zero.
    pub flags: u8,
    /// Reserved, must be zero.
    pub resv0: u16,
    /// Kernel object the operation addresses (zero for NOP).
    pub obj_id: u32,
    /// Byte offset into the kernel object.
    pub obj_off: u64,
    /// Byte offset into the data arena (READ and WRITE only).
    pub arena_off: u64,
    /// Byte count (READ and WRITE only).
    pub len: u32,
    /// Reserved, must be zero.
    pub resv1: u32,
    /// Opaque to the kernel; copied into the completion.
    pub user_data: u64,
    /// Operand: STORE64 value, FETCH_ADD64 addend, CAS64 new value, MAP_UPDATE flags.
    pub val: u64,
    /// CAS64 expected value.
    pub cmp: u64,
    /// Reserved, must be zero.
    pub resv2: u32,
    /// Publication word: `pos + 1` once the entry at ring position `pos` is complete.
    /// Producers set it through the ring; a value given in an entry is ignored.
    pub seq: u32,
}

/// A completion entry: 32 bytes, one per slot of the completion ring. Written by the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cqe {
    /// The submission's `user_data`.
    pub user_data: u64,
    /// Non-negative on success (bytes moved, or the CAS64 outcome), else a negative errno.
    pub res: i32,
    /// Completion flags; none are defined yet.
    pub flags: u32,
    /// Returned word: LOAD64's value, the old word of FETCH_ADD64 and CAS64.
    pub value: u64,
    /// Reserved.
    pub resv: u64,
}

/// Offsets of the submission ring's fields within the ring region, reported at setup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqOffsets {
    /// `u32` head, written by the kernel.
    pub head: u32,
    /// `u32` tail, written by producers.
    pub tail: u32,
    /// `u32` flags, written by the kernel.
    pub flags: u32,
    /// `u32` ring mask (`entries - 1`).
    pub ring_mask: u32,
    /// `u32` ring entries.
    pub ring_entries: u32,
    /// The array of [`Sqe`].
    pub sqes: u32,
    /// Reserved.
    pub resv: [u32; 2],
}

/// Offsets of the completion ring's fields within the ring region, reported at setup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CqOffsets {
    /// `u32` head, written by the completion consumer.
    pub head: u32,
    /// `u32` tail, written by the kernel.
    pub tail: u32,
    /// `u32` flags, written by the kernel.
    pub flags: u32,
    /// `u32` ring mask (`entries - 1`).
    pub ring_mask: u32,
    /// `u32` ring entries.
    pub ring_entries: u32,
    /// The array of [`Cqe`].
    pub cqes: u32,
    /// The [`Stats`] mirror.
    pub stats: u32,
    /// Reserved.
    pub resv: u32,
}

/// Argument of the SETUP ioctl. Fields marked "in" are the caller's, "out" the kernel's
/// answer; reserved fields must be zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// In: submission entries, a power of two up to [`MAX_SQ_ENTRIES`]. Out: the same.
    pub sq_entries: u32,
    /// In (with [`SETUP_CQSIZE`]): completion entries, a power of two, at least
    /// `sq_entries`. Out: the count in use.
    pub cq_entries: u32,
    /// In: [`SETUP_SQPOLL`], [`SETUP_CQSIZE`].
    pub flags: u32,
    /// In: with [`SETUP_SQPOLL`], how long the poller spins without work before it sleeps
    /// (0 picks the default). Out: the spin in force (the module clamps it to its
    /// `sqpoll_max_idle_ms`), 0 without [`SETUP_SQPOLL`].
    pub sq_idle_ms: u32,
    /// In: data arena size in bytes, a multiple of 4096, at most [`MAX_ARENA_SIZE`].
    pub arena_size: u64,
    /// Out: bytes to map at [`OFF_RING`].
    pub ring_size: u64,
    /// Out: feature bits; none are defined yet.
    pub features: u32,
    /// Reserved.
    pub resv0: u32,
    /// Out: where the submission ring's fields are.
    pub sq_off: SqOffsets,
    /// Out: where the completion ring's fields are.
    pub cq_off: CqOffsets,
    /// Reserved.
    pub resv: [u64; 4],
}

/// Argument of the ENTER ioctl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enter {
    /// Without SQPOLL: how many published entries to consume inline (at most).
    pub to_submit: u32,
    /// With [`ENTER_GETEVENTS`]: completions to wait for.
    pub min_complete: u32,
    /// [`ENTER_SQ_WAKEUP`], [`ENTER_GETEVENTS`].
    pub flags: u32,
    /// Reserved.
    pub resv: u32,
    /// With [`ENTER_GETEVENTS`]: give up after this many nanoseconds (0: no limit).
    pub timeout_ns: u64,
}

/// Argument of the object ioctls (create, attach, detach, select).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectArg {
    /// Create: out. Others: in.
    pub id: u32,
    /// Reserved, must be zero.
    pub flags: u32,
    /// Create: in, bytes, a multiple of 8 up to [`MAX_OBJECT_SIZE`]. Attach: out.
    pub size: u64,
}

/// Argument of the MAP_ATTACH ioctl: attaches a BPF map, by fd, as an object of the ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapAttach {
    /// In: a BPF map's file descriptor. Its open mode decides the rights (a read-only fd
    /// gives no write right).
    pub fd: i32,
    /// In: reserved, must be zero.
    pub flags: u32,
    /// Out: the object id.
    pub id: u32,
    /// Out: the map's type (`BPF_MAP_TYPE_*`).
    pub map_type: u32,
    /// Out: key size in bytes.
    pub key_size: u32,
    /// Out: value size in bytes.
    pub value_size: u32,
    /// Out: the map's `max_entries`.
    pub max_entries: u32,
    /// Out: [`crate::validate::rights`] bits the fd grants.
    pub rights: u32,
    /// Out: bytes that READ, WRITE and the word operations address: array maps
    /// `max_entries` times the value size rounded up to 8 (the values as the map lays them
    /// out, and as `mmap` shows them); 0 for hash maps.
    pub size: u64,
    /// Reserved.
    pub resv: [u64; 2],
}

/// Argument of the one-request-per-system-call ioctl (the baseline path): the kernel
/// validates `sqe` exactly as it does ring entries and fills `cqe`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncOp {
    /// In.
    pub sqe: Sqe,
    /// Out.
    pub cqe: Cqe,
}

/// Counters kept by whoever consumes the ring; mirrored into the ring region and
/// returned by the STATS ioctl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries taken from the submission ring (valid or not).
    pub submitted: u64,
    /// Completions posted.
    pub completed: u64,
    /// Entries refused by validation, all reasons.
    pub rejected: u64,
    /// Refused: unknown opcode or entry flags.
    pub rejected_opcode: u64,
    /// Refused: a reserved or unused field was not zero.
    pub rejected_reserved: u64,
    /// Refused: no such object attached to this ring.
    pub rejected_object: u64,
    /// Refused: offset or length outside the object or the arena.
    pub rejected_bounds: u64,
    /// Refused: word operation on an unaligned offset.
    pub rejected_align: u64,
    /// Times the poller was woken after it slept.
    pub wakeups: u64,
    /// Times the consumer stopped because the completion ring was full.
    pub cq_full: u64,
    /// Requests served through the one-per-system-call path.
    pub sync_ops: u64,
    /// Reserved.
    pub resv: [u64; 5],
}

/// ioctl request numbers: `_IOC(dir, 0xBF, nr, size)` as `<linux/ioctl.h>` builds them.
pub mod ioctl {
    use core::mem::size_of;

    use super::{Enter, MapAttach, ObjectArg, Params, Stats, SyncOp};

    /// The ioctl type byte of this device.
    pub const MAGIC: u32 = 0xBF;

    const WRITE: u32 = 1;
    const READ: u32 = 2;

    const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
        (dir << 30) | ((size as u32) << 16) | (MAGIC << 8) | nr
    }

    /// `_IOWR(0xBF, 0, struct sbpf_params)`: set the ring up (once per open file).
    pub const SETUP: u32 = ioc(READ | WRITE, 0, size_of::<Params>());
    /// `_IOW(0xBF, 1, struct sbpf_enter)`: consume inline, wake the poller, wait.
    pub const ENTER: u32 = ioc(WRITE, 1, size_of::<Enter>());
    /// `_IOWR(0xBF, 2, struct sbpf_object)`: create a kernel object and attach it.
    pub const OBJ_CREATE: u32 = ioc(READ | WRITE, 2, size_of::<ObjectArg>());
    /// `_IOWR(0xBF, 3, struct sbpf_object)`: attach an existing object by id.
    pub const OBJ_ATTACH: u32 = ioc(READ | WRITE, 3, size_of::<ObjectArg>());
    /// `_IOW(0xBF, 4, struct sbpf_object)`: detach an object from this file.
    pub const OBJ_DETACH: u32 = ioc(WRITE, 4, size_of::<ObjectArg>());
    /// `_IOW(0xBF, 5, struct sbpf_object)`: the object `pread`/`pwrite` address.
    pub const OBJ_SELECT: u32 = ioc(WRITE, 5, size_of::<ObjectArg>());
    /// `_IOWR(0xBF, 6, struct sbpf_sync_op)`: perform one request in the system call.
    pub const SYNC_OP: u32 = ioc(READ | WRITE, 6, size_of::<SyncOp>());
    /// `_IOR(0xBF, 7, struct sbpf_stats)`: read the counters.
    pub const STATS: u32 = ioc(READ, 7, size_of::<Stats>());
    /// `_IO(0xBF, 8)`: close the ring. Idempotent; once it returns the kernel consumes no
    /// further entry (sq head names the first one never consumed), every waiter is woken,
    /// and ENTER fails with `ESHUTDOWN` unless GETEVENTS finds `min_complete` ready.
    pub const SHUTDOWN: u32 = ioc(0, 8, 0);
    /// `_IOWR(0xBF, 16, struct sbpf_map_attach)`: attach a BPF map by fd as an object
    /// (detached with [`OBJ_DETACH`]).
    pub const MAP_ATTACH: u32 = ioc(READ | WRITE, 16, size_of::<MapAttach>());
}

/// Ring-region offset of the SQ head.
pub const SQ_HEAD_OFF: u32 = 0;
/// Ring-region offset of the SQ tail.
pub const SQ_TAIL_OFF: u32 = 64;
/// Ring-region offset of the SQ flags.
pub const SQ_FLAGS_OFF: u32 = 128;
/// Ring-region offset of the SQ ring mask.
pub const SQ_MASK_OFF: u32 = 132;
/// Ring-region offset of the SQ ring entries.
pub const SQ_ENTRIES_OFF: u32 = 136;
/// Ring-region offset of the CQ head.
pub const CQ_HEAD_OFF: u32 = 192;
/// Ring-region offset of the CQ tail.
pub const CQ_TAIL_OFF: u32 = 256;
/// Ring-region offset of the CQ flags.
pub const CQ_FLAGS_OFF: u32 = 320;
/// Ring-region offset of the CQ ring mask.
pub const CQ_MASK_OFF: u32 = 324;
/// Ring-region offset of the CQ ring entries.
pub const CQ_ENTRIES_OFF: u32 = 328;
/// Ring-region offset of the [`Stats`] mirror.
pub const STATS_OFF: u32 = 384;
/// Ring-region offset of the first [`Sqe`].
pub const SQES_OFF: u32 = RING_HEADER_SIZE;

/// The offsets this ABI version lays the ring region out with.
pub const fn sq_offsets() -> SqOffsets {
    SqOffsets {
        head: SQ_HEAD_OFF,
        tail: SQ_TAIL_OFF,
        flags: SQ_FLAGS_OFF,
        ring_mask: SQ_MASK_OFF,
        ring_entries: SQ_ENTRIES_OFF,
        sqes: SQES_OFF,
        resv: [0; 2],
    }
}

/// The completion-ring offsets for a ring of `sq_entries` submission entries.
pub const fn cq_offsets(sq_entries: u32) -> CqOffsets {
    CqOffsets {
        head: CQ_HEAD_OFF,
        tail: CQ_TAIL_OFF,
        flags: CQ_FLAGS_OFF,
        ring_mask: CQ_MASK_OFF,
        ring_entries: CQ_ENTRIES_OFF,
        cqes: SQES_OFF + sq_entries * size_of::<Sqe>() as u32,
        stats: STATS_OFF,
        resv: 0,
    }
}

/// Bytes of the ring region for the given entry counts, rounded up to whole pages.
pub const fn ring_size(sq_entries: u32, cq_entries: u32) -> u64 {
    let bytes = RING_HEADER_SIZE as u64
        + sq_entries as u64 * size_of::<Sqe>() as u64
        + cq_entries as u64 * size_of::<Cqe>() as u64;
    (bytes + 4095) & !4095
}

const _: () = {
    assert!(size_of::<Sqe>() == 64);
    assert!(offset_of!(Sqe, opcode) == 0);
    assert!(offset_of!(Sqe, flags) == 1);
    assert!(offset_of!(Sqe, resv0) == 2);
    assert!(offset_of!(Sqe, obj_id) == 4);
    assert!(offset_of!(Sqe, obj_off) == 8);
    assert!(offset_of!(Sqe, arena_off) == 16);
    assert!(offset_of!(Sqe, len) == 24);
    assert!(offset_of!(Sqe, resv1) == 28);
    assert!(offset_of!(Sqe, user_data) == 32);
    assert!(offset_of!(Sqe, val) == 40);
    assert!(offset_of!(Sqe, cmp) == 48);
    assert!(offset_of!(Sqe, resv2) == 56);
    assert!(offset_of!(Sqe, seq) == 60);

    assert!(size_of::<Cqe>() == 32);
    assert!(offset_of!(Cqe, user_data) == 0);
    assert!(offset_of!(Cqe, res) == 8);
    assert!(offset_of!(Cqe, flags) == 12);
    assert!(offset_of!(Cqe, value) == 16);
    assert!(offset_of!(Cqe, resv) == 24);

    assert!(size_of::<SqOffsets>() == 32);
    assert!(size_of::<CqOffsets>() == 32);
    assert!(offset_of!(CqOffsets, stats) == 24);

    assert!(size_of::<Params>() == 136);
    assert!(offset_of!(Params, arena_size) == 16);
    assert!(offset_of!(Params, ring_size) == 24);
    assert!(offset_of!(Params, features) == 32);
    assert!(offset_of!(Params, sq_off) == 40);
    assert!(offset_of!(Params, cq_off) == 72);
    assert!(offset_of!(Params, resv) == 104);

    assert!(size_of::<Enter>() == 24);
    assert!(offset_of!(Enter, timeout_ns) == 16);
    assert!(size_of::<ObjectArg>() == 16);
    assert!(size_of::<SyncOp>() == 96);
    assert!(size_of::<MapAttach>() == 56);
    assert!(offset_of!(MapAttach, rights) == 28);
    assert!(offset_of!(MapAttach, size) == 32);
    assert!(offset_of!(SyncOp, cqe) == 64);
    assert!(size_of::<Stats>() == 128);
    assert!(offset_of!(Stats, wakeups) == 64);
    assert!(offset_of!(Stats, sync_ops) == 80);

    // Head and tail of each ring on cache lines of their own; the stats mirror fits
    // before the entries.
    assert!(SQ_TAIL_OFF - SQ_HEAD_OFF >= 64);
    assert!(SQ_FLAGS_OFF - SQ_TAIL_OFF >= 64);
    assert!(CQ_TAIL_OFF - CQ_HEAD_OFF >= 64);
    assert!(CQ_FLAGS_OFF - CQ_TAIL_OFF >= 64);
    assert!(STATS_OFF + size_of::<Stats>() as u32 <= SQES_OFF);
    assert!(SQES_OFF % 64 == 0);
};
