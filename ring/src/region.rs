//! The memory the rings live in. This module owns the unsafe step of laying typed views
//! (atomics, slots) over mapped bytes; everything above it works with [`SqView`] and
//! [`CqView`].

#[cfg(not(loom))]
use core::ptr::NonNull;

use crossbeam_utils::CachePadded;
#[cfg(not(loom))]
use std::{fs::File, io};

#[cfg(not(loom))]
use crate::{
    abi::{self, Params, Stats},
    sync::{AtomicU64, Ordering},
};
use crate::{
    protocol::{CqSlot, CqView, SqSlot, SqView},
    sync::AtomicU32,
};

/// Number of `u64` words in the stats mirror.
#[cfg(not(loom))]
pub(crate) const STATS_WORDS: usize = core::mem::size_of::<Stats>() / 8;

/// Where a region's bytes come from; the mappings are held for their `Drop`.
#[cfg(not(loom))]
#[derive(Debug)]
#[allow(dead_code)]
enum Backing {
    /// An anonymous mapping (local backend).
    Anon(memmap2::MmapMut),
    /// Zeroed heap memory, page-aligned (local backend under miri, which cannot map).
    Heap(std::alloc::Layout),
    /// A mapping of the device file (kernel backend).
    Device(memmap2::MmapRaw),
}

/// Page-aligned, zeroed, shared bytes: the ring region or the data arena.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct Bytes {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

// SAFETY: the bytes are only accessed through atomics, `UnsafeCell`s and the arena's atomic
// copies, never through plain references, so sharing them between threads is sound.
#[cfg(not(loom))]
unsafe impl Send for Bytes {}
// SAFETY: as for `Send`.
#[cfg(not(loom))]
unsafe impl Sync for Bytes {}

#[cfg(not(loom))]
impl Bytes {
    /// `len` zeroed bytes in process memory (`len` may be 0).
    pub(crate) fn anonymous(len: usize) -> io::Result<Self> {
        let len_alloc = len.max(4096);
        #[cfg(not(miri))]
        {
            let mut map = memmap2::MmapOptions::new().len(len_alloc).map_anon()?;
            let ptr =
                NonNull::new(map.as_mut_ptr()).ok_or_else(|| io::Error::other("null mapping"))?;
            Ok(Bytes {
                ptr,
                len,
                backing: Backing::Anon(map),
            })
        }
        #[cfg(miri)]
        {
            let layout =
                std::alloc::Layout::from_size_align(len_alloc, 4096).map_err(io::Error::other)?;
            // SAFETY: the layout has a non-zero size.
            let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
                .ok_or_else(|| io::Error::other("out of memory"))?;
            Ok(Bytes {
                ptr,
                len,
                backing: Backing::Heap(layout),
            })
        }
    }

    /// A shared mapping of `len` bytes of `file` at `offset`.
    pub(crate) fn map_device(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Self::anonymous(0);
        }
        let map = memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map_raw(file)?;
        let ptr = NonNull::new(map.as_mut_ptr()).ok_or_else(|| io::Error::other("null mapping"))?;
        Ok(Bytes {
            ptr,
            len,
            backing: Backing::Device(map),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// A reference to a `T` at `offset`, checked to lie inside and be aligned.
    fn at<T>(&self, offset: usize) -> io::Result<&T> {
        self.slice_at(offset, 1).map(|s| &s[0])
    }

    /// A slice of `n` `T`s at `offset`, checked to lie inside and be aligned.
    fn slice_at<T>(&self, offset: usize, n: usize) -> io::Result<&[T]> {
        let size = n.checked_mul(core::mem::size_of::<T>());
        let end = size.and_then(|s| s.checked_add(offset));
        if end.is_none_or(|e| e > self.len) || offset % core::mem::align_of::<T>() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ring offset {offset} (x{n}) outside the {}-byte region or misaligned",
                    self.len
                ),
            ));
        }
        // SAFETY: in bounds and aligned (checked above; the base is page-aligned); the bytes
        // live as long as `self`; `T` is only ever an atomic or `UnsafeCell` type, for which
        // any bit pattern, zero included, is valid and shared mutation is allowed.
        Ok(unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().add(offset).cast::<T>(), n) })
    }
}

