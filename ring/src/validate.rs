//! Validation on both sides of the ring.
//!
//! - [`check_entry`] is what the consumer (kernel module or local poller) applies to its own
//!   copy of every entry: the table in `docs/ABI.md`, mirrored in C by
//!   `kmod/include/sbpf_validate.h`. It is the enforcement.
//! - [`Validator`] is the producer-side policy hook that every entry passes before a slot is
//!   reserved: [`BoundsValidator`] natively, or an eBPF guard from `sbpf-guard`. It rejects
//!   early, with a reason, at the thread that made the entry; it is not a security boundary,
//!   since a process can always write the shared pages directly.

use std::{borrow::Cow, fmt};

use crate::abi::{opcode, Sqe, MAP_EXIST, MAX_IO_LEN};

/// Most objects a ring has attached at once, and so a [`Limits`] describes: the kernel
/// module's per-file limit, which the local backend applies too.
pub const MAX_LIMIT_OBJECTS: usize = 64;

/// What a ring lets its producers do with an object ([`ObjectLimit::rights`]).
pub mod rights {
    /// READ, LOAD64 and MAP_LOOKUP may read it.
    pub const READ: u32 = 1 << 0;
    /// WRITE, STORE64, FETCH_ADD64, CAS64, MAP_UPDATE and MAP_DELETE may change it.
    pub const WRITE: u32 = 1 << 1;
    /// READ and WRITE: every object a ring creates, and a BPF map's values through a
    /// writable fd.
    pub const ALL: u32 = READ | WRITE;
    /// The object is a BPF map: MAP_UPDATE, MAP_LOOKUP and MAP_DELETE address it by key.
    pub const MAP: u32 = 1 << 2;
}

/// One attached object as a validator sees it. `Default` is id 0, size 0, every right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectLimit {
    /// Object id.
    pub id: u32,
    /// [`rights`] bits.
    pub rights: u32,
    /// Size in bytes.
    pub size: u64,
}

impl Default for ObjectLimit {
    fn default() -> Self {
        ObjectLimit::new(0, 0)
    }
}

impl ObjectLimit {
    /// An object with every right.
    pub const fn new(id: u32, size: u64) -> Self {
        ObjectLimit {
            id,
            rights: rights::ALL,
            size,
        }
    }
}

/// What a producer-side validator knows of its ring: the arena and the attached objects.
///
/// The objects are kept sorted by id, so [`Limits::object`] is a binary search over up to
/// [`MAX_LIMIT_OBJECTS`]; build a `Limits` with [`Limits::new`] and [`Limits::push`],
/// which keep that order (a hand-written unsorted table makes lookups miss). Two `Limits` are equal when they describe the same arena and the
/// same objects; the unused tail of `objects` does not take part (so comparing costs what
/// is in use, which validators that cache per-limits state do on every entry).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Data arena size in bytes.
    pub arena_size: u64,
    /// Attached objects, sorted by id; the first `nobjects` are meaningful.
    pub objects: [ObjectLimit; MAX_LIMIT_OBJECTS],
    /// How many of `objects` are in use.
    pub nobjects: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(0)
    }
}

impl Limits {
    /// Limits with an arena and no objects.
    pub const fn new(arena_size: u64) -> Self {
        Limits {
            arena_size,
            objects: [ObjectLimit {
                id: 0,
                rights: 0,
                size: 0,
            }; MAX_LIMIT_OBJECTS],
            nobjects: 0,
        }
    }

    /// The attached objects, by id (at most [`MAX_LIMIT_OBJECTS`], whatever `nobjects`
    /// says).
    #[inline]
    pub fn objects(&self) -> &[ObjectLimit] {
        &self.objects[..(self.nobjects as usize).min(MAX_LIMIT_OBJECTS)]
    }

    /// Object `id`, if attached.
    #[inline]
    pub fn object(&self, id: u32) -> Option<&ObjectLimit> {
        let objects = self.objects();
        objects
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .map(|i| &objects[i])
    }

