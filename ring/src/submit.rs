//! Producer handles: validate on a private copy, reserve, write, publish.

use std::{
    fmt,
    time::{Duration, Instant},
};

use crate::{
    protocol::SqView,
    validate::{Limits, Rejection, Validator},
    Handle, Sqe,
};

/// Why an entry was not submitted. Every variant hands the entry back: nothing is dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The submission ring is full; retry after completions are consumed. From
    /// [`Submitter::submit_timeout`]: it stayed full until the deadline.
    #[error("the submission ring is full")]
    Full(Sqe),
    /// The producer's validator refused the entry; no slot was taken.
    #[error("entry rejected by the {stage} validator: {rejection}")]
    Rejected {
        /// The entry.
        entry: Sqe,
        /// The validator's name.
        stage: String,
        /// Why.
        rejection: Rejection,
    },
    /// The ring is shut down; the entry was not and will not be performed.
    #[error("the ring is shut down")]
    Closed(Sqe),
}

impl SubmitError {
    /// The entry that was not submitted.
    pub fn into_entry(self) -> Sqe {
        match self {
            SubmitError::Full(e)
            | SubmitError::Closed(e)
            | SubmitError::Rejected { entry: e, .. } => e,
        }
    }
}

/// Why a batch was not (entirely) submitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The ring has no free slot; nothing was submitted.
    #[error("the submission ring is full")]
    Full,
    /// Entry `index` was refused by the validator; nothing was submitted.
    #[error("entry {index} rejected by the {stage} validator: {rejection}")]
    Rejected {
        /// Position of the refused entry in the batch.
        index: usize,
        /// The validator's name.
        stage: String,
        /// Why.
        rejection: Rejection,
    },
    /// The ring is shut down; nothing was submitted.
    #[error("the ring is shut down")]
    Closed,
}

impl BatchError {
    /// The error of a batch of one, with its entry handed back.
    fn for_entry(self, entry: Sqe) -> SubmitError {
        match self {
            BatchError::Full => SubmitError::Full(entry),
            BatchError::Closed => SubmitError::Closed(entry),
            BatchError::Rejected {
                stage, rejection, ..
            } => SubmitError::Rejected {
                entry,
                stage,
                rejection,
            },
        }
    }
}

/// Validation state every producer handle keeps: its own validator and its cached limits.
struct Policy {
    validator: Box<dyn Validator>,
    limits: Limits,
    limits_gen: u64,
}

impl Policy {
    fn new(handle: &Handle, validator: Box<dyn Validator>) -> Self {
        let inner = handle.inner();
        // Acquire pairs with the release increment in `Inner::update_limits`.
        let limits_gen = inner.limits_gen.load(std::sync::atomic::Ordering::Acquire);
        Policy {
            validator,
            limits: inner.limits(),
            limits_gen,
        }
    }

    #[inline]
    fn refresh(&mut self, handle: &Handle) {
        let inner = handle.inner();
        // Acquire pairs with the release increment in `Inner::update_limits`.
        let gen = inner.limits_gen.load(std::sync::atomic::Ordering::Acquire);
        if gen != self.limits_gen {
            self.limits = inner.limits();
            self.limits_gen = gen;
        }
    }

    #[inline]
    fn check(&mut self, sqe: &Sqe) -> Result<(), (String, Rejection)> {
        self.validator
            .validate(sqe, &self.limits)
            .map_err(|r| (self.validator.name().to_owned(), r))
    }
}

/// Publishes written entries `[pos, pos + n)` if the gate admits them (the ring is not
/// shut down before them), and kicks a sleeping consumer. Returns `false`, leaving them
/// unpublished, when the ring closed first.
#[inline]
fn publish(handle: &Handle, sq: &SqView<'_>, pos: u32, n: u32) -> bool {
    let inner = handle.inner();
    if !inner.gate.admit(pos) {
        return false;
    }
    if n == 1 {
        sq.publish(pos);
    } else {
        sq.publish_batch(pos, n);
    }
    if sq.after_publish() {
        inner.kick();
    }
    true
}

