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

/// Copies `len` bytes between two shared memories. Words move as relaxed 64-bit atomics
/// when source and destination share their alignment, bytes as relaxed 8-bit atomics
/// otherwise.
///
/// # Safety
///
/// `src` and `dst` are valid for `len` bytes and accessed by others only through atomics.
pub(crate) unsafe fn copy_shared(dst: *mut u8, src: *const u8, len: usize) {
    let mut i = 0;
    if (dst as usize ^ src as usize) & 7 == 0 {
        while i < len && (dst as usize + i) & 7 != 0 {
            // SAFETY: in bounds per the contract; `AtomicU8` has alignment 1.
            unsafe { copy_byte(dst.add(i), src.add(i)) };
            i += 1;
        }
        while i + 8 <= len {
            // SAFETY: in bounds, and both addresses are 8-aligned (same phase, aligned above).
            unsafe {
                let v = (*src.add(i).cast::<AtomicU64>()).load(Ordering::Relaxed);
                (*dst.add(i).cast::<AtomicU64>()).store(v, Ordering::Relaxed);
            }
            i += 8;
        }
    }
    while i < len {
        // SAFETY: in bounds per the contract.
        unsafe { copy_byte(dst.add(i), src.add(i)) };
        i += 1;
    }
}

/// # Safety
///
/// Both pointers are valid for one byte.
#[inline(always)]
unsafe fn copy_byte(dst: *mut u8, src: *const u8) {
    // SAFETY: per the contract; `AtomicU8` has the size and alignment of `u8`.
    unsafe {
        let v = (*src.cast::<AtomicU8>()).load(Ordering::Relaxed);
        (*dst.cast::<AtomicU8>()).store(v, Ordering::Relaxed);
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
        unsafe { copy_shared(out.as_mut_ptr(), src, out.len()) };
        Ok(())
    }

    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Result<(), OutOfBounds> {
        let dst = self.range(offset, data.len())?;
        // SAFETY: `range` checked the bounds; `data` is only read.
        unsafe { copy_shared(dst, data.as_ptr(), data.len()) };
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
