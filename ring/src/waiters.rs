//! The dispatcher's waiting protocol: in-flight requests in a slab keyed by `user_data`,
//! the one routing thread at a time ("the leader"), and the parking and waking of every
//! other waiter. Pure protocol over [`crate::sync`], so the loom models drive this very code.
//!
//! # Slots
//!
//! A slot's `word` holds its generation (high 32 bits) and its state (low 32 bits), so the
//! router checks both in one compare-and-swap: a completion names a request by
//! `user_data = (generation << 32 | index) ^ key`, and only the request that owns that slot
//! in that generation can be completed by it. Everything else is counted and dropped:
//! `forged` (no such slot) or `stale` (a slot in another generation or not in flight).
//!
//! ```text
//!  FREE --alloc--> PENDING --register--> WAITING
//!                     |  \                  |   \
//!                     |   `--abandon--.     |    `--abandon--> ABANDONED --complete--> FREE
//!                  complete            `----|-----------------^
//!                     v                  complete (wakes the waiter)
//!                   DONE <------------------'
//!                     |
//!                   take (owner) --> FREE
//! ```
//!
//! Orderings, each cited at its site:
//!
//! - R1. The router stores the result words (relaxed), then moves the state to DONE with a
//!   **release** CAS; the owner loads the state with **acquire** (`take`, `is_done`), so it
//!   reads the result the router wrote.
//! - R2. Leadership is a flag taken by an **acquire** CAS and dropped by a **release**
//!   store: the completion queue's private head passes from one leader to the next.
//! - P. Parking (Dekker): a follower puts itself on the parked list, moves its slot to
//!   WAITING, issues a full fence (P1) and only then looks at the lead flag and `closed`. A
//!   leader drops the flag, issues a full fence (P2) and then looks at the parked count; a
//!   closer stores `closed`, issues a full fence (P3) and then wakes everyone it finds. By
//!   P1/P2, either the follower sees no leader (and leads itself) or the leader sees the
//!   follower (and unparks one). The one unparked may be a follower that is leaving with
//!   its own result (still on the list, not going to lead): every caller that leaves
//!   without having led looks (P4) and, finding no leader and a parked follower, unparks
//!   one itself; it removed itself from the list under the lock the promoter held, which
//!   orders its look after the promotion. A parked thread and a closer also meet under the parked
//!   list's lock; a task has no such list, so for it P3 pairs with the fence in
//!   `is_closed`, which the task calls after registering its waker: either it sees
//!   `closed` or the closer's scan finds its slot WAITING. Nobody is left waiting without
//!   a leader or a closer to wake it.

use std::{any::Any, task::Waker, time::Duration};

use crossbeam_utils::CachePadded;

use crate::{
    abi::Cqe,
    protocol::ordering,
    sync::{fence, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering},
};

const FREE: u32 = 0;
const PENDING: u32 = 1;
const WAITING: u32 = 2;
const DONE: u32 = 3;
const ABANDONED: u32 = 4;

#[inline]
fn pack(gen: u32, state: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(state)
}

#[inline]
fn gen_of(word: u64) -> u32 {
    (word >> 32) as u32
}

#[inline]
fn state_of(word: u64) -> u32 {
    word as u32
}

/// Who waits for a slot's completion.
pub enum Waiter {
    /// Nobody registered yet.
    None,
    /// A thread parked in a blocking call.
    Thread(crate::sync::thread::Thread),
    /// A task's waker.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Task(Waker),
    /// The owner gave up (a dropped future, a timed-out call); the value (a buffer the
    /// request uses) is dropped when the request completes.
    Orphan(#[allow(dead_code, reason = "held only to be dropped")] Option<Box<dyn Any + Send>>),
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiter::None => "None",
            Waiter::Thread(_) => "Thread",
            Waiter::Task(_) => "Task",
            Waiter::Orphan(_) => "Orphan",
        })
    }
}

impl Waiter {
    /// Wakes whoever waits; an orphan is dropped.
    fn wake(self) {
        match self {
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => w.wake(),
            Waiter::None | Waiter::Orphan(_) => {}
        }
    }
}

/// The lead, held until this drops (see [`Waiters::lead`]).
#[derive(Debug)]
#[must_use = "the lead is given up when this drops"]
pub struct Leading<'a>(&'a Waiters);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.unlead();
    }
}

