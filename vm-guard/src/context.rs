//! The guard's context: the one read-only block of memory a guard program sees, through `r1`.
//!
//! Version [`CONTEXT_VERSION`], [`CONTEXT_SIZE`] bytes, little-endian (the host's order; rbpf
//! runs on the host), every field naturally aligned:
//!
//! | offset | size | field | what |
//! |---|---|---|---|
//! | 0 | 64 | `sqe` | the submission entry, exactly [`Sqe`]'s bytes (see `docs/ABI.md`) |
//! | 0 | 1 | `sqe.opcode` | |
//! | 1 | 1 | `sqe.flags` | |
//! | 2 | 2 | `sqe.resv0` | |
//! | 4 | 4 | `sqe.obj_id` | |
//! | 8 | 8 | `sqe.obj_off` | |
//! | 16 | 8 | `sqe.arena_off` | |
//! | 24 | 4 | `sqe.len` | |
//! | 28 | 4 | `sqe.resv1` | |
//! | 32 | 8 | `sqe.user_data` | |
//! | 40 | 8 | `sqe.val` | |
//! | 48 | 8 | `sqe.cmp` | |
//! | 56 | 4 | `sqe.resv2` | |
//! | 60 | 4 | `sqe.seq` | |
//! | 64 | 4 | `version` | [`CONTEXT_VERSION`]; a guard may refuse a layout it does not know |
//! | 68 | 4 | `size` | [`CONTEXT_SIZE`]: bytes a guard may load from |
//! | 72 | 4 | `nobjects` | how many of `objects` are meaningful (at most [`CTX_OBJECTS`]) |
//! | 76 | 4 | `resv` | zero |
//! | 80 | 8 | `arena_size` | the data arena, bytes |
//! | 88 | 8 | `allowed_opcodes` | bit `n` set: opcode `n` allowed by this guard stage's configuration |
//! | 96 | 16 × 8 | `objects` | `{ id: u32, rights: u32, size: u64 }`: the ring's first [`CTX_OBJECTS`] objects by id |
//! | 224 | 16 | `object` | (version 2) the entry's own object as the producer resolved it, `{ id, rights, size }`; all zero when the entry names no attached object (an attached object always has a right; a hash map's size is 0) |
//!
//! The same layout is `struct sbpf_guard_ctx` in `vm-guard/include/sbpf_guard.h`; the
//! `c_header_layout_matches_rust` test (`tests/c_guards.rs`) compiles the header and
//! compares every offset.
//!
//! Compatibility: fields are only ever appended, `size` grows with them and `version` is
//! bumped; existing offsets never move. A ring has up to
//! [`MAX_LIMIT_OBJECTS`](sbpf_ring::validate::MAX_LIMIT_OBJECTS) objects; the table holds
//! the first [`CTX_OBJECTS`], as version 1 did, so a version-1 guard that scans it keeps
//! working for those. A guard of version 2 reads `object` instead: one load, whatever the
//! ring's object count. `rights` are the bits of `sbpf_ring::validate::rights`.

use core::mem::{offset_of, size_of};

use sbpf_ring::{
    abi::Sqe,
    validate::{Limits, ObjectLimit},
};

/// Layout version written into every context.
pub const CONTEXT_VERSION: u32 = 2;

/// Entries of the context's `objects` table.
pub const CTX_OBJECTS: usize = 8;

/// Bytes of the context; a guard may load from `[0, CONTEXT_SIZE)` and nowhere else.
pub const CONTEXT_SIZE: usize = size_of::<GuardContext>();

/// Every opcode sbpf-ring knows, as an `allowed_opcodes` mask.
pub const ALL_OPCODES: u64 = (1 << sbpf_ring::abi::opcode::COUNT) - 1;

/// One attached object as the guard sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardObject {
    /// Object id.
    pub id: u32,
    /// `sbpf_ring::validate::rights` bits (zero in version 1).
    pub rights: u32,
    /// Size in bytes.
    pub size: u64,
}

/// The guard context, as a Rust type: what [`ContextBuf`] holds as bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardContext {
    /// The descriptor under judgement.
    pub sqe: Sqe,
    /// [`CONTEXT_VERSION`].
    pub version: u32,
    /// [`CONTEXT_SIZE`].
    pub size: u32,
    /// Meaningful entries of `objects`.
    pub nobjects: u32,
    /// Zero.
    pub resv: u32,
    /// Data arena size in bytes.
    pub arena_size: u64,
    /// Bit `n`: opcode `n` is allowed by the stage's configuration.
    pub allowed_opcodes: u64,
    /// The ring's first [`CTX_OBJECTS`] attached objects, by id.
    pub objects: [GuardObject; CTX_OBJECTS],
    /// The entry's own object; zero when it names no attached object.
    pub object: GuardObject,
}

