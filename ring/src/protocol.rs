//! The lock-free ring protocol: every atomic step of both sides, over views of the shared
//! memory. The library's producers, its completion consumer and the local backend's poller
//! call these functions; `loom-tests` model-checks the same functions with loom's atomics
//! (see [`crate::sync`]). The contract they implement is in the crate documentation,
//! section "Ordering contract"; each atomic here names the step it pairs with.

use core::{mem::MaybeUninit, ptr};

use crate::{
    abi::{Cqe, Sqe, SQ_CQ_FULL, SQ_NEED_WAKEUP},
    sync::{fence, spin_loop, AtomicU32, AtomicU64, Condvar, Mutex, Ordering, UnsafeCell},
};

/// The ordering a step of the contract needs at one atomic site, `$strong`. A loom build
/// with `--cfg loom_weaken="<site>"` uses `$weak` at that site instead, so that
/// `loom-tests/run.sh` can check that the model of the step then fails; every other build,
/// loom's included, gets `$strong`.
macro_rules! ordering {
    ($site:literal, $strong:ident => $weak:ident) => {{
        #[cfg(all(loom, loom_weaken = $site))]
        let order = Ordering::$weak;
        #[cfg(not(all(loom, loom_weaken = $site)))]
        let order = Ordering::$strong;
        order
    }};
}
pub(crate) use ordering;

/// Bytes of an entry before its publication word.
const SQE_BODY: usize = core::mem::offset_of!(Sqe, seq);
const _: () = assert!(
    SQE_BODY > 56 && SQE_BODY <= 64,
    "`peek` copies 48 + 8 + the rest"
);

/// One submission slot as it lies in the ring region: 60 bytes of entry, then `seq`.
/// Aligned to its size so a slot in heap memory never straddles two cache lines, as it
/// never does in the ring region.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct SqSlot {
    /// The entry without its publication word; written by the producer that reserved the
    /// slot, read by the consumer after it has seen `seq`.
    body: UnsafeCell<[u32; SQE_BODY / 4]>,
    /// `pos + 1` once the entry for ring position `pos` is complete.
    seq: AtomicU32,
}

#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<SqSlot>() == core::mem::size_of::<Sqe>());
    assert!(core::mem::offset_of!(SqSlot, seq) == core::mem::offset_of!(Sqe, seq));
    assert!(core::mem::size_of::<CqSlot>() == core::mem::size_of::<Cqe>());
};

impl SqSlot {
    /// An empty slot, for rings in ordinary memory.
    pub fn new() -> Self {
        SqSlot {
            body: UnsafeCell::new([0; SQE_BODY / 4]),
            seq: AtomicU32::new(0),
        }
    }
}

impl Default for SqSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// One completion slot as it lies in the ring region, aligned to its size as [`SqSlot`]
/// is.
#[repr(C, align(32))]
#[derive(Debug)]
pub struct CqSlot {
    /// Written by the kernel before it releases the CQ tail past it; read by the consumer
    /// after its acquire load of that tail.
    body: UnsafeCell<Cqe>,
}

impl CqSlot {
    /// An empty slot, for rings in ordinary memory.
    pub fn new() -> Self {
        CqSlot {
            body: UnsafeCell::new(Cqe::default()),
        }
    }
}

impl Default for CqSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// The submission ring: its three shared words and its slots. `slots.len()` is a power of
/// two.
#[derive(Clone, Copy, Debug)]
pub struct SqView<'a> {
    /// Next position the consumer will take; written by the consumer only.
    pub head: &'a AtomicU32,
    /// Next position a producer will reserve; written by producers only. The consumer never
    /// reads it (the kernel trusts nothing but `seq`).
    pub tail: &'a AtomicU32,
    /// [`SQ_NEED_WAKEUP`]; written by the consumer.
    pub flags: &'a AtomicU32,
    /// The entries.
    pub slots: &'a [SqSlot],
}

impl<'a> SqView<'a> {
    /// Number of slots.
    #[inline]
    pub fn entries(&self) -> u32 {
        self.slots.len() as u32
    }

