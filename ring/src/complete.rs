//! The completion queue: plain loads of what the kernel posted, and waiting without
//! burning a core.

use std::{fmt, io, time::Duration};

use crate::{
    abi::{self, Cqe},
    ring::{Backend, Error},
    Handle,
};

/// One completion. `Default` is an all-zero completion, for buffers that
/// [`CompletionQueue::fill`] writes into.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Completion(pub(crate) Cqe);

/// Why a request failed: a completion's negative errno, by what it means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpError {
    /// `-EINVAL`: the entry breaks a rule of the validation table (opcode or flags,
    /// reserved or unused fields, length, word alignment).
    Invalid,
    /// `-ENOENT`: the object is not attached to the ring; for `MapLookup` and `MapDelete`
    /// (and `MapUpdate` with `BPF_EXIST`), the key is not in the map.
    NoObject,
    /// `-EFAULT`: the offsets and length reach outside the object or the arena.
    Bounds,
    /// `-EPERM`: the object does not allow the operation.
    Permission,
    /// Any other errno (the positive value).
    Other(i32),
}

impl OpError {
    /// The error of a negative result.
    pub fn from_result(res: i32) -> Option<OpError> {
        (res < 0).then(|| match -res {
            libc::EINVAL => OpError::Invalid,
            libc::ENOENT => OpError::NoObject,
            libc::EFAULT => OpError::Bounds,
            libc::EPERM => OpError::Permission,
            errno => OpError::Other(errno),
        })
    }

    /// The positive errno.
    pub fn errno(self) -> i32 {
        match self {
            OpError::Invalid => libc::EINVAL,
            OpError::NoObject => libc::ENOENT,
            OpError::Bounds => libc::EFAULT,
            OpError::Permission => libc::EPERM,
            OpError::Other(errno) => errno,
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&io::Error::from_raw_os_error(self.errno()), f)
    }
}

impl std::error::Error for OpError {}

impl Completion {
    /// The submission's `user_data`.
    pub fn user_data(&self) -> u64 {
        self.0.user_data
    }

    /// Non-negative on success (bytes moved, or the CAS outcome), else a negative errno.
    pub fn result(&self) -> i32 {
        self.0.res
    }

    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.0.res >= 0
    }

    /// The error, if the request failed, as an [`io::Error`].
    pub fn error(&self) -> Option<io::Error> {
        (self.0.res < 0).then(|| io::Error::from_raw_os_error(-self.0.res))
    }

    /// The error, if the request failed, typed.
    pub fn fault(&self) -> Option<OpError> {
        OpError::from_result(self.0.res)
    }

    /// The returned word: LOAD64's value, FETCH_ADD64's and CAS64's old word.
    pub fn value(&self) -> u64 {
        self.0.value
    }

    /// The raw entry.
    pub fn raw(&self) -> Cqe {
        self.0
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("user_data", &self.0.user_data)
            .field("result", &self.0.res)
            .field("value", &self.0.value)
            .finish()
    }
}

/// The ring's one completion consumer.
pub struct CompletionQueue {
    handle: Handle,
    /// Next completion to read; the shared head is stored from it.
    head: u32,
}

impl fmt::Debug for CompletionQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionQueue")
            .field("head", &self.head)
            .field("ready", &self.len())
            .finish()
    }
}

impl CompletionQueue {
    pub(crate) fn new(handle: Handle) -> Self {
        let head = handle.inner().region.cq().consumer_head();
        CompletionQueue { handle, head }
    }

    /// Completions ready to read now.
    pub fn len(&self) -> usize {
        self.handle
            .inner()
            .region
            .cq()
            .available()
            .wrapping_sub(self.head) as usize
    }

    /// Whether no completion is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next completion, if one is ready. Hands its slot back at once, which costs a
    /// full fence (the full-CQ handshake); [`CompletionQueue::iter`] hands back a whole
    /// batch with one.
    pub fn pop(&mut self) -> Option<Completion> {
        let cq = self.handle.inner().region.cq();
        if cq.available() == self.head {
            return None;
        }
        // SAFETY: this is the ring's one completion consumer (`Ring::completions` gives it
        // out once), and `head` is before the tail just loaded and not released.
        let cqe = unsafe { cq.read(self.head) };
        self.head = self.head.wrapping_add(1);
        self.release();
        Some(Completion(cqe))
    }