    /// Size of object `id`, if attached.
    #[inline]
    pub fn object_size(&self, id: u32) -> Option<u64> {
        self.object(id).map(|o| o.size)
    }

    /// Adds an object, or replaces the one with its id; returns `false` when the table is
    /// full ([`MAX_LIMIT_OBJECTS`]) and the object is not in it.
    pub fn push(&mut self, object: ObjectLimit) -> bool {
        let n = self.objects().len();
        match self.objects().binary_search_by_key(&object.id, |o| o.id) {
            Ok(i) => {
                self.objects[i] = object;
                true
            }
            Err(_) if n == MAX_LIMIT_OBJECTS => false,
            Err(i) => {
                self.objects.copy_within(i..n, i + 1);
                self.objects[i] = object;
                self.nobjects = n as u32 + 1;
                true
            }
        }
    }

    /// Removes object `id` if present.
    pub fn remove(&mut self, id: u32) {
        let n = self.objects().len();
        if let Ok(i) = self.objects().binary_search_by_key(&id, |o| o.id) {
            self.objects.copy_within(i + 1..n, i);
            self.nobjects = n as u32 - 1;
            self.objects[n - 1] = ObjectLimit::default();
        }
    }
}

impl PartialEq for Limits {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.arena_size == other.arena_size && self.objects() == other.objects()
    }
}

impl Eq for Limits {}

/// Why a producer-side validator refused an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable reason: a guard's non-zero return value, or a [`Fault`] code.
    pub code: u64,
    /// Human-readable reason.
    pub reason: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with a fixed reason.
    pub const fn new(code: u64, reason: &'static str) -> Self {
        Rejection {
            code,
            reason: Cow::Borrowed(reason),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.reason, self.code)
    }
}

impl std::error::Error for Rejection {}

impl From<Fault> for Rejection {
    fn from(fault: Fault) -> Self {
        Rejection::new(fault as u64, fault.reason())
    }
}

/// The producer-side policy every entry passes before a slot is reserved.
///
/// Each producer handle owns its validator; cloning the handle clones it
/// ([`Validator::clone_box`]), so a validator may keep private state (a compiled guard,
/// scratch memory) without locks.
pub trait Validator: Send + 'static {
    /// Accepts `sqe` or says why not. Must not allocate on the accepting path.
    fn validate(&mut self, sqe: &Sqe, limits: &Limits) -> Result<(), Rejection>;

    /// A copy for another producer handle.
    fn clone_box(&self) -> Box<dyn Validator>;

    /// Short name for logs and statistics.
    fn name(&self) -> &str {
        "validator"
    }
}

/// Accepts everything. For benchmarks of the bare ring, and for tests that need the
/// consumer to see malformed entries.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl Validator for AcceptAll {
    fn validate(&mut self, _sqe: &Sqe, _limits: &Limits) -> Result<(), Rejection> {
        Ok(())
    }

    fn clone_box(&self) -> Box<dyn Validator> {
        Box::new(*self)
    }

    fn name(&self) -> &str {
        "accept-all"
    }
}

/// The native validator: the consumer's own checks ([`check_entry`]) run early, against the
/// producer's view of the limits. The default for every producer handle.
#[derive(Clone, Copy, Debug, Default)]
pub struct BoundsValidator;

impl Validator for BoundsValidator {
    fn validate(&mut self, sqe: &Sqe, limits: &Limits) -> Result<(), Rejection> {
        let object = limits.object(sqe.obj_id);
        check_entry(sqe, limits.arena_size, |_| object.map(|o| o.size))?;
        match object {
            Some(o) if o.rights & needed_rights(sqe.opcode) != needed_rights(sqe.opcode) => Err(
                Rejection::new(RIGHTS_CODE, "the object does not allow this operation"),
            ),
            _ => Ok(()),
        }
    }

    fn clone_box(&self) -> Box<dyn Validator> {
        Box::new(*self)
    }