/// How a producer handle finds free slots.
trait Slots {
    /// Whether the ring has room, as cheaply as this handle can tell. A hint for `Shared`
    /// (other producers may take the room first); exact for `Single`.
    fn has_room(&mut self, sq: &SqView<'_>) -> bool;
    /// Reserves up to `want` consecutive positions: the first and the count.
    fn reserve(&mut self, sq: &SqView<'_>, want: u32) -> Option<(u32, u32)>;
}

/// A handle that shares the tail with other producers.
struct Shared;

impl Slots for Shared {
    #[inline]
    fn has_room(&mut self, sq: &SqView<'_>) -> bool {
        !sq.looks_full()
    }
    #[inline]
    fn reserve(&mut self, sq: &SqView<'_>, want: u32) -> Option<(u32, u32)> {
        sq.reserve(want)
    }
}

/// The only producer: its own tail, and a cached head that is loaded again only when it
/// shows too little room.
struct Single<'a> {
    tail: &'a mut u32,
    cached_head: &'a mut u32,
}

impl Slots for Single<'_> {
    #[inline]
    fn has_room(&mut self, sq: &SqView<'_>) -> bool {
        sq.room_single(*self.tail, self.cached_head) > 0
    }
    #[inline]
    fn reserve(&mut self, sq: &SqView<'_>, want: u32) -> Option<(u32, u32)> {
        let n = sq.reserve_single(*self.tail, self.cached_head, want);
        let pos = *self.tail;
        *self.tail = pos.wrapping_add(n);
        (n > 0).then_some((pos, n))
    }
}

/// The batch path of every producer handle: answer `Full` if there is no room, validate
/// all entries on their private copies, reserve (up to the ring size), write, and publish
/// if the gate admits.
#[inline]
fn submit_batch(
    handle: &Handle,
    policy: &mut Policy,
    entries: &[Sqe],
    mut slots: impl Slots,
) -> Result<usize, BatchError> {
    let inner = handle.inner();
    if inner.gate.is_closed() {
        return Err(BatchError::Closed);
    }
    if entries.is_empty() {
        return Ok(0);
    }
    let sq = inner.region.sq();
    // A full ring answers before the validator runs, so a producer that retries on `Full`
    // does not pay for the same validation again.
    if !slots.has_room(&sq) {
        return Err(BatchError::Full);
    }
    policy.refresh(handle);
    for (index, sqe) in entries.iter().enumerate() {
        if let Err((stage, rejection)) = policy.check(sqe) {
            return Err(BatchError::Rejected {
                index,
                stage,
                rejection,
            });
        }
    }
    let want = entries.len().min(sq.entries() as usize) as u32;
    let Some((pos, n)) = slots.reserve(&sq, want) else {
        return Err(BatchError::Full);
    };
    for (i, sqe) in entries[..n as usize].iter().enumerate() {
        // SAFETY: `[pos, pos + n)` was reserved just above by this handle and is not
        // published yet.
        unsafe { sq.write(pos.wrapping_add(i as u32), sqe) };
    }
    if publish(handle, &sq, pos, n) {
        Ok(n as usize)
    } else {
        Err(BatchError::Closed)
    }
}

/// Submits `sqe` with `submit`, retrying while it answers `Full` until `timeout` passes:
/// spins briefly, then yields, then sleeps in growing steps (to 1 ms), so a long wait costs
/// little CPU. A timeout too far to represent is no timeout.
fn submit_until(
    sqe: Sqe,
    timeout: Option<Duration>,
    mut submit: impl FnMut(&[Sqe]) -> Result<usize, BatchError>,
) -> Result<(), SubmitError> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    retry_full(deadline, || submit(core::slice::from_ref(&sqe)))
        .map(|_| ())
        .map_err(|e| e.for_entry(sqe))
}

