//! Memory that both sides touch while the ring runs: the data arena, and the local
//! backend's objects. The kernel (or the poller thread) writes it concurrently with user
//! code, so every access is an atomic copy: racing accesses may see torn data, as with any
//! shared memory, but never undefined behaviour.

use core::fmt;

use crate::{
    region::Bytes,
    sync::{AtomicU64, AtomicU8, Ordering},
};

/// An access outside the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("arena access at {offset}+{len} outside its {size} bytes")]
pub struct OutOfBounds {
    /// Requested offset.
    pub offset: u64,
    /// Requested length.
    pub len: usize,
    /// Size of the memory.
    pub size: u64,
}

/// Copies `len` bytes. A side that is shared (`SRC_SHARED`, `DST_SHARED`) is accessed
/// through relaxed atomics, 64-bit words where source and destination share their alignment
/// and bytes otherwise; a private side with plain loads or stores, since an atomic on memory
/// only reachable through `&[u8]` would claim a right to mutate it.
///
/// # Safety
///
/// `src` and `dst` are valid for `len` bytes and do not overlap; a shared side is accessed
/// by others only through atomics, a private side by no one else.
#[inline]
pub(crate) unsafe fn copy<const SRC_SHARED: bool, const DST_SHARED: bool>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
) {
    let mut i = 0;
    if (dst as usize ^ src as usize) & 7 == 0 {
        while i < len && (dst as usize + i) & 7 != 0 {
            // SAFETY: in bounds per the contract.
            unsafe { copy_unit::<u8, AtomicU8, SRC_SHARED, DST_SHARED>(dst.add(i), src.add(i)) };
            i += 1;
        }
        while i + 8 <= len {
            // SAFETY: in bounds, and both addresses are 8-aligned (same phase, aligned above).
            unsafe { copy_unit::<u64, AtomicU64, SRC_SHARED, DST_SHARED>(dst.add(i), src.add(i)) };
            i += 8;
        }
    }
    while i < len {
        // SAFETY: in bounds per the contract.
        unsafe { copy_unit::<u8, AtomicU8, SRC_SHARED, DST_SHARED>(dst.add(i), src.add(i)) };
        i += 1;
    }
}

/// A plain integer and its atomic twin, for [`copy`].
trait Unit: Copy {
    type Atomic;
    fn load(a: &Self::Atomic) -> Self;
    fn store(a: &Self::Atomic, v: Self);
}

impl Unit for u8 {
    type Atomic = AtomicU8;
    #[inline(always)]
    fn load(a: &AtomicU8) -> u8 {
        a.load(Ordering::Relaxed)
    }
    #[inline(always)]
    fn store(a: &AtomicU8, v: u8) {
        a.store(v, Ordering::Relaxed)
    }
}

impl Unit for u64 {
    type Atomic = AtomicU64;
    #[inline(always)]
    fn load(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
    #[inline(always)]
    fn store(a: &AtomicU64, v: u64) {
        a.store(v, Ordering::Relaxed)
    }
}

/// # Safety
///
/// Both pointers are valid and aligned for a `T`, under [`copy`]'s contract.
#[inline(always)]
unsafe fn copy_unit<T: Unit<Atomic = A>, A, const SRC_SHARED: bool, const DST_SHARED: bool>(
    dst: *mut u8,
    src: *const u8,
) {
    // SAFETY: per the contract; an atomic has the size and alignment of its integer, and the
    // atomic view is only taken of the shared side.
    unsafe {
        let v = if SRC_SHARED {
            T::load(&*src.cast::<A>())
        } else {
            src.cast::<T>().read()
        };
        if DST_SHARED {
            T::store(&*dst.cast::<A>(), v);
        } else {
            dst.cast::<T>().write(v);
        }
    }
}

/// A byte range shared with the other side of the ring.
pub(crate) struct SharedMemory {
    bytes: Bytes,
}

impl SharedMemory {
    pub(crate) fn new(bytes: Bytes) -> Self {
        SharedMemory { bytes }
    }

    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The address of `offset..offset + len`, if it lies inside.
    pub(crate) fn range(&self, offset: u64, len: usize) -> Result<*mut u8, OutOfBounds> {
        let inside = offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= self.len());
        if !inside {
            return Err(OutOfBounds {
                offset,
                len,
                size: self.len(),
            });
        }
        // SAFETY: `offset + len <= len()` (checked), so the pointer stays in the allocation.
        Ok(unsafe { self.bytes.as_ptr().add(offset as usize) })
    }

    pub(crate) fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), OutOfBounds> {
        let src = self.range(offset, out.len())?;
        // SAFETY: `range` checked the bounds; `out` is ours alone.
        unsafe { copy::<true, false>(out.as_mut_ptr(), src, out.len()) };
        Ok(())
    }

    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Result<(), OutOfBounds> {
        let dst = self.range(offset, data.len())?;
        // SAFETY: `range` checked the bounds; `data` is only read.
        unsafe { copy::<false, true>(dst, data.as_ptr(), data.len()) };
        Ok(())
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("len", &self.len())
            .finish()
    }
}

/// The data arena of a ring: where READ puts object bytes and WRITE takes them from.
///
/// A cheap handle; clones address the same arena. The kernel writes the arena while
/// requests run, so reads and writes here are atomic copies; touching bytes that a request
/// in flight also touches gives torn data, not undefined behaviour.
#[derive(Clone)]
pub struct Arena {
    pub(crate) handle: crate::Handle,
}

impl Arena {
    fn memory(&self) -> &SharedMemory {
        &self.handle.inner().arena
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.memory().len()
    }

    /// Whether the arena has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), OutOfBounds> {
        self.memory().read(offset, out)
    }

    /// Copies `data` into the arena at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), OutOfBounds> {
        self.memory().write(offset, data)
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena").field("len", &self.len()).finish()
    }
}
