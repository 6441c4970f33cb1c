//! Arena buffers that manage themselves: a lock-free allocator of fixed-size blocks in the
//! data arena, handing out owned [`ArenaBuf`]s.
//!
//! A READ or WRITE through the dispatcher ([`Dispatcher::read_into`](crate::Dispatcher::read_into),
//! [`Dispatcher::write_from`](crate::Dispatcher::write_from), their futures) takes the buffer
//! by value and gives it back with the result, as tokio-uring does. A buffer returns to its
//! pool when dropped; a request given up while in flight (a dropped future) keeps its buffer
//! until the request completes, so no byte of the arena is reused while the kernel may
//! still touch it.
//!
//! Each size class is a Treiber stack of block indices whose top carries a tag bumped by
//! every change, so a block popped and pushed back between a thread's load and its CAS does
//! not fool the CAS (ABA).

use std::{fmt, ops::Range, sync::Arc};

use crossbeam_utils::CachePadded;

use crate::{
    sync::{AtomicU32, AtomicU64, Ordering},
    Arena, OutOfBounds,
};

/// Block sizes of [`BufferPool::new`].
const DEFAULT_CLASSES: [u32; 6] = [64, 256, 1024, 4096, 16384, 65536];

/// One size class: `count` blocks of `size` bytes from `base`.
struct Class {
    size: u32,
    base: u64,
    /// Tag (high half) and free block index plus one (low half; 0: none).
    top: CachePadded<AtomicU64>,
    /// Per block: the next free block plus one, while the block is free.
    next: Box<[AtomicU32]>,
    /// Free blocks now (statistics).
    free: AtomicU32,
}

impl Class {
    fn new(size: u32, base: u64, count: u32) -> Class {
        Class {
            size,
            base,
            top: CachePadded::new(AtomicU64::new(u64::from(count.min(1)))),
            next: (0..count)
                .map(|i| AtomicU32::new(if i + 1 < count { i + 2 } else { 0 }))
                .collect(),
            free: AtomicU32::new(count),
        }
    }

    fn pop(&self) -> Option<u32> {
        // Acquire pairs with the release CAS in `push`: the block's `next` link.
        let mut top = self.top.load(Ordering::Acquire);
        loop {
            let index1 = top as u32;
            if index1 == 0 {
                return None;
            }
            // Relaxed: if another thread took the block since, the tag moved and the CAS
            // fails.
            let next = self.next[(index1 - 1) as usize].load(Ordering::Relaxed);
            let new = (((top >> 32) + 1) << 32) | u64::from(next);
            match self
                .top
                .compare_exchange_weak(top, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    // Relaxed: statistics.
                    self.free.fetch_sub(1, Ordering::Relaxed);
                    return Some(index1 - 1);
                }
                Err(seen) => top = seen,
            }
        }
    }

    fn push(&self, index: u32) {
        // Relaxed: the CAS below publishes.
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            self.next[index as usize].store(top as u32, Ordering::Relaxed);
            let new = (((top >> 32) + 1) << 32) | u64::from(index + 1);
            // Release pairs with the acquire in `pop`.
            match self
                .top
                .compare_exchange_weak(top, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.free.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(seen) => top = seen,
            }
        }
    }
}

struct PoolInner {
    arena: Arena,
    /// By increasing block size.
    classes: Vec<Class>,
}

/// Owned buffers carved out of a ring's data arena. Cheap to clone; `Send` and `Sync`;
/// lock-free.
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BufferPool");
        for c in &self.inner.classes {
            d.field(&format!("free_{}", c.size), &c.free.load(Ordering::Relaxed));
        }
        d.finish()
    }
}

impl BufferPool {
    /// A pool over the whole arena, in equal shares of blocks of 64 B, 256 B, 1 KiB,
    /// 4 KiB, 16 KiB and 64 KiB (the classes no larger than a quarter of the arena).
    pub fn new(arena: Arena) -> BufferPool {
        let len = arena.len();
        let sizes: Vec<u32> = DEFAULT_CLASSES
            .iter()
            .copied()
            .filter(|&s| u64::from(s) <= (len / 4).max(64))
            .collect();
        let share = len / sizes.len() as u64;
        let layout: Vec<(u32, u32)> = sizes
            .iter()
            .map(|&s| {
                (
                    s,
                    (share / u64::from(s)).min(u64::from(u32::MAX - 1)) as u32,
                )
            })
            .collect();
        Self::with_classes(arena, 0..len, &layout).expect("the default layout fits the arena")
    }

