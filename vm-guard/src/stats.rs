//! Totals over every copy of a guard.
//!
//! A [`Guard`](crate::Guard) is copied once per producer handle, and the copy moves into the
//! handle, out of the caller's reach. [`GuardStats`] is the caller's view of all of them:
//! each copy owns a slot whose accept count sits on a cache line of its own and is written
//! only by that copy (a plain load and store on the accepting path; the rejecting path,
//! which formats a reason anyway, takes a lock), and a reader adds the slots up. A copy
//! that is dropped folds its counts into the board first, so totals never go down.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, MutexGuard, PoisonError,
};

use crossbeam_utils::CachePadded;

use crate::guard::GuardCounters;

/// One copy's counts.
#[derive(Default)]
struct Slot {
    /// Entries accepted; written by the owning copy only, on a line that readers only read.
    accepted: CachePadded<AtomicU64>,
    /// Rejections by code and by stage.
    rejected: Mutex<GuardCounters>,
}

/// What every copy of one guard shares.
struct Board {
    stages: usize,
    state: Mutex<BoardState>,
}

struct BoardState {
    live: Vec<Arc<Slot>>,
    /// Counts of the copies already dropped.
    retired: GuardCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay meaningful if a holder panicked: each update is a few additions.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Totals of a guard and of every copy made from it (one per producer handle), readable
/// from any thread while the copies run.
///
/// ```
/// use sbpf_guard::{Engine, Guard, Stage};
/// use sbpf_ring::{op, Ring};
///
/// let ring = Ring::builder().sq_entries(8).arena_size(4096).build()?;
/// let table = ring.create_object(64)?;
/// let guard = Guard::new([Stage::read_only(Engine::Jit)]);
/// let stats = guard.stats();
/// let mut producer = ring.submitter_with(guard);
/// producer.submit(op::Load64::new(table, 0).build())?;
/// assert!(producer.submit(op::Store64::new(table, 0, 1).build()).is_err());
/// let totals = stats.totals();
/// assert_eq!((totals.accepted(), totals.rejected_total()), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct GuardStats(Arc<Board>);

impl std::fmt::Debug for GuardStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardStats")
            .field("copies", &self.copies())
            .field("totals", &self.totals())
            .finish()
    }
}

impl GuardStats {
    /// The counts of every copy, live or dropped, added up.
    pub fn totals(&self) -> GuardCounters {
        let state = lock(&self.0.state);
        let mut sum = state.retired.clone();
        for slot in &state.live {
            sum.add(&slot_counts(slot));
        }
        sum
    }

    /// How many copies are alive.
    pub fn copies(&self) -> usize {
        lock(&self.0.state).live.len()
    }
}

fn slot_counts(slot: &Slot) -> GuardCounters {
    let mut c = lock(&slot.rejected).clone();
    // Relaxed: a statistic read on its own; nothing is published through it.
    c.accepted = slot.accepted.load(Ordering::Relaxed);
    c
}

/// A copy's own slot on its guard's board.
pub(crate) struct StatsSlot {
    board: Arc<Board>,
    slot: Arc<Slot>,
}

impl StatsSlot {
    /// A board for a new guard of `stages` stages, and its first slot.
    pub(crate) fn new_board(stages: usize) -> StatsSlot {
        let board = Arc::new(Board {
            stages,
            state: Mutex::new(BoardState {
                live: Vec::new(),
                retired: GuardCounters::for_stages(stages),
            }),
        });
        Self::join(board)
    }

    fn join(board: Arc<Board>) -> StatsSlot {
        let slot = Arc::new(Slot {
            accepted: CachePadded::new(AtomicU64::new(0)),
            rejected: Mutex::new(GuardCounters::for_stages(board.stages)),
        });
        lock(&board.state).live.push(Arc::clone(&slot));
        StatsSlot { board, slot }
    }

    /// A slot for a new copy of the same guard.
    pub(crate) fn another(&self) -> StatsSlot {
        Self::join(Arc::clone(&self.board))
    }

    /// The caller's view of the board.
    pub(crate) fn stats(&self) -> GuardStats {
        GuardStats(Arc::clone(&self.board))
    }

    #[inline]
    pub(crate) fn accept(&self) {
        // Relaxed, and a load and store rather than an atomic add: this copy is the only
        // writer (`&mut Guard`), and readers only add the value up.
        let n = self.slot.accepted.load(Ordering::Relaxed);
        self.slot.accepted.store(n + 1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, stage: usize, code: u64) {
        lock(&self.slot.rejected).count_rejection(stage, code);
    }
}

impl Drop for StatsSlot {
    fn drop(&mut self) {
        let mut state = lock(&self.board.state);
        let counts = slot_counts(&self.slot);
        state.retired.add(&counts);
        state.live.retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}