fn retry_full(
    deadline: Option<Instant>,
    mut submit: impl FnMut() -> Result<usize, BatchError>,
) -> Result<usize, BatchError> {
    const SPINS: u32 = 64;
    const YIELDS: u32 = 16;
    let mut tries = 0u32;
    let mut nap = Duration::from_micros(10);
    loop {
        match submit() {
            Err(BatchError::Full) => {}
            done => return done,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(BatchError::Full);
        }
        tries = tries.saturating_add(1);
        if tries < SPINS {
            std::hint::spin_loop();
        } else if tries < SPINS + YIELDS {
            std::thread::yield_now();
        } else {
            let left = deadline.map_or(nap, |d| d.saturating_duration_since(Instant::now()));
            std::thread::sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }
}

/// A producer handle that shares the ring with any number of others: `Send + Clone`, lock
/// free. Each clone owns a copy of its validator.
pub struct Submitter {
    handle: Handle,
    policy: Policy,
}

impl fmt::Debug for Submitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitter")
            .field("validator", &self.policy.validator.name())
            .finish()
    }
}

impl Clone for Submitter {
    fn clone(&self) -> Self {
        Submitter {
            handle: self.handle.clone(),
            policy: Policy {
                validator: self.policy.validator.clone_box(),
                limits: self.policy.limits,
                limits_gen: self.policy.limits_gen,
            },
        }
    }
}

impl Submitter {
    pub(crate) fn new(handle: Handle, validator: Box<dyn Validator>) -> Self {
        let policy = Policy::new(&handle, validator);
        Submitter { handle, policy }
    }

    /// Validates `sqe` and publishes it. A full ring, a refusal or a shut-down ring hands
    /// the entry back.
    pub fn submit(&mut self, sqe: Sqe) -> Result<(), SubmitError> {
        self.submit_batch(core::slice::from_ref(&sqe))
            .map(|_| ())
            .map_err(|e| e.for_entry(sqe))
    }

    /// As [`Submitter::submit`], waiting for room while the ring is full, until `timeout`
    /// passes (`None`: until there is room or the ring closes). Waits without burning a
    /// core: a short spin, then sleeps of up to 1 ms.
    pub fn submit_timeout(
        &mut self,
        sqe: Sqe,
        timeout: Option<Duration>,
    ) -> Result<(), SubmitError> {
        submit_until(sqe, timeout, |e| self.submit_batch(e))
    }

    /// Validates every entry, then publishes as many as fit together (one reservation, one
    /// publication fence). Returns how many were published, from the front; refusal of any
    /// entry publishes none. A ring that looks full when the call begins gives
    /// [`BatchError::Full`] before any entry is validated; `Full` can also come after
    /// validation, when other producers take the room first. Entries handed back are
    /// validated again when submitted again.
    pub fn submit_batch(&mut self, entries: &[Sqe]) -> Result<usize, BatchError> {
        submit_batch(&self.handle, &mut self.policy, entries, Shared)
    }
}

/// The producer handle of a ring with no other producer: its tail is private, so it takes
/// positions without a CAS and reads the shared head only when its cached copy says full.
pub struct SingleSubmitter {
    handle: Handle,
    policy: Policy,
    tail: u32,
    cached_head: u32,
}

impl fmt::Debug for SingleSubmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleSubmitter")
            .field("tail", &self.tail)
            .finish()
    }
}

impl SingleSubmitter {
    pub(crate) fn new(handle: Handle, validator: Box<dyn Validator>) -> Self {
        let policy = Policy::new(&handle, validator);
        let (tail, cached_head) = handle.inner().region.sq().positions();
        SingleSubmitter {
            handle,
            policy,
            tail,
            cached_head,
        }
    }

    /// As [`Submitter::submit`].
    pub fn submit(&mut self, sqe: Sqe) -> Result<(), SubmitError> {
        self.submit_batch(core::slice::from_ref(&sqe))
            .map(|_| ())
            .map_err(|e| e.for_entry(sqe))
    }

    /// As [`Submitter::submit_timeout`].
    pub fn submit_timeout(
        &mut self,
        sqe: Sqe,
        timeout: Option<Duration>,
    ) -> Result<(), SubmitError> {
        submit_until(sqe, timeout, |e| self.submit_batch(e))
    }

    /// As [`Submitter::submit_batch`].
    pub fn submit_batch(&mut self, entries: &[Sqe]) -> Result<usize, BatchError> {
        let slots = Single {
            tail: &mut self.tail,
            cached_head: &mut self.cached_head,
        };
        submit_batch(&self.handle, &mut self.policy, entries, slots)
    }
}