    /// A pool over `range` of the arena with `(block size, count)` classes laid out in
    /// order. Block sizes must be non-zero multiples of 8 and `range` must start 8-aligned.
    /// Raw entries that use the same bytes would race with the pool's users (torn data,
    /// never undefined behaviour).
    pub fn with_classes(
        arena: Arena,
        range: Range<u64>,
        classes: &[(u32, u32)],
    ) -> Result<BufferPool, crate::Error> {
        if range.start % 8 != 0 || range.end > arena.len() || range.start > range.end {
            return Err(crate::Error::InvalidArgument(
                "the pool's range must be 8-aligned and inside the arena",
            ));
        }
        if classes.len() > usize::from(u8::MAX) + 1 {
            return Err(crate::Error::InvalidArgument("at most 256 block classes"));
        }
        let mut sorted: Vec<(u32, u32)> = classes.to_vec();
        sorted.sort_unstable();
        let mut base = range.start;
        let mut out = Vec::with_capacity(sorted.len());
        for (size, count) in sorted {
            if size == 0 || size % 8 != 0 {
                return Err(crate::Error::InvalidArgument(
                    "block sizes must be non-zero multiples of 8",
                ));
            }
            let bytes = u64::from(size) * u64::from(count);
            if base.checked_add(bytes).is_none_or(|end| end > range.end) {
                return Err(crate::Error::InvalidArgument(
                    "the classes do not fit the pool's range",
                ));
            }
            out.push(Class::new(size, base, count));
            base += bytes;
        }
        Ok(BufferPool {
            inner: Arc::new(PoolInner {
                arena,
                classes: out,
            }),
        })
    }

    /// A buffer of `len` bytes (from the smallest class that has a free block large
    /// enough), or `None` if every block large enough is in use. Its bytes are whatever
    /// the last user left.
    pub fn alloc(&self, len: usize) -> Option<ArenaBuf> {
        for (i, class) in self.inner.classes.iter().enumerate() {
            if class.size as usize >= len {
                if let Some(index) = class.pop() {
                    return Some(ArenaBuf {
                        pool: self.clone(),
                        class: i as u8,
                        index,
                        len: len as u32,
                    });
                }
            }
        }
        None
    }

    /// Free blocks in every class now.
    pub fn available(&self) -> usize {
        self.inner
            .classes
            .iter()
            // Relaxed: statistics.
            .map(|c| c.free.load(Ordering::Relaxed) as usize)
            .sum()
    }

    /// Blocks in every class.
    pub fn capacity(&self) -> usize {
        self.inner.classes.iter().map(|c| c.next.len()).sum()
    }

    /// The largest block size the pool has a block of (0 for an empty pool): the most
    /// [`BufferPool::alloc`] can ever give.
    pub fn max_len(&self) -> usize {
        self.inner
            .classes
            .iter()
            .rev()
            .find(|c| !c.next.is_empty())
            .map_or(0, |c| c.size as usize)
    }
}

/// A block of the arena owned by its holder: by the caller, or by a request in flight.
/// Returns to its pool when dropped.
pub struct ArenaBuf {
    pool: BufferPool,
    class: u8,
    index: u32,
    len: u32,
}