impl From<&ObjectLimit> for GuardObject {
    fn from(o: &ObjectLimit) -> Self {
        GuardObject {
            id: o.id,
            rights: o.rights,
            size: o.size,
        }
    }
}

/// Offsets of the context's fields, for guard authors writing assembly.
pub mod off {
    use core::mem::offset_of;

    use sbpf_ring::abi::Sqe;

    use super::{GuardContext, GuardObject};

    /// `sqe.opcode` (u8).
    pub const OPCODE: usize = offset_of!(Sqe, opcode);
    /// `sqe.flags` (u8).
    pub const FLAGS: usize = offset_of!(Sqe, flags);
    /// `sqe.resv0` (u16).
    pub const RESV0: usize = offset_of!(Sqe, resv0);
    /// `sqe.obj_id` (u32).
    pub const OBJ_ID: usize = offset_of!(Sqe, obj_id);
    /// `sqe.obj_off` (u64).
    pub const OBJ_OFF: usize = offset_of!(Sqe, obj_off);
    /// `sqe.arena_off` (u64).
    pub const ARENA_OFF: usize = offset_of!(Sqe, arena_off);
    /// `sqe.len` (u32).
    pub const LEN: usize = offset_of!(Sqe, len);
    /// `sqe.resv1` (u32).
    pub const RESV1: usize = offset_of!(Sqe, resv1);
    /// `sqe.user_data` (u64).
    pub const USER_DATA: usize = offset_of!(Sqe, user_data);
    /// `sqe.val` (u64).
    pub const VAL: usize = offset_of!(Sqe, val);
    /// `sqe.cmp` (u64).
    pub const CMP: usize = offset_of!(Sqe, cmp);
    /// `sqe.resv2` (u32).
    pub const RESV2: usize = offset_of!(Sqe, resv2);
    /// `sqe.seq` (u32).
    pub const SEQ: usize = offset_of!(Sqe, seq);
    /// `version` (u32).
    pub const VERSION: usize = offset_of!(GuardContext, version);
    /// `size` (u32).
    pub const SIZE: usize = offset_of!(GuardContext, size);
    /// `nobjects` (u32).
    pub const NOBJECTS: usize = offset_of!(GuardContext, nobjects);
    /// `arena_size` (u64).
    pub const ARENA_SIZE: usize = offset_of!(GuardContext, arena_size);
    /// `allowed_opcodes` (u64).
    pub const ALLOWED_OPCODES: usize = offset_of!(GuardContext, allowed_opcodes);
    /// `objects[0]`; object `i` is at `OBJECTS + i * OBJECT_STRIDE`.
    pub const OBJECTS: usize = offset_of!(GuardContext, objects);
    /// Bytes per object entry.
    pub const OBJECT_STRIDE: usize = core::mem::size_of::<GuardObject>();
    /// `id` (u32) within an object entry.
    pub const OBJECT_ID: usize = offset_of!(GuardObject, id);
    /// `rights` (u32) within an object entry.
    pub const OBJECT_RIGHTS: usize = offset_of!(GuardObject, rights);
    /// `size` (u64) within an object entry.
    pub const OBJECT_SIZE: usize = offset_of!(GuardObject, size);
    /// `object`, the entry's own object (version 2).
    pub const OBJECT: usize = offset_of!(GuardContext, object);
}

const _: () = {
    assert!(size_of::<Sqe>() == 64);
    assert!(offset_of!(GuardContext, sqe) == 0);
    assert!(offset_of!(GuardContext, version) == 64);
    assert!(offset_of!(GuardContext, size) == 68);
    assert!(offset_of!(GuardContext, nobjects) == 72);
    assert!(offset_of!(GuardContext, resv) == 76);
    assert!(offset_of!(GuardContext, arena_size) == 80);
    assert!(offset_of!(GuardContext, allowed_opcodes) == 88);
    assert!(offset_of!(GuardContext, objects) == 96);
    assert!(size_of::<GuardObject>() == 16);
    assert!(offset_of!(GuardObject, size) == 8);
    assert!(CTX_OBJECTS == 8);
    assert!(offset_of!(GuardContext, object) == 224);
    assert!(size_of::<GuardContext>() == 240);
    assert!(CONTEXT_SIZE % 8 == 0);
};

