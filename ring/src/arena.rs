//! Memory that both sides touch while the ring runs: the data arena, and the local
//! backend's objects. The kernel (or the poller thread) writes it concurrently with user
//! code, so every access is an atomic copy: racing accesses may see torn data, as with any
//! shared memory, but never undefined behaviour.

use core::fmt;

use crate::{
    region::Bytes,
    sync::{AtomicU64, Ordering},
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

/// Copies `len` bytes. A side that is shared (`SRC_SHARED`, `DST_SHARED`) is accessed only
/// through relaxed `AtomicU64` operations on the aligned 8-byte words that hold its bytes,
/// so every access to shared memory has one width, whoever makes it: a word the range
/// covers whole is loaded or stored; a word it covers in part is loaded whole, and stored
/// by a compare-and-swap that changes only the range's bytes, so neighbours written
/// concurrently are kept. A private side is accessed with plain loads and stores, since an
/// atomic on memory only reachable through `&[u8]` would claim a right to mutate it.
///
/// # Safety
///
/// `src` and `dst` are valid for `len` bytes and do not overlap; for a shared side, the
/// whole aligned words holding those bytes are valid too (the arena and the objects are
/// word-aligned and a whole number of words), and are accessed by others only through
/// atomics; a private side is accessed by no one else.
#[inline]
pub(crate) unsafe fn copy<const SRC_SHARED: bool, const DST_SHARED: bool>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
) {
    let mut i = 0;
    if (dst.addr() ^ src.addr()) & 7 == 0 {
        // Same phase: the ends in part, the middle word for word.
        let head = ((8 - (dst.addr() & 7)) & 7).min(len);
        // SAFETY: the first `head` bytes, inside one word on each side.
        unsafe { copy_within_word::<SRC_SHARED, DST_SHARED>(dst, src, head) };
        i = head;
        while i + 8 <= len {
            // SAFETY: in bounds, and both addresses are 8-aligned (same phase, aligned
            // above).
            unsafe {
                let v = if SRC_SHARED {
                    atomic_word(src.add(i)).load(Ordering::Relaxed)
                } else {
                    src.add(i).cast::<u64>().read()
                };
                if DST_SHARED {
                    atomic_word(dst.add(i)).store(v, Ordering::Relaxed);
                } else {
                    dst.add(i).cast::<u64>().write(v);
                }
            }
            i += 8;
        }
    }
    // Different phases (or the tail): chunks that end at the destination's word ends, each
    // read from at most two source words.
    while i < len {
        let n = (8 - ((dst.addr() + i) & 7)).min(len - i);
        // SAFETY: `[i, i + n)` is in bounds and inside one destination word.
        unsafe { copy_within_word::<SRC_SHARED, DST_SHARED>(dst.add(i), src.add(i), n) };
        i += n;
    }
}

/// The aligned word at `p`, as an atomic.
///
/// # Safety
///
/// `p` is 8-aligned and valid for 8 bytes of shared memory accessed only through atomics.
#[inline(always)]
unsafe fn atomic_word<'a>(p: *const u8) -> &'a AtomicU64 {
    // SAFETY: per the contract; `AtomicU64` has the size and alignment of `u64`.
    unsafe { &*p.cast::<AtomicU64>() }
}

