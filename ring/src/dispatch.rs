//! The completion dispatcher: per-request results from any thread.
//!
//! A [`Dispatcher`] owns the ring's one [`CompletionQueue`] and keeps every request in
//! flight in a slab keyed by `user_data` ([`crate::waiters`]: index plus generation, so a
//! forged or stale completion is counted and dropped, never handed to the wrong caller).
//! There is no routing thread: whichever caller is waiting and finds no one routing becomes
//! the leader, drains the completion queue and hands each completion to its request's
//! waiter (a parked thread, or a task's waker); the other callers park. A leader that has
//! its own result steps down and unparks a parked caller to lead next (leader/follower, as
//! in combining queues). Under load the leader finds completions for many callers in one
//! drain; an idle ring costs nothing, since every waiter eventually blocks (the leader in
//! [`CompletionQueue::wait`], the others parked).
//!
//! The ring's raw [`CompletionQueue`] and the dispatcher exclude each other: each takes the
//! one completion queue, and the second is refused with [`Error::CompletionQueueTaken`].

use std::{
    cell::UnsafeCell,
    fmt,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::{Duration, Instant},
};

use crossbeam_queue::ArrayQueue;

use crate::{
    buffers::{ArenaBuf, BufferPool},
    complete::{Completion, CompletionQueue},
    op,
    protocol::Event,
    waiters::{Parked, Waiters},
    BoundsValidator, Error, ObjectId, Ring, Sqe, Submitter,
};

/// A buffer from another ring's pool: its offset names bytes of that ring's arena.
pub(crate) const FOREIGN_BUFFER: Error =
    Error::InvalidArgument("the buffer belongs to another ring's arena");

/// Spins of a caller that waits for its own result before it parks, looking at its slot
/// and the lead flag.
const FOLLOWER_SPINS: u32 = 4096;

/// A spinning follower yields its core this often, so that a leader or poller sharing it
/// runs (with more callers than cores, a parked caller costs the leader a futex wake-up
/// and a context switch, where a yielding one takes the lead or its result by itself).
const FOLLOWER_YIELD_EVERY: u32 = 16;

/// Producer handles kept for calls, so that a call does not clone a validator.
const POOLED_SUBMITTERS: usize = 64;

/// The ring's side of the dispatcher: told when the ring closes.
#[derive(Default)]
pub(crate) struct CloseHook(OnceLock<Weak<State>>);

impl CloseHook {
    /// Called once the ring is shut down and its consumer stopped.
    pub(crate) fn closed(&self) {
        if let Some(state) = self.0.get().and_then(Weak::upgrade) {
            state.close();
        }
    }
}

/// What a [`Ring`] makes on first use: its dispatcher (or `None` when the raw completion
/// queue was taken first), and its buffer pool.
#[derive(Default)]
pub(crate) struct RingDispatch {
    dispatcher: OnceLock<Option<Dispatcher>>,
    buffers: OnceLock<BufferPool>,
}

/// Counters of a dispatcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchStats {
    /// Completions handed to the request that made them.
    pub routed: u64,
    /// Completions whose `user_data` names no request slot (written by something other
    /// than the dispatcher: a raw producer, or a hostile write into the ring).
    pub forged: u64,
    /// Completions whose `user_data` names a slot in another generation, or one not in
    /// flight (a duplicate, or an old value replayed).
    pub stale: u64,
    /// Request slots in use now (in flight, or completed and not yet taken).
    pub in_flight: u32,
}

pub(crate) struct State {
    ring: crate::Handle,
    pub(crate) waiters: Waiters,
    /// The ring's completion queue; touched only by the leader (the thread for which
    /// `waiters.try_lead()` succeeded, until its `unlead`).
    cq: UnsafeCell<CompletionQueue>,
    /// Producer handles lent to calls.
    submitters: ArrayQueue<Submitter>,
    /// Cloned when the pool is empty.
    template: Mutex<Submitter>,
    /// Notified after every drain that routed something: callers waiting for room in the
    /// submission ring or for a free slot wait here.
    progress: Event,
    #[cfg(feature = "tokio")]
    pub(crate) reactor: crate::tokio::ReactorSlot,
}

// SAFETY: the only field that is not `Sync` is `cq`, which is touched only by the thread
// holding the lead flag (an acquire CAS in `try_lead`, a release store in `unlead`), so
// never by two threads at once, and each leader sees the previous one's changes.
unsafe impl Sync for State {}