impl fmt::Debug for ArenaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaBuf")
            .field("offset", &self.offset())
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl ArenaBuf {
    fn class(&self) -> &Class {
        &self.pool.inner.classes[self.class as usize]
    }

    /// Offset of the block in the arena.
    pub fn offset(&self) -> u64 {
        let c = self.class();
        c.base + u64::from(c.size) * u64::from(self.index)
    }

    /// Whether the block lies in the arena of the ring `inner` (a buffer of another ring's
    /// pool names an offset in that ring's arena, which here is someone else's bytes).
    pub(crate) fn is_of(&self, inner: &crate::Inner) -> bool {
        core::ptr::eq(self.pool.inner.arena.handle.inner(), inner)
    }

    /// Bytes in use: what a READ fills and a WRITE sends.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no byte is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block's size.
    pub fn capacity(&self) -> usize {
        self.class().size as usize
    }

    /// Sets the bytes in use, at most the capacity.
    pub fn set_len(&mut self, len: usize) -> Result<(), OutOfBounds> {
        if len > self.capacity() {
            return Err(OutOfBounds {
                offset: self.offset(),
                len,
                size: self.capacity() as u64,
            });
        }
        self.len = len as u32;
        Ok(())
    }

    /// Copies `data` into the buffer and makes its length `data.len()`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutOfBounds> {
        self.set_len(data.len())?;
        self.pool.inner.arena.write(self.offset(), data)
    }

    /// Copies the first `out.len()` bytes in use into `out` (at most `len()`).
    pub fn read(&self, out: &mut [u8]) -> Result<(), OutOfBounds> {
        if out.len() > self.len() {
            return Err(OutOfBounds {
                offset: self.offset(),
                len: out.len(),
                size: self.len as u64,
            });
        }
        self.pool.inner.arena.read(self.offset(), out)
    }

    /// The bytes in use, copied out.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.pool
            .inner
            .arena
            .read(self.offset(), &mut v)
            .expect("a block lies inside the arena");
        v
    }
}

impl Drop for ArenaBuf {
    fn drop(&mut self) {
        let (class, index) = (self.class as usize, self.index);
        self.pool.inner.classes[class].push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendChoice, Ring};

    fn ring() -> Ring {
        Ring::builder()
            .backend(BackendChoice::Local)
            .sq_entries(8)
            .arena_size(64 * 1024)
            .build()
            .unwrap()
    }

    /// Blocks never overlap and every one comes back.
    #[test]
    fn blocks_are_disjoint_and_return() {
        let ring = ring();
        let pool = BufferPool::with_classes(ring.arena(), 0..4096, &[(64, 16), (256, 4)]).unwrap();
        assert_eq!(pool.capacity(), 20);
        let mut held: Vec<ArenaBuf> = (0..16).map(|_| pool.alloc(10).unwrap()).collect();
        assert!(held.iter().all(|b| b.capacity() == 64));
        // The small class is empty: a small request falls back to a larger block.
        let big = pool.alloc(8).unwrap();
        assert_eq!(big.capacity(), 256);
        held.push(big);
        let mut ranges: Vec<(u64, u64)> = held
            .iter()
            .map(|b| (b.offset(), b.offset() + b.capacity() as u64))
            .collect();
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "{w:?} overlap");
        }
        assert_eq!(pool.available(), 3);
        assert!(pool.alloc(300).is_none());
        drop(held);
        assert_eq!(pool.available(), 20);
    }

    /// `max_len` is a size `alloc` can give: classes without blocks do not count.
    #[test]
    fn max_len_is_a_size_alloc_can_give() {
        let ring = ring();
        let pool = BufferPool::with_classes(ring.arena(), 0..4096, &[(64, 4), (1024, 0)]).unwrap();
        assert_eq!(pool.max_len(), 64);
        assert!(pool.alloc(pool.max_len()).is_some());
        let empty = BufferPool::with_classes(ring.arena(), 0..0, &[(64, 0)]).unwrap();
        assert_eq!((empty.max_len(), empty.capacity()), (0, 0));
        // The default pool of the ring: its largest size is allocatable.
        let pool = ring.buffers();
        assert!(pool.alloc(pool.max_len()).is_some());
    }

    /// Threads allocating and freeing at once never share a block.
    #[test]
    fn concurrent_allocation_never_shares_a_block() {
        let ring = ring();
        let pool = BufferPool::with_classes(ring.arena(), 0..4096, &[(64, 8)]).unwrap();
        let owners: Arc<Vec<AtomicU32>> = Arc::new((0..8).map(|_| AtomicU32::new(0)).collect());
        std::thread::scope(|s| {
            for t in 1..=4u32 {
                let (pool, owners) = (pool.clone(), Arc::clone(&owners));
                s.spawn(move || {
                    for _ in 0..if cfg!(miri) { 200 } else { 20_000 } {
                        if let Some(b) = pool.alloc(64) {
                            let i = (b.offset() / 64) as usize;
                            assert_eq!(owners[i].swap(t, Ordering::Relaxed), 0);
                            owners[i].store(0, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(pool.available(), 8);
    }
}