    #[inline]
    fn slot(&self, pos: u32) -> &'a SqSlot {
        &self.slots[(pos & (self.entries() - 1)) as usize]
    }

    /// Producer: reserves up to `want` (at least one) consecutive positions for a producer
    /// that shares the ring with others. Returns the first position and the count, or `None`
    /// when the ring is full.
    #[inline]
    pub fn reserve(&self, want: u32) -> Option<(u32, u32)> {
        debug_assert!(want >= 1);
        let entries = self.entries();
        loop {
            // Acquire pairs with the consumer's release of `head` in `release`: once we see
            // the consumer past a position, its copy of that slot is finished, so the slot is
            // ours to overwrite.
            let head = self
                .head
                .load(ordering!("sq_head_acquire", Acquire => Relaxed));
            // Loaded after `head`, so it is at least `head` (the consumer only passes
            // positions whose reservation happened before their publication).
            let tail = self.tail.load(Ordering::Relaxed);
            let used = tail.wrapping_sub(head);
            if used > entries {
                // A `head` newer than this `tail` cannot be, but a torn view of a hostile
                // process's writes can; retry instead of trusting it.
                spin_loop();
                continue;
            }
            let n = want.min(entries - used);
            if n == 0 {
                return None;
            }
            // Relaxed: the CAS only divides positions among producers; the slot contents are
            // published by `seq`, and the gate's fence orders it against `close`.
            if self
                .tail
                .compare_exchange_weak(
                    tail,
                    tail.wrapping_add(n),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return Some((tail, n));
            }
            spin_loop();
        }
    }

    /// Producer: whether the ring looks full, as a hint to skip work that would be wasted
    /// on a full ring. `reserve` and `reserve_single` decide.
    #[inline]
    pub fn looks_full(&self) -> bool {
        // Relaxed: nothing is read or written on the strength of this answer; a stale one
        // only makes a producer retry, or reach `reserve`, which loads `head` with acquire.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        tail.wrapping_sub(head) >= self.entries()
    }

    /// Producer with no other producer: how many positions are free at its private `tail`,
    /// refreshing its cached `head` only when none look free by it.
    #[inline]
    pub fn room_single(&self, tail: u32, cached_head: &mut u32) -> u32 {
        match self.free_after(tail, *cached_head) {
            0 => self.refresh_single(tail, cached_head),
            free => free,
        }
    }

    /// Producer with no other producer: reserves up to `want` positions at its private
    /// `tail`, refreshing its cached `head` only when fewer than `want` look free by it.
    #[inline]
    pub fn reserve_single(&self, tail: u32, cached_head: &mut u32, want: u32) -> u32 {
        let mut free = self.free_after(tail, *cached_head);
        if free < want {
            free = self.refresh_single(tail, cached_head);
        }
        let n = want.min(free);
        // Relaxed: only the gate's `close` reads it, after the fence in `after_publish`.
        self.tail.store(tail.wrapping_add(n), Ordering::Relaxed);
        n
    }

    /// Free positions after `tail` by `head`; none if `head` is not in `[tail - entries,
    /// tail]` (a hostile or confused consumer only stalls its producers).
    #[inline]
    fn free_after(&self, tail: u32, head: u32) -> u32 {
        self.entries().saturating_sub(tail.wrapping_sub(head))
    }

    #[inline]
    fn refresh_single(&self, tail: u32, cached_head: &mut u32) -> u32 {
        // Acquire pairs with the consumer's release of `head` in `release`, as in `reserve`:
        // a slot counted free here is one the consumer has finished copying.
        *cached_head = self
            .head
            .load(ordering!("sq_head_acquire", Acquire => Relaxed));
        self.free_after(tail, *cached_head)
    }

    /// Producer: writes the entry for reserved position `pos` (not its `seq`).
    ///
    /// # Safety
    ///
    /// No other thread accesses the body of `pos`'s slot until this entry is published:
    /// the caller holds the reservation of `pos` (from [`SqView::reserve`], or from
    /// [`SqView::reserve_single`] with no other producer on the ring) and has not published
    /// it, and the consumer has released the slot. Two threads that both believed so would
    /// race on the body, so safe code cannot call `write`:
    ///
    /// ```compile_fail,E0133
    /// let rings = sbpf_ring::region::HeapRings::new(2, 1);
    /// rings.sq().write(0, &sbpf_ring::Sqe::default());
    /// ```
    #[inline]
    pub unsafe fn write(&self, pos: u32, sqe: &Sqe) {
        self.slot(pos).body.with_mut(|body| {
            // SAFETY: `pos` is reserved by this producer and not yet published (the caller's
            // contract), so no one else accesses the body; both sides are at least SQE_BODY
            // bytes.
            unsafe {
                ptr::copy_nonoverlapping(
                    (sqe as *const Sqe).cast::<u8>(),
                    body.cast::<u8>(),
                    SQE_BODY,
                )
            }
        });
    }

    /// Producer: publishes the entry at `pos`, written before.
    #[inline]
    pub fn publish(&self, pos: u32) {
        // Release pairs with the consumer's acquire load of `seq` in `peek`: the entry's
        // bytes are visible before the consumer can see it published.
        self.slot(pos).seq.store(
            pos.wrapping_add(1),
            ordering!("publish", Release => Relaxed),
        );
    }

    /// Producer: publishes `n` entries from `pos`, all written before, with one fence.
    #[inline]
    pub fn publish_batch(&self, pos: u32, n: u32) {
        // This release fence with the relaxed stores below pairs with the consumer's acquire
        // load of each `seq` in `peek`, as `publish`'s release store does.
        fence(ordering!("publish_batch", Release => Acquire));
        for i in 0..n {
            let p = pos.wrapping_add(i);
            self.slot(p).seq.store(p.wrapping_add(1), Ordering::Relaxed);
        }
    }

    /// Producer, after publishing: the full barrier of the wake-up handshake, then whether
    /// the consumer sleeps and must be kicked.
    #[inline]
    pub fn after_publish(&self) -> bool {
        // SeqCst fence pairs with the one in `prepare_sleep` (Dekker): either the consumer's
        // re-check sees our `seq`, or we see its NEED_WAKEUP.
        fence(ordering!("after_publish", SeqCst => AcqRel));
        self.flags.load(Ordering::Relaxed) & SQ_NEED_WAKEUP != 0
    }

    /// Whether the consumer sleeps (NEED_WAKEUP), without the handshake's fence: a hint for
    /// paths whose miss only delays a kick until the next full handshake.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        // Relaxed: a hint; `after_publish` and the waiters' blocking paths decide.
        self.flags.load(Ordering::Relaxed) & SQ_NEED_WAKEUP != 0
    }

    /// Whether positions were reserved that the consumer has not taken yet: a hint, for a
    /// completion consumer deciding whether a sleeping kernel has anything to do.
    #[inline]
    pub fn pending(&self) -> bool {
        // Relaxed: a hint; a stale answer costs one kick too many or one that the producer's
        // own handshake (`after_publish`) makes anyway.
        self.tail.load(Ordering::Relaxed) != self.head.load(Ordering::Relaxed)
    }

    /// Producer taking over the tail alone (a single-producer handle): the next position
    /// to reserve, and the consumer's head to start its cache from.
    pub fn positions(&self) -> (u32, u32) {
        // Relaxed: no other producer writes the tail from now on. Acquire pairs with the
        // consumer's release of `head` in `release`.
        (self.tail.load(Ordering::Relaxed), self.consumed())
    }

    /// The position the consumer has released up to.
    #[inline]
    pub fn consumed(&self) -> u32 {
        // Acquire pairs with the consumer's release of `head` in `release`.
        self.head.load(Ordering::Acquire)
    }

    /// Consumer: whether position `head` is published.
    #[inline]
    pub fn is_published(&self, head: u32) -> bool {
        // Acquire pairs with the producer's release in `publish`/`publish_batch`.
        self.slot(head)
            .seq
            .load(ordering!("peek", Acquire => Relaxed))
            == head.wrapping_add(1)
    }

    /// Consumer: a copy of the entry at `head` if it is published. The shared slot is read
    /// once; only the copy is used afterwards.
    ///
    /// # Safety
    ///
    /// The caller is the ring's only consumer (no other thread calls `peek` or
    /// [`SqView::release`] on this ring) and `head` its private head, not yet released: so
    /// no producer can have reserved that slot again while it is copied.
    ///
    /// ```compile_fail,E0133
    /// let rings = sbpf_ring::region::HeapRings::new(2, 1);
    /// let _ = rings.sq().peek(0);
    /// ```
    #[inline]
    pub unsafe fn peek(&self, head: u32) -> Option<Sqe> {
        if !self.is_published(head) {
            return None;
        }
        let mut out = MaybeUninit::<Sqe>::zeroed();
        self.slot(head).body.with(|body| {
            // Copied in pieces that do not overlap: one 60-byte copy is lowered to four
            // overlapping 16-byte moves, and a later load of a field in the overlap (`val`)
            // cannot be forwarded from the store buffer and waits for both stores. (That the
            // pieces stay apart is up to codegen; it keeps them apart today, and the profile
            // in BENCHMARKS.md shows what it costs if that changes.)
            // SAFETY: the slot is published (acquire above) and not released yet (the
            // caller's contract), so its producer is done with it and no other has it; `out` has room for SQE_BODY bytes, and
            // 48 + 8 + (SQE_BODY - 56) = SQE_BODY.
            unsafe {
                let (src, dst) = (body.cast::<u8>(), out.as_mut_ptr().cast::<u8>());
                ptr::copy_nonoverlapping(src, dst, 48);
                ptr::copy_nonoverlapping(src.add(48), dst.add(48), 8);
                ptr::copy_nonoverlapping(src.add(56), dst.add(56), SQE_BODY - 56);
            }
        });
        // SAFETY: zeroed, then its first SQE_BODY bytes copied: every byte is initialized and
        // every bit pattern is a valid `Sqe`.
        Some(unsafe { out.assume_init() })
    }

    /// Consumer: hands every slot before `head` back to the producers.
    #[inline]
    pub fn release(&self, head: u32) {
        // Release pairs with the producers' acquire load of `head` in `reserve`: our copies of
        // the slots are complete before they can be reused.
        self.head
            .store(head, ordering!("sq_head_release", Release => Relaxed));
    }

    /// Consumer, before sleeping: sets NEED_WAKEUP (and [`SQ_CQ_FULL`] when `cq_full`: it
    /// sleeps because published entries wait for a completion slot), issues the full
    /// barrier, and looks once more. Returns `true` if it may sleep; `false` (flags
    /// cleared) if `work_ready` found something after all.
    pub fn prepare_sleep(&self, cq_full: bool, work_ready: impl FnOnce() -> bool) -> bool {
        let flags = if cq_full {
            SQ_NEED_WAKEUP | SQ_CQ_FULL
        } else {
            SQ_NEED_WAKEUP
        };
        self.flags.fetch_or(flags, Ordering::Relaxed);
        // SeqCst fence pairs with the producer's in `after_publish`, and with the completion
        // consumer's in `CqView::after_release`.
        fence(ordering!("prepare_sleep", SeqCst => AcqRel));
        if work_ready() {
            self.clear_wakeup();
            false
        } else {
            true
        }
    }

    /// Consumer, awake again: clears NEED_WAKEUP and [`SQ_CQ_FULL`].
    pub fn clear_wakeup(&self) {
        // Relaxed: a producer that still sees the flag only kicks once too often.
        self.flags
            .fetch_and(!(SQ_NEED_WAKEUP | SQ_CQ_FULL), Ordering::Relaxed);
    }
}