/// Routes each completion of a ring to the call that made it. Cheap to clone; `Send` and
/// `Sync`: any number of threads (and tasks) call through one dispatcher at once.
///
/// Get it from [`Ring::dispatcher`]; [`Ring::call`] and the typed helpers on [`Ring`] use
/// the same one.
///
/// Completions are routed by waiting calls, not by a thread of their own: while no call
/// waits, nothing reads the completion queue. Entries published by raw [`Submitter`]s
/// beside the dispatcher therefore complete only while calls are made (their completions
/// are counted as forged and dropped), and once the completion queue is full such a
/// producer sees `Full` until the next call.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) state: Arc<State>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Why a leader stopped leading.
enum Lead {
    Mine,
    Closed,
    TimedOut,
}

/// What a caller waiting for progress needs.
#[derive(Clone, Copy)]
enum Room {
    /// Room in the submission ring.
    Ring,
    /// A free request slot.
    Slot,
}

/// Where a request stands for its caller.
enum Wait {
    Done(Completion),
    Closed,
    TimedOut,
}

impl State {
    fn ring(&self) -> &crate::Inner {
        self.ring.inner()
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn ring_inner(&self) -> &crate::Inner {
        self.ring.inner()
    }

    /// The local backend's eventfd wake-up (local rings only).
    #[cfg(feature = "tokio")]
    pub(crate) fn local_wakeup(&self) -> &crate::wakeup::CqWakeup {
        &self.ring().local().cq_wakeup
    }

    /// Routes every completion ready now. Only the leader calls it.
    pub(crate) fn drain(&self) -> usize {
        // SAFETY: the caller holds the lead (see the `Sync` impl), so no other thread
        // touches the queue.
        let cq = unsafe { &mut *self.cq.get() };
        let mut n = 0;
        for c in cq.iter() {
            self.waiters.complete(&c.0);
            n += 1;
        }
        if n > 0 {
            self.progress.notify();
        }
        n
    }

    /// The leader waits for the completion queue. Only the leader calls it.
    ///
    /// It looks for up to the ring's `wait_spin` first, yielding its core every
    /// `LEADER_YIELD_EVERY` looks: the consumer (the local poller) may share this core, and
    /// a round trip then needs this thread off it; [`CompletionQueue::wait`] yields far
    /// less often, which suits a consumer pinned to its own core. Then it blocks there.
    fn wait_cq(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        const LEADER_YIELD_EVERY: u32 = 64;
        let spin = timeout.map_or(self.ring().wait_spin, |t| t.min(self.ring().wait_spin));
        let polled = match &self.ring().backend {
            crate::ring::Backend::Kernel(k) => k.sqpoll(),
            crate::ring::Backend::Local(_) => true,
        };
        if polled && !spin.is_zero() {
            let until = Instant::now() + spin;
            let mut looks = 0u32;
            loop {
                if self.cq_ready() {
                    return Ok(1);
                }
                looks = looks.wrapping_add(1);
                if looks % LEADER_YIELD_EVERY == 0 {
                    if Instant::now() >= until {
                        break;
                    }
                    std::thread::yield_now();
                } else {
                    crate::sync::spin_loop();
                }
            }
        }
        // SAFETY: as in `drain`.
        let cq = unsafe { &mut *self.cq.get() };
        cq.wait(1, timeout.map(|t| t.saturating_sub(spin)))
    }

    /// Completions posted and not yet routed (a hint for anyone).
    pub(crate) fn cq_ready(&self) -> bool {
        let cq = self.ring().region.cq();
        cq.available() != cq.consumer_head()
    }

    fn close(&self) {
        self.waiters.close();
        self.progress.notify();
        #[cfg(feature = "tokio")]
        self.reactor.closed(self.ring());
    }

    fn is_closed(&self) -> bool {
        self.ring().gate.is_closed() || self.waiters.is_closed()
    }

    /// Lends a producer handle to `f`.
    pub(crate) fn with_submitter<R>(&self, f: impl FnOnce(&mut Submitter) -> R) -> R {
        let mut sub = self.submitters.pop().unwrap_or_else(|| {
            self.template
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
        let r = f(&mut sub);
        let _ = self.submitters.push(sub);
        r
    }

    /// Waits (without spinning a core) for progress: completions routed, room in the ring.
    /// Leads for a while if no one does.
    fn wait_progress(&self, deadline: Option<Instant>, what: Room) {
        let left = |cap: Duration| {
            deadline.map_or(cap, |d| {
                d.saturating_duration_since(Instant::now()).min(cap)
            })
        };
        if let Some(_lead) = self.waiters.lead() {
            if self.drain() == 0 {
                let _ = self.wait_cq(Some(left(Duration::from_millis(1))));
                self.drain();
            }
        } else {
            let sq = self.ring().region.sq();
            let room = || match what {
                Room::Ring => !sq.looks_full(),
                Room::Slot => self.waiters.has_free(),
            };
            // A slot freed by its owner's `take` comes without a notification: the
            // timeout bounds that wait.
            self.progress.wait(
                || room() || self.is_closed() || !self.waiters.has_leader(),
                Some(left(Duration::from_millis(1))),
            );
        }
    }

    /// Takes a request slot, waiting for one while all are in use.
    fn alloc(&self, deadline: Option<Instant>) -> Result<(u32, u64), Error> {
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            if let Some(slot) = self.waiters.alloc() {
                return Ok(slot);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::TimedOut);
            }
            self.wait_progress(deadline, Room::Slot);
        }
    }

    /// Submits entries (their `user_data` set), waiting for room; returns how many were
    /// published before an error.
    /// Publishes `entries`, whose request slots are `slots` (one each, in order), waiting
    /// for room as needed; returns how many were published, and why not all. A waker that
    /// panics while this thread routes (it may lead while it waits for room) unwinds with
    /// the slots given back: the published ones to be reclaimed by their completions.
    fn submit(
        &self,
        entries: &[Sqe],
        slots: &[u32],
        deadline: Option<Instant>,
    ) -> (usize, Result<(), Error>) {
        debug_assert_eq!(entries.len(), slots.len());
        let mut done = 0;
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.publish(entries, deadline, &mut done)
        }));
        match r {
            Ok(r) => (done, r),
            Err(panic) => {
                for &i in &slots[..done] {
                    self.waiters.abandon(i, None);
                }
                for &i in &slots[done..] {
                    self.waiters.cancel_unsubmitted(i);
                }
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// [`State::submit`]'s loop; `done` counts the entries published so far.
    fn publish(
        &self,
        entries: &[Sqe],
        deadline: Option<Instant>,
        done: &mut usize,
    ) -> Result<(), Error> {
        let mut spins = 0u32;
        while *done < entries.len() {
            let r = self.with_submitter(|s| s.submit_batch(&entries[*done..]));
            match r {
                Ok(n) => {
                    *done += n;
                    spins = 0;
                }
                Err(crate::BatchError::Full) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Error::TimedOut);
                    }
                    spins += 1;
                    if spins < 64 {
                        crate::sync::spin_loop();
                    } else {
                        self.wait_progress(deadline, Room::Ring);
                    }
                }
                Err(crate::BatchError::Closed) => return Err(Error::Closed),
                Err(crate::BatchError::Rejected {
                    stage, rejection, ..
                }) => return Err(Error::Rejected { stage, rejection }),
            }
        }
        Ok(())
    }

    /// Leads until the request in `index` completes, the ring closes, or `deadline`.
    fn lead_until(&self, index: u32, deadline: Option<Instant>) -> Result<Lead, Error> {
        loop {
            self.drain();
            if self.waiters.is_done(index) {
                return Ok(Lead::Mine);
            }
            if self.waiters.closed_hint() {
                return Ok(Lead::Closed);
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => Some(left),
                    None => return Ok(Lead::TimedOut),
                },
                None => None,
            };
            match self.wait_cq(left) {
                Ok(_) | Err(Error::TimedOut) => {}
                Err(Error::Closed) => {
                    self.drain();
                    return Ok(if self.waiters.is_done(index) {
                        Lead::Mine
                    } else {
                        Lead::Closed
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the request in `index` as leader or follower.
    fn wait(&self, index: u32, deadline: Option<Instant>) -> Result<Wait, Error> {
        loop {
            if let Some(cqe) = self.waiters.take(index) {
                self.waiters.leave();
                return Ok(Wait::Done(Completion(cqe)));
            }
            if let Some(lead) = self.waiters.lead() {
                let r = self.lead_until(index, deadline);
                drop(lead);
                match r? {
                    Lead::Mine => continue,
                    Lead::Closed => return Ok(Wait::Closed),
                    Lead::TimedOut => return Ok(Wait::TimedOut),
                }
            }
            if self.waiters.closed_hint() {
                // The leader (if any) is leaving; route what is left ourselves.
                if self.waiters.has_leader() {
                    std::thread::yield_now();
                    continue;
                }
                if let Some(_lead) = self.waiters.lead() {
                    self.drain();
                }
                return Ok(match self.waiters.take(index) {
                    Some(cqe) => Wait::Done(Completion(cqe)),
                    None => Wait::Closed,
                });
            }
            let mut spins = 0;
            while spins < FOLLOWER_SPINS
                && self.waiters.has_leader()
                && !self.waiters.is_done(index)
            {
                if spins % FOLLOWER_YIELD_EVERY == FOLLOWER_YIELD_EVERY - 1 {
                    std::thread::yield_now();
                } else {
                    crate::sync::spin_loop();
                }
                spins += 1;
            }
            if spins < FOLLOWER_SPINS {
                continue;
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => Some(left),
                    None => {
                        self.waiters.leave();
                        return Ok(Wait::TimedOut);
                    }
                },
                None => None,
            };
            match self.waiters.park(index, left) {
                Parked::Done | Parked::NoLeader | Parked::Woken | Parked::Closed => {}
            }
        }
    }

    fn call(&self, mut sqe: Sqe, deadline: Option<Instant>) -> Result<Completion, Error> {
        let (index, user_data) = self.alloc(deadline)?;
        sqe.user_data = user_data;
        if let (_, Err(e)) = self.submit(core::slice::from_ref(&sqe), &[index], deadline) {
            self.waiters.cancel_unsubmitted(index);
            return Err(e);
        }
        self.finish(index, deadline, None)
    }

    /// Waits for a published request and ends it: its completion, or (closed, timed out)
    /// the slot given up with `orphan` kept alive until the request completes.
    fn finish(
        &self,
        index: u32,
        deadline: Option<Instant>,
        orphan: Option<Box<dyn std::any::Any + Send>>,
    ) -> Result<Completion, Error> {
        // A waker that panics while this thread routes unwinds through here: the slot is
        // given up (its completion reclaims it), not lost to the slab.
        let waited = std::panic::catch_unwind(AssertUnwindSafe(|| self.wait(index, deadline)));
        let waited = waited.unwrap_or_else(|panic| {
            self.waiters.abandon(index, None);
            std::panic::resume_unwind(panic)
        });
        match waited {
            Ok(Wait::Done(c)) => Ok(c),
            other => {
                self.waiters.abandon(index, orphan);
                match other {
                    Ok(Wait::TimedOut) => Err(Error::TimedOut),
                    Err(e) => Err(e),
                    _ => Err(Error::Closed),
                }
            }
        }
    }
}

impl Dispatcher {
    pub(crate) fn new(ring: &Ring, template: Submitter, cq: CompletionQueue) -> Dispatcher {
        let inner = ring.handle_ref().inner();
        let capacity = inner.region.sq().entries() + inner.region.cq().entries();
        let state = Arc::new(State {
            ring: ring.handle_ref().clone(),
            waiters: Waiters::new(capacity, random_key()),
            cq: UnsafeCell::new(cq),
            submitters: ArrayQueue::new(POOLED_SUBMITTERS),
            template: Mutex::new(template),
            progress: Event::new(),
            #[cfg(feature = "tokio")]
            reactor: Default::default(),
        });
        let _ = inner.dispatch.0.set(Arc::downgrade(&state));
        if inner.gate.is_closed() {
            state.close();
        }
        Dispatcher { state }
    }

    /// Submits `op` and waits for its completion, in this thread. The entry's `user_data`
    /// is the dispatcher's (its own is replaced); the completion returned is this
    /// request's, whatever other threads call at the same time. Waits for room while the
    /// ring is full, without spinning a core. [`Error::Closed`] if the ring closes first.
    pub fn call(&self, op: impl Into<Sqe>) -> Result<Completion, Error> {
        self.state.call(op.into(), None)
    }

    /// As [`Dispatcher::call`], giving up at `timeout` with [`Error::TimedOut`]. A request
    /// already published still runs; its completion is dropped when it comes.
    pub fn call_timeout(&self, op: impl Into<Sqe>, timeout: Duration) -> Result<Completion, Error> {
        self.state.call(op.into(), Some(Instant::now() + timeout))
    }

    /// Submits every entry (as few publications as the ring allows) and returns their
    /// completions in the same order. Entries go out in rounds of as many as there are
    /// free request slots (at most half the slab): a round never waits for a slot while
    /// it holds unpublished ones, so concurrent batches cannot starve each other. On an
    /// error, entries of earlier rounds have run and their completions are dropped:
    /// [`Dispatcher::call_batch_into`] keeps them.
    pub fn call_batch(&self, ops: &[Sqe]) -> Result<Vec<Completion>, Error> {
        let mut out = Vec::with_capacity(ops.len());
        self.call_batch_into(ops, &mut out)?;
        Ok(out)
    }

    /// As [`Dispatcher::call_batch`], appending the completions to `out` as they come. On
    /// an error `out` keeps what completed: the completions of `ops[..n]`, in order, for
    /// the `n` entries appended. Of the others, those published before the error may have
    /// run; their completions are dropped.
    pub fn call_batch_into(&self, ops: &[Sqe], out: &mut Vec<Completion>) -> Result<(), Error> {
        let state = &self.state;
        let most = (state.waiters.capacity() / 2).max(1) as usize;
        out.reserve(ops.len());
        let mut slots = Vec::with_capacity(ops.len().min(most));
        let mut entries = Vec::with_capacity(ops.len().min(most));
        let mut rest = ops;
        while !rest.is_empty() {
            slots.clear();
            entries.clear();
            // The first slot may wait (this round holds none yet); the others are taken
            // only if free now.
            let (index, user_data) = state.alloc(None)?;
            slots.push(index);
            entries.push(Sqe {
                user_data,
                ..rest[0]
            });
            while slots.len() < rest.len().min(most) {
                let Some((index, user_data)) = state.waiters.alloc() else {
                    break;
                };
                slots.push(index);
                entries.push(Sqe {
                    user_data,
                    ..rest[slots.len() - 1]
                });
            }
            let (published, submitted) = state.submit(&entries, &slots, None);
            for &i in &slots[published..] {
                state.waiters.cancel_unsubmitted(i);
            }
            let mut result = submitted;
            let mut next = 0;
            let finished = std::panic::catch_unwind(AssertUnwindSafe(|| {
                for &i in &slots[..published] {
                    next += 1;
                    if result.is_ok() {
                        match state.finish(i, None, None) {
                            Ok(c) => out.push(c),
                            Err(e) => result = Err(e),
                        }
                    } else {
                        state.waiters.abandon(i, None);
                    }
                }
            }));
            if let Err(panic) = finished {
                // `finish` gave up its own slot; the round's later ones go too.
                for &i in &slots[next..published] {
                    state.waiters.abandon(i, None);
                }
                std::panic::resume_unwind(panic);
            }
            result?;
            rest = &rest[slots.len()..];
        }
        Ok(())
    }

    /// FETCH_ADD64: adds `val` to the word at `offset` of `obj`; returns the old word.
    pub fn fetch_add(&self, obj: ObjectId, offset: u64, val: u64) -> Result<u64, Error> {
        value(self.call(op::FetchAdd64::new(obj, offset, val))?)
    }

    /// CAS64: replaces the word at `offset` by `new` if it is `current`. `Ok(current)` if
    /// it was replaced, `Err(actual)` with the word found if not (as
    /// `AtomicU64::compare_exchange`).
    pub fn compare_exchange(
        &self,
        obj: ObjectId,
        offset: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, Error> {
        let c = self.call(op::Cas64::new(obj, offset, current, new))?;
        let old = value(c)?;
        Ok(if c.result() == 1 { Ok(old) } else { Err(old) })
    }

    /// LOAD64: the word at `offset` of `obj`.
    pub fn load(&self, obj: ObjectId, offset: u64) -> Result<u64, Error> {
        value(self.call(op::Load64::new(obj, offset))?)
    }

    /// STORE64: stores `val` into the word at `offset` of `obj`.
    pub fn store(&self, obj: ObjectId, offset: u64, val: u64) -> Result<(), Error> {
        value(self.call(op::Store64::new(obj, offset, val))?).map(|_| ())
    }

    /// READ: copies `buf.len()` bytes of `obj` at `offset` into `buf`, which the request
    /// owns while it runs; the buffer comes back with the result (bytes read). If the call
    /// fails after publication (the ring closed), the buffer is kept until the request
    /// completes and then returns to its pool, so no byte is reused while the kernel may
    /// write it. A buffer from another ring's pool is refused ([`Error::InvalidArgument`]).
    pub fn read_into(
        &self,
        obj: ObjectId,
        offset: u64,
        buf: ArenaBuf,
    ) -> (Result<usize, Error>, ArenaBuf) {
        self.buffer_op(
            op::Read::new(obj, offset, buf.offset(), buf.len() as u32).build(),
            buf,
        )
    }

    /// WRITE: copies the `buf.len()` bytes of `buf` into `obj` at `offset`; the buffer
    /// comes back with the result (bytes written), as in [`Dispatcher::read_into`].
    pub fn write_from(
        &self,
        obj: ObjectId,
        offset: u64,
        buf: ArenaBuf,
    ) -> (Result<usize, Error>, ArenaBuf) {
        self.buffer_op(
            op::Write::new(obj, offset, buf.offset(), buf.len() as u32).build(),
            buf,
        )
    }

    fn buffer_op(&self, mut sqe: Sqe, buf: ArenaBuf) -> (Result<usize, Error>, ArenaBuf) {
        let state = &self.state;
        if !buf.is_of(state.ring()) {
            return (Err(FOREIGN_BUFFER), buf);
        }
        let (index, user_data) = match state.alloc(None) {
            Ok(s) => s,
            Err(e) => return (Err(e), buf),
        };
        sqe.user_data = user_data;
        if let (_, Err(e)) = state.submit(core::slice::from_ref(&sqe), &[index], None) {
            state.waiters.cancel_unsubmitted(index);
            return (Err(e), buf);
        }
        loop {
            match state.wait(index, None) {
                Ok(Wait::Done(c)) => return (bytes(c), buf),
                // An unexpected error while waiting (from ENTER): the request may still
                // run and use the buffer, so keep waiting for it, not in a busy loop.
                Err(_) if !state.is_closed() => std::thread::sleep(Duration::from_millis(1)),
                other => {
                    // Without a deadline a call ends unanswered only when the ring closed,
                    // and the closed ring's consumer has stopped: the request will never
                    // touch the buffer, so it goes back with the error.
                    state.waiters.abandon(index, None);
                    let e = match other {
                        Err(e) => e,
                        _ => Error::Closed,
                    };
                    return (Err(e), buf);
                }
            }
        }
    }

    /// The counters: completions routed, forged and stale ones dropped, slots in use.
    pub fn stats(&self) -> DispatchStats {
        let c = self.state.waiters.counts();
        DispatchStats {
            routed: c.routed,
            forged: c.forged,
            stale: c.stale,
            in_flight: self.state.waiters.in_use(),
        }
    }
}

/// The lead, held by a test so that no call routes completions until it drops.
#[doc(hidden)]
pub struct LeadHold(Arc<State>);

impl fmt::Debug for LeadHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeadHold")
    }
}

impl Drop for LeadHold {
    fn drop(&mut self) {
        self.0.waiters.unlead();
    }
}

impl Dispatcher {
    /// Takes the lead for a test (see `ring/tests/dispatch.rs`); `None` if someone leads.
    #[doc(hidden)]
    pub fn hold_lead_for_test(&self) -> Option<LeadHold> {
        self.state
            .waiters
            .try_lead()
            .then(|| LeadHold(Arc::clone(&self.state)))
    }
}

/// The value word of a successful completion.
pub(crate) fn value(c: Completion) -> Result<u64, Error> {
    match c.fault() {
        None => Ok(c.value()),
        Some(e) => Err(Error::Op(e)),
    }
}

/// The byte count of a successful completion.
pub(crate) fn bytes(c: Completion) -> Result<usize, Error> {
    match c.fault() {
        None => Ok(c.result() as usize),
        Some(e) => Err(Error::Op(e)),
    }
}

/// A per-dispatcher key for `user_data`, so that guessed values rarely name a live
/// request. Not a secret from the process itself.
fn random_key() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// The dispatcher's calls, on the ring itself.
impl Ring {
    /// The ring's dispatcher, made on first use: it takes the completion queue, so
    /// [`Ring::completions`] is refused from then on, and this is refused
    /// ([`Error::CompletionQueueTaken`]) if the completion queue was taken first. Every
    /// call returns the same dispatcher. Its calls submit through shared producer handles
    /// with the [`BoundsValidator`], so a [`SingleSubmitter`](crate::SingleSubmitter) is
    /// refused from then on (and a ring with one gets no dispatcher).
    pub fn dispatcher(&self) -> Result<Dispatcher, Error> {
        self.dispatcher_ref().cloned()
    }

    fn dispatcher_ref(&self) -> Result<&Dispatcher, Error> {
        let made = self.dispatch.dispatcher.get_or_init(|| {
            let submitter = self.try_submitter_with(BoundsValidator).ok()?;
            let cq = self.completions().ok()?;
            Some(Dispatcher::new(self, submitter, cq))
        });
        made.as_ref().ok_or_else(|| self.no_dispatcher())
    }

    /// The ring's buffer pool over its whole arena, made on first use
    /// ([`BufferPool::new`]). Raw entries that use arena offsets should not be mixed with
    /// it.
    pub fn buffers(&self) -> BufferPool {
        self.dispatch
            .buffers
            .get_or_init(|| BufferPool::new(self.arena()))
            .clone()
    }

    /// [`Dispatcher::call`] through the ring's dispatcher.
    pub fn call(&self, op: impl Into<Sqe>) -> Result<Completion, Error> {
        self.dispatcher_ref()?.call(op)
    }

    /// [`Dispatcher::call_timeout`] through the ring's dispatcher.
    pub fn call_timeout(&self, op: impl Into<Sqe>, timeout: Duration) -> Result<Completion, Error> {
        self.dispatcher_ref()?.call_timeout(op, timeout)
    }

    /// [`Dispatcher::call_batch`] through the ring's dispatcher.
    pub fn call_batch(&self, ops: &[Sqe]) -> Result<Vec<Completion>, Error> {
        self.dispatcher_ref()?.call_batch(ops)
    }

    /// [`Dispatcher::call_batch_into`] through the ring's dispatcher.
    pub fn call_batch_into(&self, ops: &[Sqe], out: &mut Vec<Completion>) -> Result<(), Error> {
        self.dispatcher_ref()?.call_batch_into(ops, out)
    }

    /// [`Dispatcher::fetch_add`] through the ring's dispatcher.
    pub fn fetch_add(&self, obj: ObjectId, offset: u64, val: u64) -> Result<u64, Error> {
        self.dispatcher_ref()?.fetch_add(obj, offset, val)
    }

    /// [`Dispatcher::compare_exchange`] through the ring's dispatcher.
    pub fn compare_exchange(
        &self,
        obj: ObjectId,
        offset: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, Error> {
        self.dispatcher_ref()?
            .compare_exchange(obj, offset, current, new)
    }

    /// [`Dispatcher::load`] through the ring's dispatcher.
    pub fn load(&self, obj: ObjectId, offset: u64) -> Result<u64, Error> {
        self.dispatcher_ref()?.load(obj, offset)
    }

    /// [`Dispatcher::store`] through the ring's dispatcher.
    pub fn store(&self, obj: ObjectId, offset: u64, val: u64) -> Result<(), Error> {
        self.dispatcher_ref()?.store(obj, offset, val)
    }

    /// [`Dispatcher::read_into`] through the ring's dispatcher.
    pub fn read_into(
        &self,
        obj: ObjectId,
        offset: u64,
        buf: ArenaBuf,
    ) -> (Result<usize, Error>, ArenaBuf) {
        match self.dispatcher_ref() {
            Ok(d) => d.read_into(obj, offset, buf),
            Err(e) => (Err(e), buf),
        }
    }

    /// [`Dispatcher::write_from`] through the ring's dispatcher.
    pub fn write_from(
        &self,
        obj: ObjectId,
        offset: u64,
        buf: ArenaBuf,
    ) -> (Result<usize, Error>, ArenaBuf) {
        match self.dispatcher_ref() {
            Ok(d) => d.write_from(obj, offset, buf),
            Err(e) => (Err(e), buf),
        }
    }
}