#[cfg(not(loom))]
impl Drop for Bytes {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: allocated in `anonymous` with this layout, freed once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) }
        }
    }
}

/// The ring region with its views resolved from the offsets the kernel reported.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct RingRegion {
    bytes: Bytes,
    sq_head: NonNull<AtomicU32>,
    sq_tail: NonNull<AtomicU32>,
    sq_flags: NonNull<AtomicU32>,
    sqes: NonNull<SqSlot>,
    sq_entries: u32,
    cq_head: NonNull<AtomicU32>,
    cq_tail: NonNull<AtomicU32>,
    cqes: NonNull<CqSlot>,
    cq_entries: u32,
    stats: NonNull<[AtomicU64; STATS_WORDS]>,
}

// SAFETY: the pointers point into `bytes`, which is `Send + Sync`, and are only turned into
// shared references to atomics and cells.
#[cfg(not(loom))]
unsafe impl Send for RingRegion {}
// SAFETY: as for `Send`.
#[cfg(not(loom))]
unsafe impl Sync for RingRegion {}

#[cfg(not(loom))]
impl RingRegion {
    /// Lays the views over `bytes` at the offsets in `params` (from the kernel, or made by
    /// the local backend), refusing offsets outside the region or misaligned.
    pub(crate) fn new(bytes: Bytes, params: &Params) -> io::Result<Self> {
        let (sq_entries, cq_entries) = (params.sq_entries, params.cq_entries);
        if !sq_entries.is_power_of_two() || !cq_entries.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "ring entries not a power of two",
            ));
        }
        let (sq, cq) = (&params.sq_off, &params.cq_off);
        let off = |o: u32| o as usize;
        let ptr = |r: &AtomicU32| NonNull::from(r);
        let sq_head = ptr(bytes.at(off(sq.head))?);
        let sq_tail = ptr(bytes.at(off(sq.tail))?);
        let sq_flags = ptr(bytes.at(off(sq.flags))?);
        // From the whole slice, so the pointer may reach every slot.
        let sqes = NonNull::from(bytes.slice_at::<SqSlot>(off(sq.sqes), sq_entries as usize)?)
            .cast::<SqSlot>();
        let cq_head = ptr(bytes.at(off(cq.head))?);
        let cq_tail = ptr(bytes.at(off(cq.tail))?);
        let cqes = NonNull::from(bytes.slice_at::<CqSlot>(off(cq.cqes), cq_entries as usize)?)
            .cast::<CqSlot>();
        let stats = NonNull::from(bytes.at::<[AtomicU64; STATS_WORDS]>(off(cq.stats))?);
        Ok(RingRegion {
            bytes,
            sq_head,
            sq_tail,
            sq_flags,
            sqes,
            sq_entries,
            cq_head,
            cq_tail,
            cqes,
            cq_entries,
            stats,
        })
    }

    /// The submission ring.
    pub(crate) fn sq(&self) -> SqView<'_> {
        // SAFETY: every pointer was made from a checked reference into `self.bytes`, which
        // lives as long as `self`.
        unsafe {
            SqView {
                head: self.sq_head.as_ref(),
                tail: self.sq_tail.as_ref(),
                flags: self.sq_flags.as_ref(),
                slots: core::slice::from_raw_parts(self.sqes.as_ptr(), self.sq_entries as usize),
            }
        }
    }

    /// The completion ring.
    pub(crate) fn cq(&self) -> CqView<'_> {
        // SAFETY: as in `sq`.
        unsafe {
            CqView {
                head: self.cq_head.as_ref(),
                tail: self.cq_tail.as_ref(),
                slots: core::slice::from_raw_parts(self.cqes.as_ptr(), self.cq_entries as usize),
            }
        }
    }

    /// The stats mirror.
    pub(crate) fn stats_words(&self) -> &[AtomicU64; STATS_WORDS] {
        // SAFETY: as in `sq`.
        unsafe { self.stats.as_ref() }
    }

    /// Writes the ring geometry into the header, as the kernel does at setup.
    pub(crate) fn init_header(&self, params: &Params) -> io::Result<()> {
        let words = [
            (params.sq_off.ring_mask, params.sq_entries - 1),
            (params.sq_off.ring_entries, params.sq_entries),
            (params.cq_off.ring_mask, params.cq_entries - 1),
            (params.cq_off.ring_entries, params.cq_entries),
        ];
        for (offset, value) in words {
            // Relaxed: written before the region is shared with any other thread.
            self.bytes
                .at::<AtomicU32>(offset as usize)?
                .store(value, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The counters from a stats mirror.
#[cfg(not(loom))]
pub(crate) fn read_stats(words: &[AtomicU64; STATS_WORDS]) -> Stats {
    // Relaxed: counters are advisory snapshots, each word independently.
    let w = |i: usize| words[i].load(Ordering::Relaxed);
    Stats {
        submitted: w(0),
        completed: w(1),
        rejected: w(2),
        rejected_opcode: w(3),
        rejected_reserved: w(4),
        rejected_object: w(5),
        rejected_bounds: w(6),
        rejected_align: w(7),
        wakeups: w(8),
        cq_full: w(9),
        sync_ops: w(10),
        resv: [0; 5],
    }
}

/// The parameters a local ring reports, as the kernel would.
#[cfg(not(loom))]
pub(crate) fn local_params(sq_entries: u32, cq_entries: u32, arena_size: u64) -> Params {
    Params {
        sq_entries,
        cq_entries,
        flags: abi::SETUP_SQPOLL,
        arena_size,
        ring_size: abi::ring_size(sq_entries, cq_entries),
        sq_off: abi::sq_offsets(),
        cq_off: abi::cq_offsets(sq_entries),
        ..Params::default()
    }
}

/// Rings in ordinary heap memory, for models and benchmarks of the protocol alone. Each
/// index word has a cache line of its own, as in the ring region.
#[derive(Debug)]
pub struct HeapRings {
    sq_head: CachePadded<AtomicU32>,
    sq_tail: CachePadded<AtomicU32>,
    sq_flags: CachePadded<AtomicU32>,
    sqes: Box<[SqSlot]>,
    cq_head: CachePadded<AtomicU32>,
    cq_tail: CachePadded<AtomicU32>,
    cqes: Box<[CqSlot]>,
}

// SAFETY: shared access gives out only `SqView`/`CqView`. Their safe operations touch
// nothing but atomics; every access to a slot's cell is an `unsafe fn` (`write`, `peek`,
// `read`) whose caller promises that no other thread accesses that slot's body meanwhile,
// so safe code alone cannot race on a cell.
unsafe impl Sync for HeapRings {}

impl HeapRings {
    /// Rings of the given sizes (powers of two).
    pub fn new(sq_entries: u32, cq_entries: u32) -> Self {
        assert!(sq_entries.is_power_of_two() && cq_entries.is_power_of_two());
        HeapRings {
            sq_head: CachePadded::new(AtomicU32::new(0)),
            sq_tail: CachePadded::new(AtomicU32::new(0)),
            sq_flags: CachePadded::new(AtomicU32::new(0)),
            sqes: (0..sq_entries).map(|_| SqSlot::new()).collect(),
            cq_head: CachePadded::new(AtomicU32::new(0)),
            cq_tail: CachePadded::new(AtomicU32::new(0)),
            cqes: (0..cq_entries).map(|_| CqSlot::new()).collect(),
        }
    }

    /// The submission ring.
    pub fn sq(&self) -> SqView<'_> {
        SqView {
            head: &self.sq_head,
            tail: &self.sq_tail,
            flags: &self.sq_flags,
            slots: &self.sqes,
        }
    }

    /// The completion ring.
    pub fn cq(&self) -> CqView<'_> {
        CqView {
            head: &self.cq_head,
            tail: &self.cq_tail,
            slots: &self.cqes,
        }
    }
}