/// One in-flight request.
#[derive(Debug)]
struct Slot {
    /// Generation (high half) and state (low half); see the module docs.
    word: AtomicU64,
    /// The completion's `res` (low half) and `flags` (high half); written by the router
    /// before the release CAS to DONE (R1).
    res: AtomicU64,
    /// The completion's value word; as `res`.
    value: AtomicU64,
    /// Who to wake; taken by the router after it moves the slot to DONE.
    waiter: Mutex<Waiter>,
    /// Next free slot plus one (0: none); meaningful only while the slot is on the free
    /// list.
    next: AtomicU32,
}

/// What the router did with a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Handed to its request.
    Delivered,
    /// Its request had been given up; the slot is free again.
    Reclaimed,
    /// Names a slot that does not exist.
    Forged,
    /// Names a slot in another generation, or one not in flight.
    Stale,
}

/// The counters of a [`Waiters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Completions handed to their request (or reclaiming a given-up one).
    pub routed: u64,
    /// Completions whose `user_data` names no slot.
    pub forged: u64,
    /// Completions whose `user_data` names a slot in another generation or not in flight.
    pub stale: u64,
}

/// The slab of in-flight requests with the leader flag and the parked followers.
#[derive(Debug)]
pub struct Waiters {
    slots: Box<[CachePadded<Slot>]>,
    /// Top of the free list: a tag (high half, bumped by every change, against ABA) and the
    /// slot index plus one (low half; 0 when empty).
    free: CachePadded<AtomicU64>,
    /// XORed into every `user_data`, so that a guessed value rarely names a live slot.
    key: u64,
    /// Set while a thread routes completions (R2).
    lead: CachePadded<AtomicBool>,
    /// Followers parked in `park`, by slot, for the leader to promote one (P).
    parked: Mutex<Vec<(u32, crate::sync::thread::Thread)>>,
    /// `parked.len()`, readable without the lock (P).
    parked_count: AtomicU32,
    /// Set once by `close` (P).
    closed: AtomicBool,
    routed: AtomicU64,
    forged: AtomicU64,
    stale: AtomicU64,
}

/// What `park` saw before it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parked {
    /// The request completed before the follower parked.
    Done,
    /// No one leads: the caller should try to lead.
    NoLeader,
    /// The waiters are closed.
    Closed,
    /// The follower parked and was woken (or timed out, or woke spuriously): look again.
    Woken,
}

impl Waiters {
    /// `capacity` slots (at most `u32::MAX - 1`); `key` is XORed into every `user_data`.
    pub fn new(capacity: u32, key: u64) -> Self {
        let slots: Box<[CachePadded<Slot>]> = (0..capacity)
            .map(|i| {
                CachePadded::new(Slot {
                    word: AtomicU64::new(pack(0, FREE)),
                    res: AtomicU64::new(0),
                    value: AtomicU64::new(0),
                    waiter: Mutex::new(Waiter::None),
                    next: AtomicU32::new(if i + 1 < capacity { i + 2 } else { 0 }),
                })
            })
            .collect();
        Waiters {
            free: CachePadded::new(AtomicU64::new(u64::from(capacity.min(1)))),
            slots,
            key,
            lead: CachePadded::new(AtomicBool::new(false)),
            parked: Mutex::new(Vec::new()),
            parked_count: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            routed: AtomicU64::new(0),
            forged: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        }
    }

    /// Whether a slot is free now (a hint).
    pub fn has_free(&self) -> bool {
        // Relaxed: a hint for a waiter that looks again.
        self.free.load(Ordering::Relaxed) as u32 != 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The counters.
    pub fn counts(&self) -> Counts {
        // Relaxed: statistics.
        Counts {
            routed: self.routed.load(Ordering::Relaxed),
            forged: self.forged.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
        }
    }

    /// Slots not free (in flight, done but not taken, or given up and not completed).
    pub fn in_use(&self) -> u32 {
        self.slots
            .iter()
            // Relaxed: a snapshot for statistics and tests.
            .filter(|s| state_of(s.word.load(Ordering::Relaxed)) != FREE)
            .count() as u32
    }

    /// Takes a free slot for a new request: its index and the `user_data` its entry must
    /// carry. `None` when every slot is in use.
    pub fn alloc(&self) -> Option<(u32, u64)> {
        // Acquire pairs with the release CAS in `push_free`: the slot's `next` and its
        // freed state are visible.
        let mut top = self.free.load(Ordering::Acquire);
        loop {
            let index1 = top as u32;
            if index1 == 0 {
                return None;
            }
            let slot = &self.slots[(index1 - 1) as usize];
            // Relaxed: if another thread took this slot since, the tag moved and the CAS
            // below fails.
            let next = slot.next.load(Ordering::Relaxed);
            let new = (((top >> 32) + 1) << 32) | u64::from(next);
            match self
                .free
                .compare_exchange_weak(top, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    let index = index1 - 1;
                    // Relaxed: only the owner writes a slot it popped; the router learns of
                    // the new generation through the ring (the entry's publication and the
                    // completion's, release/acquire both).
                    let gen = gen_of(slot.word.load(Ordering::Relaxed)).wrapping_add(1);
                    slot.word.store(pack(gen, PENDING), Ordering::Relaxed);
                    let user_data = ((u64::from(gen) << 32) | u64::from(index)) ^ self.key;
                    return Some((index, user_data));
                }
                Err(seen) => top = seen,
            }
        }
    }