/// The completion ring. `slots.len()` is a power of two.
#[derive(Clone, Copy, Debug)]
pub struct CqView<'a> {
    /// Next completion the consumer will read; written by the consumer only.
    pub head: &'a AtomicU32,
    /// One past the last posted completion; written by the kernel only.
    pub tail: &'a AtomicU32,
    /// The entries.
    pub slots: &'a [CqSlot],
}

impl<'a> CqView<'a> {
    /// Number of slots.
    #[inline]
    pub fn entries(&self) -> u32 {
        self.slots.len() as u32
    }

    #[inline]
    fn slot(&self, pos: u32) -> &'a CqSlot {
        &self.slots[(pos & (self.entries() - 1)) as usize]
    }

    /// Kernel: free slots after its private `tail`.
    #[inline]
    pub fn room(&self, tail: u32) -> u32 {
        // Acquire pairs with the consumer's release of `head` in `release`: it has finished
        // reading the slots it handed back.
        let head = self
            .head
            .load(ordering!("cq_head_acquire", Acquire => Relaxed));
        // A head that is not in [tail - entries, tail] (a hostile or confused consumer)
        // means no room: the consumer only stalls itself.
        self.entries().saturating_sub(tail.wrapping_sub(head))
    }

    /// Kernel: writes the completion at its private position `tail`, which `room` said is
    /// free.
    ///
    /// # Safety
    ///
    /// The caller is the ring's only completion producer (no other thread writes or
    /// publishes this CQ), `tail` its private tail, and [`CqView::room`] at that tail was
    /// non-zero by a head that only the one consumer moves: so no one else accesses the
    /// slot.
    ///
    /// ```compile_fail,E0133
    /// let rings = sbpf_ring::region::HeapRings::new(2, 1);
    /// rings.cq().write(0, &sbpf_ring::Cqe::default());
    /// ```
    #[inline]
    pub unsafe fn write(&self, tail: u32, cqe: &Cqe) {
        self.slot(tail).body.with_mut(|slot| {
            // SAFETY: `room` said the consumer is done with this slot and it is not yet
            // published; the caller is its only writer (the caller's contract).
            unsafe { ptr::write(slot, *cqe) }
        });
    }

    /// Kernel: publishes every completion before `tail`.
    #[inline]
    pub fn publish(&self, tail: u32) {
        // Release pairs with the consumer's acquire load of `tail` in `available`.
        self.tail
            .store(tail, ordering!("cq_tail_release", Release => Relaxed));
    }

    /// Consumer: the kernel's tail, to read completions up to.
    #[inline]
    pub fn available(&self) -> u32 {
        // Acquire pairs with the kernel's release in `publish`.
        self.tail
            .load(ordering!("cq_tail_acquire", Acquire => Relaxed))
    }

    /// Consumer: reads the completion at `pos` (before the tail it loaded).
    ///
    /// # Safety
    ///
    /// The caller is the ring's only completion consumer (no other thread reads or releases
    /// this CQ), and `pos` lies in `[head, tail)` for its private head (not yet released)
    /// and a tail it loaded with [`CqView::available`] from the one completion producer.
    ///
    /// ```compile_fail,E0133
    /// let rings = sbpf_ring::region::HeapRings::new(2, 1);
    /// let _ = rings.cq().read(0);
    /// ```
    #[inline]
    pub unsafe fn read(&self, pos: u32) -> Cqe {
        self.slot(pos).body.with(|slot| {
            // SAFETY: `pos` is before the tail loaded with acquire and at or after our head
            // (the caller's contract), so the kernel wrote it and will not touch it until we
            // release it.
            unsafe { ptr::read(slot) }
        })
    }

    /// Consumer: its own head, to start from.
    pub fn consumer_head(&self) -> u32 {
        // Relaxed: only the consumer writes it.
        self.head.load(Ordering::Relaxed)
    }

    /// Consumer: hands every slot before `head` back to the kernel.
    #[inline]
    pub fn release(&self, head: u32) {
        // Release pairs with the kernel's acquire load of `head` in `room`.
        self.head
            .store(head, ordering!("cq_head_release", Release => Relaxed));
    }

    /// Consumer, after [`CqView::release`]: the full barrier of the full-CQ handshake, then
    /// whether the kernel sleeps and must be kicked to see the room: whether any of `flags`
    /// is set in `sq` ([`SQ_CQ_FULL`] for a poller that sets it; [`SQ_NEED_WAKEUP`] for one
    /// that does not say why it sleeps).
    #[inline]
    pub fn after_release(&self, sq: &SqView<'_>, flags: u32) -> bool {
        // SeqCst fence pairs with the one in `SqView::prepare_sleep` (Dekker): a kernel that
        // sleeps because the CQ was full either sees our new `head` in its re-check of
        // `room`, or we see its NEED_WAKEUP here.
        fence(ordering!("after_release", SeqCst => AcqRel));
        sq.flags.load(Ordering::Relaxed) & flags != 0
    }
}