    /// The completions ready now; the slots go back to the kernel when the iterator drops.
    pub fn iter(&mut self) -> Completions<'_> {
        let tail = self.handle.inner().region.cq().available();
        Completions { queue: self, tail }
    }

    /// Copies up to `out.len()` ready completions into `out`; returns how many.
    pub fn fill(&mut self, out: &mut [Completion]) -> usize {
        let mut n = 0;
        for (slot, c) in out.iter_mut().zip(self.iter()) {
            *slot = c;
            n += 1;
        }
        n
    }

    fn release(&mut self) {
        let inner = self.handle.inner();
        let cq = inner.region.cq();
        cq.release(self.head);
        // A kernel asleep because the CQ was full must see the room: the full-CQ handshake
        // (a fence, then NEED_WAKEUP), once per release, so per batch with `iter`.
        let sq = inner.region.sq();
        if cq.after_release(&sq, inner.cq_full_flag()) && inner.worth_kicking(&sq) {
            inner.kick();
        }
    }

    /// Waits until at least `min` completions are ready (at most the ring size) or
    /// `timeout` passes: spins for up to the ring's `wait_spin` (yielding now and then),
    /// then blocks (an event on the local backend, the ENTER ioctl on the kernel's). A
    /// kernel ring without a poller does not spin: only ENTER consumes its entries.
    /// Returns how many are ready.
    pub fn wait(&mut self, min: usize, timeout: Option<Duration>) -> Result<usize, Error> {
        let inner = self.handle.inner();
        let min = min.min(inner.region.cq().entries() as usize);
        // A timeout too far to represent is no timeout.
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        // Spin for up to `wait_spin` before blocking: a consumer that blocks makes the
        // poller pay a futex wake-up on every pass, which costs more than the passes
        // themselves. The clock is read every `CLOCK_EVERY` looks and the core is yielded
        // every `YIELD_EVERY` (some tens of microseconds), so a poller that shares this core
        // still gets to run, while one on its own core is not slowed by a system call per
        // look.
        const CLOCK_EVERY: u32 = 64;
        const YIELD_EVERY: u32 = 16 * CLOCK_EVERY;
        let spin = match &inner.backend {
            // With no poller, entries are consumed only by the ENTER below: nothing to wait
            // for by spinning.
            Backend::Kernel(kernel) if !kernel.sqpoll() => Duration::ZERO,
            _ => timeout.map_or(inner.wait_spin, |t| t.min(inner.wait_spin)),
        };
        if self.len() >= min {
            return Ok(self.len());
        }
        if !spin.is_zero() {
            let spin_until = std::time::Instant::now() + spin;
            let mut looks = 0u32;
            loop {
                if self.len() >= min {
                    return Ok(self.len());
                }
                looks = looks.wrapping_add(1);
                if looks % CLOCK_EVERY == 0 {
                    if std::time::Instant::now() >= spin_until {
                        break;
                    }
                    if looks % YIELD_EVERY == 0 {
                        std::thread::yield_now();
                    }
                }
                crate::sync::spin_loop();
            }
        }
        let sq = inner.region.sq();
        match &inner.backend {
            Backend::Local(local) => {
                // `Event::wait` may return on a notification for progress we had already
                // seen; wait again until there is enough, the poller is gone, or time is up.
                while self.len() < min && !local.finished() {
                    // The poller may sleep on a full CQ we have since drained (the handshake
                    // of `release`, again: it costs a fence only on this blocking path).
                    if inner.region.cq().after_release(&sq, inner.cq_full_flag())
                        && inner.worth_kicking(&sq)
                    {
                        inner.kick();
                    }
                    let left = match deadline {
                        Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                            Some(left) => Some(left),
                            None => break,
                        },
                        None => None,
                    };
                    local
                        .cq_event
                        .wait(|| self.len() >= min || local.finished(), left);
                }
            }
            Backend::Kernel(kernel) => loop {
                let mut flags = abi::ENTER_GETEVENTS;
                // A poller asleep with nothing to take needs no wake-up (and one asleep on a
                // full CQ is woken by GETEVENTS itself).
                if sq.needs_wakeup() && sq.pending() {
                    flags |= abi::ENTER_SQ_WAKEUP;
                }
                let to_submit = if kernel.sqpoll() { 0 } else { sq.entries() };
                // What is left of the caller's timeout after the spin (or an interruption).
                let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
                match kernel.enter(to_submit, min as u32, flags, left) {
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ETIME) => break,
                    // The ring is closed: shut down (by another thread, or by dropping the
                    // ring), its file's owner gone (EBADF) or its region unmapped (ENXIO).
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ESHUTDOWN | libc::EBADF | libc::ENXIO)
                        ) =>
                    {
                        let ready = self.len();
                        return if ready >= min {
                            Ok(ready)
                        } else {
                            Err(Error::Closed)
                        };
                    }
                    Err(e) => return Err(Error::Io(e)),
                }
            },
        }
        let ready = self.len();
        if ready >= min {
            Ok(ready)
        } else if inner.gate.is_closed() {
            Err(Error::Closed)
        } else {
            Err(Error::TimedOut)
        }
    }
}

/// Dropping the completion queue closes the ring: no one can read its completions again
/// (there is one queue per ring), so producers get
/// [`SubmitError::Closed`](crate::SubmitError::Closed) instead of filling it. Entries
/// already published are still performed, their completions discarded.
impl Drop for CompletionQueue {
    fn drop(&mut self) {
        self.handle.inner().drop_completions();
    }
}

/// The completions that were ready when [`CompletionQueue::iter`] was called.
pub struct Completions<'a> {
    queue: &'a mut CompletionQueue,
    tail: u32,
}

impl fmt::Debug for Completions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("remaining", &self.len())
            .finish()
    }
}

impl Iterator for Completions<'_> {
    type Item = Completion;

    #[inline]
    fn next(&mut self) -> Option<Completion> {
        if self.queue.head == self.tail {
            return None;
        }
        // SAFETY: the queue is the ring's one completion consumer, and `head` is before the
        // tail loaded by `iter` and not released.
        let cqe = unsafe { self.queue.handle.inner().region.cq().read(self.queue.head) };
        self.queue.head = self.queue.head.wrapping_add(1);
        Some(Completion(cqe))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.tail.wrapping_sub(self.queue.head) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Completions<'_> {}

impl Drop for Completions<'_> {
    fn drop(&mut self) {
        self.queue.release();
    }
}