impl GuardContext {
    /// The context for `sqe` under `limits`, with the stage's opcode mask.
    pub fn new(sqe: &Sqe, limits: &Limits, allowed_opcodes: u64) -> Self {
        let mut objects = [GuardObject::default(); CTX_OBJECTS];
        let n = limits.objects().len().min(CTX_OBJECTS);
        for (slot, o) in objects.iter_mut().zip(limits.objects()) {
            *slot = o.into();
        }
        GuardContext {
            sqe: *sqe,
            version: CONTEXT_VERSION,
            size: CONTEXT_SIZE as u32,
            nobjects: n as u32,
            resv: 0,
            arena_size: limits.arena_size,
            allowed_opcodes,
            objects,
            object: limits
                .object(sqe.obj_id)
                .map(Into::into)
                .unwrap_or_default(),
        }
    }
}

/// The context as the bytes a guard program reads: an 8-byte-aligned buffer, filled field by
/// field (safe code, no transmutes) and handed to the VM as `r1`.
#[repr(C, align(8))]
#[derive(Clone, Debug)]
pub struct ContextBuf(pub [u8; CONTEXT_SIZE]);

impl Default for ContextBuf {
    fn default() -> Self {
        ContextBuf([0; CONTEXT_SIZE])
    }
}

impl ContextBuf {
    /// A buffer holding `ctx`.
    pub fn from_context(ctx: &GuardContext) -> Self {
        let mut buf = ContextBuf::default();
        buf.write_sqe(&ctx.sqe);
        buf.put(off::VERSION, &ctx.version.to_ne_bytes());
        buf.put(off::SIZE, &ctx.size.to_ne_bytes());
        buf.put(off::NOBJECTS, &ctx.nobjects.to_ne_bytes());
        buf.put(off::ARENA_SIZE, &ctx.arena_size.to_ne_bytes());
        buf.put(off::ALLOWED_OPCODES, &ctx.allowed_opcodes.to_ne_bytes());
        for (i, o) in ctx.objects.iter().enumerate() {
            buf.write_object(off::OBJECTS + i * off::OBJECT_STRIDE, o);
        }
        buf.write_object(off::OBJECT, &ctx.object);
        buf
    }

    /// Writes the descriptor and the limits, leaving `allowed_opcodes` as it is.
    pub fn fill(&mut self, sqe: &Sqe, limits: &Limits) {
        self.write_sqe(sqe);
        self.put(off::VERSION, &CONTEXT_VERSION.to_ne_bytes());
        self.put(off::SIZE, &(CONTEXT_SIZE as u32).to_ne_bytes());
        let objects = limits.objects();
        let n = objects.len().min(CTX_OBJECTS);
        self.put(off::NOBJECTS, &(n as u32).to_ne_bytes());
        self.put(off::ARENA_SIZE, &limits.arena_size.to_ne_bytes());
        for i in 0..CTX_OBJECTS {
            let o = objects.get(i).map(Into::into).unwrap_or_default();
            self.write_object(off::OBJECTS + i * off::OBJECT_STRIDE, &o);
        }
        self.fill_object(sqe, limits);
    }

    /// Writes only what depends on the descriptor: the descriptor and its object (the
    /// rest of the limits part is left as it is).
    #[inline]
    pub fn fill_sqe(&mut self, sqe: &Sqe, limits: &Limits) {
        self.write_sqe(sqe);
        self.fill_object(sqe, limits);
    }

    #[inline]
    fn fill_object(&mut self, sqe: &Sqe, limits: &Limits) {
        let o = limits
            .object(sqe.obj_id)
            .map(Into::into)
            .unwrap_or_default();
        self.write_object(off::OBJECT, &o);
    }

    /// Sets the `allowed_opcodes` word.
    #[inline]
    pub fn set_allowed_opcodes(&mut self, mask: u64) {
        self.put(off::ALLOWED_OPCODES, &mask.to_ne_bytes());
    }