/// The user-side gate that closes a ring for shutdown without losing an entry a producer
/// is publishing at that moment.
///
/// `close` stores `closed`, issues a full fence and snapshots the SQ tail as the final
/// tail. A producer, after reserving and writing and before publishing, issues a full fence
/// and checks `closed` ([`Gate::admit`]). By the two fences, either the snapshot covers the
/// producer's reservation (it publishes, and the consumer takes the entries), or the
/// producer sees `closed` and learns from the final tail that its positions are beyond it:
/// it leaves them unpublished and takes its entries back. A refused entry is never
/// published, so no consumer can perform it, whether or not it knows the final tail.
#[derive(Debug)]
pub struct Gate {
    /// 1 once `close` has begun.
    closed: AtomicU32,
    /// The SQ tail snapshot, or `u64::MAX` until `close` has taken it.
    final_tail: AtomicU64,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// An open gate.
    pub fn new() -> Self {
        Gate {
            closed: AtomicU32::new(0),
            final_tail: AtomicU64::new(u64::MAX),
        }
    }

    /// Producer, before reserving: a cheap early refusal once closed.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed) != 0
    }

    /// Producer, after reserving `[pos, pos + n)` and writing the entries, before publishing
    /// them: whether to publish. `false` means the ring closed before these positions; the
    /// producer must leave them unpublished and take its entries back.
    #[inline]
    pub fn admit(&self, pos: u32) -> bool {
        // SeqCst fence pairs with the one in `close` (Dekker): either `close` snapshots a
        // tail that covers our reservation, or we see `closed`.
        fence(ordering!("gate_admit", SeqCst => AcqRel));
        if self.closed.load(Ordering::Relaxed) == 0 {
            return true;
        }
        loop {
            // Acquire pairs with the release in `close`.
            let final_tail = self.final_tail.load(Ordering::Acquire);
            if final_tail != u64::MAX {
                // `pos` is within 2^31 of the final tail: before it or at/after it.
                return (final_tail as u32).wrapping_sub(pos) as i32 > 0;
            }
            spin_loop();
        }
    }

    /// Closer: refuses new reservations and returns the final tail: every position before it
    /// was reserved by a producer that will publish it, and none after it is ever published.
    /// Idempotent: a later (or concurrent) call returns the first call's final tail.
    pub fn close(&self, sq: &SqView<'_>) -> u32 {
        // Relaxed: only which closer wins matters; the fence below orders the store.
        if self
            .closed
            .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            loop {
                // Acquire pairs with the release store below, in the first closer.
                let final_tail = self.final_tail.load(Ordering::Acquire);
                if final_tail != u64::MAX {
                    return final_tail as u32;
                }
                spin_loop();
            }
        }
        // SeqCst fence pairs with the producers' in `admit`.
        fence(ordering!("gate_close", SeqCst => AcqRel));
        let tail = sq.tail.load(Ordering::Relaxed);
        // Release pairs with the acquire in `admit`.
        self.final_tail.store(u64::from(tail), Ordering::Release);
        tail
    }
}