/// Copies `n` bytes (at most 8) that lie inside one destination word.
///
/// # Safety
///
/// As for [`copy`], for these `n` bytes; `dst..dst + n` does not cross an 8-byte boundary.
#[inline(always)]
unsafe fn copy_within_word<const SRC_SHARED: bool, const DST_SHARED: bool>(
    dst: *mut u8,
    src: *const u8,
    n: usize,
) {
    if n == 0 {
        return;
    }
    let mut bytes = [0u8; 8];
    if SRC_SHARED {
        // The (one or two) source words holding the bytes, each loaded whole.
        let off = src.addr() & 7;
        // SAFETY: the words holding `src..src + n` are valid shared words (the contract);
        // `src - off` is the first one's start, inside the same allocation.
        let words = unsafe {
            let base = src.sub(off);
            let w0 = atomic_word(base).load(Ordering::Relaxed);
            let w1 = if off + n > 8 {
                atomic_word(base.add(8)).load(Ordering::Relaxed)
            } else {
                0
            };
            [w0, w1]
        };
        let mut both = [0u8; 16];
        both[..8].copy_from_slice(&words[0].to_ne_bytes());
        both[8..].copy_from_slice(&words[1].to_ne_bytes());
        bytes[..n].copy_from_slice(&both[off..off + n]);
    } else {
        // SAFETY: `src` is valid for `n` bytes (the contract) and `bytes` has room.
        unsafe { core::ptr::copy_nonoverlapping(src, bytes.as_mut_ptr(), n) };
    }
    if DST_SHARED {
        let off = dst.addr() & 7;
        // SAFETY: the word holding `dst..dst + n` is a valid shared word (the contract).
        let word = unsafe { atomic_word(dst.sub(off)) };
        if n == 8 {
            word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
            return;
        }
        // Only our bytes change; bytes of the word outside the range keep whatever another
        // writer puts there meanwhile.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let mut merged = current.to_ne_bytes();
            merged[off..off + n].copy_from_slice(&bytes[..n]);
            match word.compare_exchange_weak(
                current,
                u64::from_ne_bytes(merged),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    } else {
        // SAFETY: `dst` is valid for `n` bytes (the contract) and private.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared memory as the backends have it: whole aligned words.
    fn shared(words: usize, seed: u8) -> Box<[AtomicU64]> {
        (0..words)
            .map(|w| {
                let mut b = [0u8; 8];
                for (k, x) in b.iter_mut().enumerate() {
                    *x = seed.wrapping_add((w * 8 + k) as u8);
                }
                AtomicU64::new(u64::from_ne_bytes(b))
            })
            .collect()
    }

    fn bytes_of(words: &[AtomicU64]) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
            .collect()
    }

    /// Every phase of each side and every length up to three words: the copied bytes
    /// arrive, and no byte outside the destination range changes.
    #[test]
    fn copies_every_phase_and_length_and_nothing_else() {
        let lens: &[usize] = if cfg!(miri) {
            &[0, 1, 7, 8, 9, 17]
        } else {
            &[0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 24]
        };
        let phases: &[usize] = if cfg!(miri) {
            &[0, 3, 7]
        } else {
            &[0, 1, 2, 3, 4, 5, 6, 7]
        };
        for &len in lens {
            for &so in phases {
                for &d_off in phases {
                    // Shared to shared.
                    let src = shared(5, 1);
                    let dst = shared(5, 100);
                    let before = bytes_of(&dst);
                    let (sp, dp) = (
                        src.as_ptr().cast::<u8>(),
                        dst.as_ptr().cast::<u8>().cast_mut(),
                    );
                    // SAFETY: both ranges lie inside their 40-byte word arrays.
                    unsafe { copy::<true, true>(dp.add(d_off), sp.add(so), len) };
                    let mut want = before.clone();
                    want[d_off..d_off + len].copy_from_slice(&bytes_of(&src)[so..so + len]);
                    assert_eq!(
                        bytes_of(&dst),
                        want,
                        "shared->shared len {len} src+{so} dst+{d_off}"
                    );

                    // Shared to private.
                    let mut out = vec![0xeeu8; 40];
                    // SAFETY: as above; `out` is ours.
                    unsafe { copy::<true, false>(out.as_mut_ptr().add(d_off), sp.add(so), len) };
                    let mut want = vec![0xeeu8; 40];
                    want[d_off..d_off + len].copy_from_slice(&bytes_of(&src)[so..so + len]);
                    assert_eq!(out, want, "shared->private len {len}");

                    // Private to shared.
                    let data: Vec<u8> = (0..40).map(|k| 200u8.wrapping_add(k)).collect();
                    let dst = shared(5, 50);
                    let before = bytes_of(&dst);
                    let dp = dst.as_ptr().cast::<u8>().cast_mut();
                    // SAFETY: as above; `data` is only read.
                    unsafe { copy::<false, true>(dp.add(d_off), data.as_ptr().add(so), len) };
                    let mut want = before;
                    want[d_off..d_off + len].copy_from_slice(&data[so..so + len]);
                    assert_eq!(bytes_of(&dst), want, "private->shared len {len}");
                }
            }
        }
    }
}
