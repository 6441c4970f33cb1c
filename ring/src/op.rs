//! Typed builders, one per opcode: required fields in `new`, `user_data` as a setter,
//! `build` gives the [`Sqe`]. Fields an opcode does not use stay zero, as validation
//! requires.
//!
//! ```
//! use sbpf_ring::{op, ObjectId};
//! let obj = ObjectId(3);
//! let sqe = op::FetchAdd64::new(obj, 16, 1).user_data(42).build();
//! assert_eq!((sqe.opcode, sqe.obj_off, sqe.val, sqe.user_data), (5, 16, 1, 42));
//! ```

use crate::abi::{opcode, Sqe};

/// Id of a kernel object (or a local backend object).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub u32);

impl core::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "object {}", self.0)
    }
}

macro_rules! builder {
    ($(#[$doc:meta])* $name:ident, $op:expr, ($($arg:ident: $ty:ty => $field:ident),*)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[must_use = "a builder does nothing until `build` and submission"]
        pub struct $name(Sqe);

        impl $name {
            /// The operation with its required fields.
            #[allow(clippy::new_without_default)]
            pub const fn new($($arg: $ty),*) -> Self {
                #[allow(unused_mut)]
                let mut sqe = Sqe {
                    opcode: $op,
                    flags: 0,
                    resv0: 0,
                    obj_id: 0,
                    obj_off: 0,
                    arena_off: 0,
                    len: 0,
                    resv1: 0,
                    user_data: 0,
                    val: 0,
                    cmp: 0,
                    resv2: 0,
                    seq: 0,
                };
                $(builder!(@set sqe, $field, $arg);)*
                $name(sqe)
            }

            /// Sets the value the completion carries back.
            pub const fn user_data(mut self, user_data: u64) -> Self {
                self.0.user_data = user_data;
                self
            }

            /// The entry.
            pub const fn build(self) -> Sqe {
                self.0
            }
        }

        impl From<$name> for Sqe {
            fn from(op: $name) -> Sqe {
                op.0
            }
        }
    };
    (@set $sqe:ident, obj_id, $arg:ident) => { $sqe.obj_id = $arg.0; };
    (@set $sqe:ident, $field:ident, $arg:ident) => { $sqe.$field = $arg; };
}

builder!(
    /// Does nothing; completes with result 0.
    Nop, opcode::NOP, ()
);
impl Default for Nop {
    fn default() -> Self {
        Nop::new()
    }
}

builder!(
    /// Copies `len` bytes of object `obj` at `obj_off` into the arena at `arena_off`.
    Read, opcode::READ, (obj: crate::ObjectId => obj_id, obj_off: u64 => obj_off, arena_off: u64 => arena_off, len: u32 => len)
);
builder!(
    /// Copies `len` bytes of the arena at `arena_off` into object `obj` at `obj_off`.
    Write, opcode::WRITE, (obj: crate::ObjectId => obj_id, obj_off: u64 => obj_off, arena_off: u64 => arena_off, len: u32 => len)
);
builder!(
    /// Loads the aligned word at `obj_off`; the completion's value holds it.
    Load64, opcode::LOAD64, (obj: crate::ObjectId => obj_id, obj_off: u64 => obj_off)
);
builder!(
    /// Stores `val` into the aligned word at `obj_off`.
    Store64, opcode::STORE64, (obj: crate::ObjectId => obj_id, obj_off: u64 => obj_off, val: u64 => val)
);
builder!(
    /// Atomically adds `val` to the aligned word at `obj_off`; the value holds the old word.
    FetchAdd64, opcode::FETCH_ADD64, (obj: crate::ObjectId => obj_id, obj_off: u64 => obj_off, val: u64 => val)
);
builder!(
    /// Atomically replaces the aligned word at `obj_off` by `new` if it equals `expected`;
    /// the value holds the old word, the result is 1 if the swap happened.
    Cas64, opcode::CAS64, (obj: crate::ObjectId => obj_id, obj_off: u64 => obj_off, expected: u64 => cmp, new: u64 => val)
);
builder!(
    /// BPF maps: inserts or replaces an element. The key is at `arena_off` and the value
    /// right after it; `len` is the map's key size plus its value size; `flags` is
    /// [`crate::abi::MAP_ANY`], [`crate::abi::MAP_NOEXIST`] or [`crate::abi::MAP_EXIST`].
    MapUpdate, opcode::MAP_UPDATE, (obj: crate::ObjectId => obj_id, arena_off: u64 => arena_off, len: u32 => len, flags: u64 => val)
);
builder!(
    /// BPF maps: copies the value of the element whose key is at `arena_off` into the arena
    /// right after the key; `len` is the key size plus the value size. The result is the
    /// value size, or `-ENOENT` when there is no such element.
    MapLookup, opcode::MAP_LOOKUP, (obj: crate::ObjectId => obj_id, arena_off: u64 => arena_off, len: u32 => len)
);
builder!(
    /// BPF maps: deletes the element whose key is at `arena_off`; `len` is the key size.
    /// `-ENOENT` when there is no such element; array maps refuse it (`-EINVAL`), as BPF does.
    MapDelete, opcode::MAP_DELETE, (obj: crate::ObjectId => obj_id, arena_off: u64 => arena_off, len: u32 => len)
);