/// A sleep/wake pair for one side waiting on progress the other makes, without a lost
/// wake-up: the waiter announces itself, fences and re-checks before it blocks; the notifier
/// fences after making progress and takes the lock only when someone waits.
#[derive(Debug, Default)]
pub struct Event {
    /// Threads inside `wait_while`.
    waiters: AtomicU32,
    /// Bumped by every notification that found a waiter.
    epoch: Mutex<u64>,
    cond: Condvar,
}

impl Event {
    /// A new event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until `ready` holds, `notify` is called after progress, or `timeout` passes
    /// (never, when `None`). Returns whether `ready` held at the end.
    pub fn wait(&self, ready: impl Fn() -> bool, timeout: Option<std::time::Duration>) -> bool {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // SeqCst fence pairs with the one in `notify`: either our re-check sees the progress
        // or the notifier sees us waiting.
        fence(ordering!("event_wait", SeqCst => AcqRel));
        let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        let mut ok = ready();
        if !ok {
            let seen = *epoch;
            while !ok && *epoch == seen {
                epoch = match timeout {
                    None => self.cond.wait(epoch).unwrap_or_else(|e| e.into_inner()),
                    #[cfg(not(loom))]
                    Some(t) => {
                        let (g, res) = self
                            .cond
                            .wait_timeout(epoch, t)
                            .unwrap_or_else(|e| e.into_inner());
                        if res.timed_out() {
                            ok = ready();
                            drop(g);
                            self.waiters.fetch_sub(1, Ordering::Relaxed);
                            return ok;
                        }
                        g
                    }
                    #[cfg(loom)]
                    Some(_) => self.cond.wait(epoch).unwrap_or_else(|e| e.into_inner()),
                };
                ok = ready();
            }
        }
        drop(epoch);
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        ok
    }

    /// Called after making progress a waiter may be waiting for.
    #[inline]
    pub fn notify(&self) {
        // SeqCst fence pairs with the one in `wait`.
        fence(ordering!("event_notify", SeqCst => AcqRel));
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.notify_locked();
        }
    }

    #[cold]
    fn notify_locked(&self) {
        let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        *epoch = epoch.wrapping_add(1);
        self.cond.notify_all();
    }
}