    fn name(&self) -> &str {
        "bounds"
    }
}

/// [`Rejection::code`] of an entry whose object lacks a right the opcode needs; above every
/// [`Fault`] code.
pub const RIGHTS_CODE: u64 = 16;

/// The [`rights`] an opcode needs of its object.
pub const fn needed_rights(op: u8) -> u32 {
    match op {
        opcode::NOP => 0,
        opcode::READ | opcode::LOAD64 => rights::READ,
        opcode::WRITE | opcode::STORE64 => rights::WRITE,
        opcode::MAP_LOOKUP => rights::READ | rights::MAP,
        opcode::MAP_UPDATE | opcode::MAP_DELETE => rights::WRITE | rights::MAP,
        _ => rights::READ | rights::WRITE,
    }
}

/// Why the consumer refused an entry; the rows of the validation table in `docs/ABI.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Fault {
    /// Unknown opcode or non-zero entry flags.
    Opcode = 1,
    /// A reserved field, or a field the opcode does not use, is not zero.
    Reserved = 2,
    /// No such object attached.
    Object = 3,
    /// READ/WRITE length zero or above [`MAX_IO_LEN`].
    Length = 4,
    /// Offset plus length outside the object or the arena.
    Bounds = 5,
    /// Word operation on an unaligned offset.
    Align = 6,
}

impl Fault {
    /// The negative errno a completion carries for this fault.
    pub const fn errno(self) -> i32 {
        match self {
            Fault::Opcode | Fault::Reserved | Fault::Length | Fault::Align => -libc::EINVAL,
            Fault::Object => -libc::ENOENT,
            Fault::Bounds => -libc::EFAULT,
        }
    }