    fn push_free(&self, index: u32) {
        let slot = &self.slots[index as usize];
        // Relaxed: only the owner reads it, after the acquire in `alloc`.
        let mut top = self.free.load(Ordering::Relaxed);
        loop {
            slot.next.store(top as u32, Ordering::Relaxed);
            let new = (((top >> 32) + 1) << 32) | u64::from(index + 1);
            // Release pairs with the acquire in `alloc`.
            match self
                .free
                .compare_exchange_weak(top, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(seen) => top = seen,
            }
        }
    }

    /// Frees a slot whose request ended (taken, reclaimed, or never published).
    fn free_slot(&self, index: u32) {
        let slot = &self.slots[index as usize];
        let old = std::mem::replace(
            &mut *slot.waiter.lock().unwrap_or_else(|e| e.into_inner()),
            Waiter::None,
        );
        // An orphan (a buffer) goes back now that nothing touches it; outside the lock.
        drop(old);
        // Relaxed: the slot is ours; `push_free` publishes it (release).
        let gen = gen_of(slot.word.load(Ordering::Relaxed));
        slot.word.store(pack(gen, FREE), Ordering::Relaxed);
        self.push_free(index);
    }

    /// Owner: frees a slot whose entry was never published (the submission failed).
    pub fn cancel_unsubmitted(&self, index: u32) {
        self.free_slot(index);
    }

    /// Router (the leader): delivers a completion to the request its `user_data` names.
    pub fn complete(&self, cqe: &Cqe) -> Routed {
        let raw = cqe.user_data ^ self.key;
        let (index, gen) = (raw as u32, (raw >> 32) as u32);
        let Some(slot) = self.slots.get(index as usize) else {
            // Relaxed: statistics.
            self.forged.fetch_add(1, Ordering::Relaxed);
            return Routed::Forged;
        };
        // Relaxed: the CAS below decides; a stale view only makes it fail and retry.
        let mut word = slot.word.load(Ordering::Relaxed);
        loop {
            let state = state_of(word);
            if gen_of(word) != gen || !matches!(state, PENDING | WAITING | ABANDONED) {
                self.stale.fetch_add(1, Ordering::Relaxed);
                return Routed::Stale;
            }
            if state != ABANDONED {
                // The result first, published by the release CAS (R1).
                slot.res.store(
                    u64::from(cqe.res as u32) | (u64::from(cqe.flags) << 32),
                    Ordering::Relaxed,
                );
                slot.value.store(cqe.value, Ordering::Relaxed);
            }
            // Release: R1, the owner's acquire in `take`/`is_done` reads the result.
            // Acquire: an abandoning owner's orphan, stored under the waiter lock, is ours.
            match slot.word.compare_exchange(
                word,
                pack(gen, DONE),
                ordering!("route_done", AcqRel => Relaxed),
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => word = seen,
            }
        }
        self.routed.fetch_add(1, Ordering::Relaxed);
        if state_of(word) == ABANDONED {
            self.free_slot(index);
            return Routed::Reclaimed;
        }
        if state_of(word) == WAITING {
            let mut guard = slot.waiter.lock().unwrap_or_else(|e| e.into_inner());
            // Still this request's: its owner may have taken the result and the slot been
            // reused (a new request's orphan must not be dropped here). Relaxed: a reuse
            // stores its new generation before it stores a waiter under this lock, so a
            // waiter that is not this request's comes with a word not DONE in `gen`.
            let waiter = if slot.word.load(Ordering::Relaxed) == pack(gen, DONE) {
                std::mem::replace(&mut *guard, Waiter::None)
            } else {
                Waiter::None
            };
            drop(guard);
            waiter.wake();
        }
        Routed::Delivered
    }