    /// The context these bytes hold.
    pub fn to_context(&self) -> GuardContext {
        let u32_at = |o: usize| u32::from_ne_bytes(self.0[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_ne_bytes(self.0[o..o + 8].try_into().unwrap_or([0; 8]));
        let object_at = |base: usize| GuardObject {
            id: u32_at(base + off::OBJECT_ID),
            rights: u32_at(base + off::OBJECT_RIGHTS),
            size: u64_at(base + off::OBJECT_SIZE),
        };
        let mut objects = [GuardObject::default(); CTX_OBJECTS];
        for (i, o) in objects.iter_mut().enumerate() {
            *o = object_at(off::OBJECTS + i * off::OBJECT_STRIDE);
        }
        GuardContext {
            sqe: Sqe {
                opcode: self.0[off::OPCODE],
                flags: self.0[off::FLAGS],
                resv0: u16::from_ne_bytes([self.0[off::RESV0], self.0[off::RESV0 + 1]]),
                obj_id: u32_at(off::OBJ_ID),
                obj_off: u64_at(off::OBJ_OFF),
                arena_off: u64_at(off::ARENA_OFF),
                len: u32_at(off::LEN),
                resv1: u32_at(off::RESV1),
                user_data: u64_at(off::USER_DATA),
                val: u64_at(off::VAL),
                cmp: u64_at(off::CMP),
                resv2: u32_at(off::RESV2),
                seq: u32_at(off::SEQ),
            },
            version: u32_at(off::VERSION),
            size: u32_at(off::SIZE),
            nobjects: u32_at(off::NOBJECTS),
            resv: u32_at(off::VERSION + 12),
            arena_size: u64_at(off::ARENA_SIZE),
            allowed_opcodes: u64_at(off::ALLOWED_OPCODES),
            objects,
            object: object_at(off::OBJECT),
        }
    }

    #[inline]
    fn write_sqe(&mut self, s: &Sqe) {
        self.0[off::OPCODE] = s.opcode;
        self.0[off::FLAGS] = s.flags;
        self.put(off::RESV0, &s.resv0.to_ne_bytes());
        self.put(off::OBJ_ID, &s.obj_id.to_ne_bytes());
        self.put(off::OBJ_OFF, &s.obj_off.to_ne_bytes());
        self.put(off::ARENA_OFF, &s.arena_off.to_ne_bytes());
        self.put(off::LEN, &s.len.to_ne_bytes());
        self.put(off::RESV1, &s.resv1.to_ne_bytes());
        self.put(off::USER_DATA, &s.user_data.to_ne_bytes());
        self.put(off::VAL, &s.val.to_ne_bytes());
        self.put(off::CMP, &s.cmp.to_ne_bytes());
        self.put(off::RESV2, &s.resv2.to_ne_bytes());
        self.put(off::SEQ, &s.seq.to_ne_bytes());
    }

    #[inline]
    fn write_object(&mut self, base: usize, o: &GuardObject) {
        self.put(base + off::OBJECT_ID, &o.id.to_ne_bytes());
        self.put(base + off::OBJECT_RIGHTS, &o.rights.to_ne_bytes());
        self.put(base + off::OBJECT_SIZE, &o.size.to_ne_bytes());
    }

    #[inline(always)]
    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

/// [`CTX_OBJECTS`], under its version-1 name.
pub const MAX_LIMIT_OBJECTS_CTX: usize = CTX_OBJECTS;

#[cfg(test)]
mod tests {
    use sbpf_ring::validate::ObjectLimit;

    use super::*;

    #[test]
    fn buffer_round_trips_the_context() {
        let mut limits = Limits::new(1 << 20);
        limits.push(ObjectLimit::new(7, 4096));
        limits.push(ObjectLimit::new(9, 64));
        let sqe = Sqe {
            opcode: 1,
            flags: 2,
            resv0: 0x0304,
            obj_id: 7,
            obj_off: 0x1122_3344_5566_7788,
            arena_off: 99,
            len: 64,
            resv1: 5,
            user_data: 0xdead_beef,
            val: 11,
            cmp: 12,
            resv2: 13,
            seq: 14,
        };
        let ctx = GuardContext::new(&sqe, &limits, 0b101);
        let buf = ContextBuf::from_context(&ctx);
        assert_eq!(buf.to_context(), ctx);
        let mut filled = ContextBuf::default();
        filled.fill(&sqe, &limits);
        filled.set_allowed_opcodes(0b101);
        assert_eq!(filled.0, buf.0);
        assert_eq!(ctx.object, GuardObject::from(&ObjectLimit::new(7, 4096)));
    }

    #[test]
    fn the_entry_sees_its_own_object_beyond_the_table() {
        let mut limits = Limits::new(1 << 20);
        for id in 1..=40 {
            assert!(limits.push(ObjectLimit::new(id, u64::from(id) * 64)));
        }
        let sqe = Sqe {
            opcode: 1,
            obj_id: 33,
            len: 8,
            ..Sqe::default()
        };
        let mut buf = ContextBuf::default();
        buf.fill(&sqe, &limits);
        let ctx = buf.to_context();
        assert_eq!(ctx.nobjects as usize, CTX_OBJECTS);
        assert!(
            ctx.objects.iter().all(|o| o.id <= 8),
            "the first eight by id"
        );
        assert_eq!((ctx.object.id, ctx.object.size), (33, 33 * 64));
        // Only the descriptor changes: the object follows it.
        buf.fill_sqe(&Sqe { obj_id: 12, ..sqe }, &limits);
        assert_eq!(buf.to_context().object.size, 12 * 64);
        buf.fill_sqe(&Sqe { obj_id: 99, ..sqe }, &limits);
        assert_eq!(buf.to_context().object, GuardObject::default());
    }
}