    /// A short description.
    pub const fn reason(self) -> &'static str {
        match self {
            Fault::Opcode => "unknown opcode or entry flags",
            Fault::Reserved => "reserved or unused field not zero",
            Fault::Object => "object not attached",
            Fault::Length => "length zero or too large",
            Fault::Bounds => "offset and length outside the object or arena",
            Fault::Align => "word operation not 8-byte aligned",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The consumer's validation of its private copy of an entry: the table in `docs/ABI.md`,
/// in its order. `object_size` answers the size of an attached object.
pub fn check_entry(
    sqe: &Sqe,
    arena_size: u64,
    object_size: impl FnOnce(u32) -> Option<u64>,
) -> Result<(), Fault> {
    if sqe.opcode >= opcode::COUNT || sqe.flags != 0 {
        return Err(Fault::Opcode);
    }
    if sqe.resv0 != 0 || sqe.resv1 != 0 || sqe.resv2 != 0 {
        return Err(Fault::Reserved);
    }
    // Which fields the opcode leaves unused, and therefore requires to be zero.
    let unused_nonzero = match sqe.opcode {
        opcode::NOP => {
            sqe.obj_id != 0
                || sqe.obj_off != 0
                || sqe.arena_off != 0
                || sqe.len != 0
                || sqe.val != 0
                || sqe.cmp != 0
        }
        opcode::READ | opcode::WRITE => sqe.val != 0 || sqe.cmp != 0,
        opcode::LOAD64 => sqe.arena_off != 0 || sqe.len != 0 || sqe.val != 0 || sqe.cmp != 0,
        opcode::STORE64 | opcode::FETCH_ADD64 => sqe.arena_off != 0 || sqe.len != 0 || sqe.cmp != 0,
        // The flags are BPF's: BPF_ANY, BPF_NOEXIST or BPF_EXIST.
        opcode::MAP_UPDATE => sqe.obj_off != 0 || sqe.cmp != 0 || sqe.val > MAP_EXIST,
        opcode::MAP_LOOKUP | opcode::MAP_DELETE => sqe.obj_off != 0 || sqe.val != 0 || sqe.cmp != 0,
        _ => sqe.arena_off != 0 || sqe.len != 0,
    };
    if unused_nonzero {
        return Err(Fault::Reserved);
    }
    if sqe.opcode == opcode::NOP {
        return Ok(());
    }
    let size = object_size(sqe.obj_id).ok_or(Fault::Object)?;
    let inside =
        |off: u64, len: u64, limit: u64| off.checked_add(len).is_some_and(|end| end <= limit);
    match sqe.opcode {
        opcode::READ | opcode::WRITE => {
            if sqe.len == 0 || sqe.len > MAX_IO_LEN {
                return Err(Fault::Length);
            }
            let len = u64::from(sqe.len);
            if !inside(sqe.obj_off, len, size) || !inside(sqe.arena_off, len, arena_size) {
                return Err(Fault::Bounds);
            }
        }
        // Key and value live in the arena only; whether `len` fits the map's key and value
        // sizes is the consumer's check against the map itself (docs/ABI.md).
        opcode::MAP_UPDATE | opcode::MAP_LOOKUP | opcode::MAP_DELETE => {
            if sqe.len == 0 || sqe.len > MAX_IO_LEN {
                return Err(Fault::Length);
            }
            if !inside(sqe.arena_off, u64::from(sqe.len), arena_size) {
                return Err(Fault::Bounds);
            }
        }
        _ => {
            if sqe.obj_off % 8 != 0 {
                return Err(Fault::Align);
            }
            if !inside(sqe.obj_off, 8, size) {
                return Err(Fault::Bounds);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_compare_what_is_in_use() {
        let mut a = Limits::new(4096);
        assert!(a.push(ObjectLimit::new(2, 128)));
        assert!(a.push(ObjectLimit::new(1, 64)));
        assert_eq!(a.objects()[0].id, 1, "kept sorted by id");
        let mut b = a;
        b.remove(2);
        assert_ne!(a, b);
        // A stale entry past `nobjects` does not make two equal tables differ.
        let mut c = b;
        c.objects[1] = ObjectLimit::new(9, 9);
        assert_eq!(b, c);
        assert_eq!(c.objects(), &[ObjectLimit::new(1, 64)]);
        // Sizes, rights and the arena all count.
        let mut e = a;
        e.objects[0].size = 65;
        assert_ne!(a, e);
        let mut r = a;
        r.objects[0].rights = rights::READ;
        assert_ne!(a, r);
        assert_ne!(
            a,
            Limits {
                arena_size: 8192,
                ..a
            }
        );
        // A corrupt count is clamped, not a panic.
        let f = Limits { nobjects: 99, ..a };
        assert_eq!(f.objects().len(), MAX_LIMIT_OBJECTS);
    }

    #[test]
    fn limits_hold_every_object_a_ring_may_have() {
        let mut l = Limits::new(4096);
        // Ids in an order that is neither sorted nor reversed.
        let ids: Vec<u32> = (0..MAX_LIMIT_OBJECTS as u32)
            .map(|i| (i * 37) % 101 + 1)
            .collect();
        for &id in &ids {
            assert!(l.push(ObjectLimit::new(id, u64::from(id) * 8)));
        }
        assert!(!l.push(ObjectLimit::new(1000, 8)), "one past the limit");
        for &id in &ids {
            assert_eq!(l.object_size(id), Some(u64::from(id) * 8), "object {id}");
        }
        assert_eq!(l.object_size(1000), None);
        assert!(l.objects().windows(2).all(|w| w[0].id < w[1].id));
        // Pushing a known id replaces it, even when full.
        assert!(l.push(ObjectLimit::new(ids[5], 16)));
        assert_eq!(l.object_size(ids[5]), Some(16));
        l.remove(ids[3]);
        assert_eq!(l.object_size(ids[3]), None);
        assert_eq!(l.objects().len(), MAX_LIMIT_OBJECTS - 1);
        assert!(l.push(ObjectLimit::new(1000, 8)));
        assert_eq!(l.object_size(1000), Some(8));
    }
}