    /// Owner: whether the request completed.
    #[inline]
    pub fn is_done(&self, index: u32) -> bool {
        // Acquire pairs with the router's release CAS (R1).
        state_of(self.slots[index as usize].word.load(Ordering::Acquire)) == DONE
    }

    /// Owner: the completion of a request that completed, freeing its slot; `None` if it
    /// has not completed.
    pub fn take(&self, index: u32) -> Option<Cqe> {
        let slot = &self.slots[index as usize];
        // Acquire pairs with the router's release CAS (R1).
        let word = slot
            .word
            .load(ordering!("take_acquire", Acquire => Relaxed));
        if state_of(word) != DONE {
            return None;
        }
        let key_gen = (u64::from(gen_of(word)) << 32) | u64::from(index);
        let res = slot.res.load(Ordering::Relaxed);
        let cqe = Cqe {
            user_data: key_gen ^ self.key,
            res: res as u32 as i32,
            flags: (res >> 32) as u32,
            value: slot.value.load(Ordering::Relaxed),
            ..Cqe::default()
        };
        self.free_slot(index);
        Some(cqe)
    }

    /// Owner: registers who to wake when the request completes (replacing an earlier
    /// registration). Returns `false` if it already completed (nothing will wake).
    pub fn register(&self, index: u32, waiter: Waiter) -> bool {
        let slot = &self.slots[index as usize];
        *slot.waiter.lock().unwrap_or_else(|e| e.into_inner()) = waiter;
        // Relaxed: the CAS decides; the waiter itself is published by the lock.
        let mut word = slot.word.load(Ordering::Relaxed);
        loop {
            match state_of(word) {
                WAITING => return true,
                DONE => return false,
                PENDING => {}
                s => unreachable!("register on a slot in state {s}"),
            }
            // AcqRel: a router that CASes after us sees WAITING and then takes the waiter
            // under the lock; one that CASed before makes us see DONE.
            match slot.word.compare_exchange(
                word,
                pack(gen_of(word), WAITING),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => word = seen,
            }
        }
    }

    /// Owner: gives the request up (a dropped future, a timed-out call). `orphan` lives
    /// until the request completes (it is dropped at once if it already has); the slot is
    /// freed then.
    pub fn abandon(&self, index: u32, orphan: Option<Box<dyn Any + Send>>) {
        let slot = &self.slots[index as usize];
        *slot.waiter.lock().unwrap_or_else(|e| e.into_inner()) = Waiter::Orphan(orphan);
        let mut word = slot.word.load(Ordering::Relaxed);
        loop {
            match state_of(word) {
                DONE => {
                    self.free_slot(index);
                    return;
                }
                PENDING | WAITING => {}
                s => unreachable!("abandon on a slot in state {s}"),
            }
            // Release: the orphan stored above (and under the lock) goes to the router.
            // Acquire: a DONE seen here means the router is done with the slot.
            match slot.word.compare_exchange(
                word,
                pack(gen_of(word), ABANDONED),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(seen) => word = seen,
            }
        }
    }

    /// Tries to become the leader, the one thread that routes completions.
    #[inline]
    pub fn try_lead(&self) -> bool {
        // Acquire pairs with the release store in `unlead` (R2).
        !self.lead.load(Ordering::Relaxed)
            && self
                .lead
                .compare_exchange(
                    false,
                    true,
                    ordering!("lead_acquire", Acquire => Relaxed),
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Takes the lead if no one holds it; it is given up when the guard drops, also when
    /// the leader unwinds (a waker that panics while it routes must not leave every other
    /// caller without a leader).
    #[inline]
    pub fn lead(&self) -> Option<Leading<'_>> {
        self.try_lead().then(|| Leading(self))
    }

    /// Whether some thread leads now (a hint).
    #[inline]
    pub fn has_leader(&self) -> bool {
        self.lead.load(Ordering::Relaxed)
    }

    /// The leader steps down and, if followers are parked, unparks one to lead next (P2).
    #[inline]
    pub fn unlead(&self) {
        // Release pairs with the acquire CAS in `try_lead` (R2).
        self.lead
            .store(false, ordering!("lead_release", Release => Relaxed));
        // SeqCst fence P2 pairs with P1 in `park`.
        fence(ordering!("unlead_fence", SeqCst => AcqRel));
        if self.parked_count.load(Ordering::Relaxed) != 0 {
            self.promote();
        }
    }

    /// A caller leaves with its result without having led: if no one leads and a
    /// follower is parked, it unparks one (P4). A leader's `promote` may have unparked
    /// this very caller, which was on the parked list but not going to lead: without this,
    /// that promotion is lost and the follower parked behind it waits with no leader.
    #[inline]
    pub fn leave(&self) {
        // Relaxed, ordered by the parked list's lock: a promotion lost on this caller took
        // the lock (after the leader's store of `lead`, and after the pushes of the
        // followers it saw) before this caller removed itself under the same lock. A
        // follower that pushed later meets the leader by P1/P2 instead.
        if !self.lead.load(Ordering::Relaxed) && self.parked_count.load(Ordering::Relaxed) != 0 {
            self.promote();
        }
    }

    #[cold]
    fn promote(&self) {
        let parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, thread)) = parked.first() {
            thread.unpark();
        }
    }

    /// Follower: parks until its request completes, a leader steps down, the waiters
    /// close, or `timeout` passes (spurious returns are allowed: the caller looks again).
    pub fn park(&self, index: u32, timeout: Option<Duration>) -> Parked {
        let me = crate::sync::thread::current();
        {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            parked.push((index, me.clone()));
            self.parked_count.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = if !self.register(index, Waiter::Thread(me)) {
            Parked::Done
        } else {
            // SeqCst fence P1 pairs with P2 in `unlead` and P3 in `close`.
            fence(ordering!("park_fence", SeqCst => AcqRel));
            if self.closed.load(Ordering::Relaxed) {
                Parked::Closed
            } else if !self.lead.load(Ordering::Relaxed) {
                Parked::NoLeader
            } else if self.is_done(index) {
                Parked::Done
            } else {
                crate::sync::thread::park_timeout(timeout);
                Parked::Woken
            }
        };
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = parked.iter().position(|(slot, _)| *slot == index) {
            parked.swap_remove(i);
            self.parked_count.fetch_sub(1, Ordering::Relaxed);
        }
        outcome
    }

    /// Closes: every parked follower and every registered waiter is woken, and sees
    /// [`Waiters::is_closed`] (P3).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        // SeqCst fence P3 pairs with P1 in `park` (and the owner's fence in `is_closed`).
        fence(ordering!("close_fence", SeqCst => AcqRel));
        for (_, thread) in self.parked.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            thread.unpark();
        }
        for slot in self.slots.iter() {
            // Relaxed: the fence above orders it after `closed`.
            let word = slot.word.load(Ordering::Relaxed);
            if state_of(word) == WAITING {
                let mut guard = slot.waiter.lock().unwrap_or_else(|e| e.into_inner());
                // Only a waiter still WAITING in that generation: an orphan stored since
                // (the request given up) must live until the request completes.
                let waiter = if slot.word.load(Ordering::Relaxed) == word {
                    std::mem::replace(&mut *guard, Waiter::None)
                } else {
                    Waiter::None
                };
                drop(guard);
                waiter.wake();
            }
        }
    }

    /// Wakes every task registered on a slot (they poll again); threads stay parked.
    #[cfg(feature = "tokio")]
    pub fn wake_tasks(&self) {
        for slot in self.slots.iter() {
            // Relaxed: a task registered after this scan polls `ensure_reactor` itself.
            let word = slot.word.load(Ordering::Relaxed);
            if state_of(word) == WAITING {
                let mut guard = slot.waiter.lock().unwrap_or_else(|e| e.into_inner());
                if slot.word.load(Ordering::Relaxed) == word && matches!(*guard, Waiter::Task(_)) {
                    let waiter = std::mem::replace(&mut *guard, Waiter::None);
                    drop(guard);
                    waiter.wake();
                }
            }
        }
    }

    /// Whether `close` was called, without the fence (a hint, for loops that look again).
    #[inline]
    pub fn closed_hint(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Whether `close` was called. An owner that registered a waiter calls this after a
    /// full fence (as `park` does), so that `close` either finds its waiter or it sees the
    /// flag.
    #[inline]
    pub fn is_closed(&self) -> bool {
        fence(Ordering::SeqCst);
        self.closed.load(Ordering::Relaxed)
    }
}
