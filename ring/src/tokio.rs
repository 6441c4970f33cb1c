//! Futures for the dispatcher's operations (feature `tokio`).
//!
//! Each operation is a future that submits its entry on first poll and completes with its
//! own result. Completions are routed by whoever polls first (a task finding no leader
//! routes for everyone, as blocking callers do), and by a reactor task the dispatcher
//! spawns on the runtime of its first future: it sleeps until the ring's fd is readable
//! (the kernel module's device, readable when the completion ring is not empty; on the
//! local backend an eventfd the poller writes only when the reactor armed it before
//! sleeping), routes every completion and wakes each task through its waker.
//!
//! A future publishes its request when it is polled and finds a request slot and room in
//! the ring. Dropped before that (never polled, or still waiting for room), it performed
//! nothing; dropped after, it cancels nothing: the request runs to completion, and its slot
//! and buffer are returned then (as tokio-uring does). A future dropped by a timeout may
//! therefore have run or not, as with any cancelled I/O: give a mutation a timeout only where
//! either outcome is fine, or read the state back.
//!
//! On the kernel backend the module's poller (`sqpoll`, the default) must consume the
//! ring: a ring without one is consumed only by blocking waits.

use std::{
    future::Future,
    io,
    os::fd::OwnedFd,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Weak,
    },
    task::{Context, Poll},
};

use ::tokio::io::{unix::AsyncFd, Interest};

use crate::{
    buffers::ArenaBuf,
    complete::Completion,
    dispatch::{Dispatcher, State},
    op,
    ring::Backend,
    waiters::Waiter,
    Error, ObjectId, Sqe,
};

/// Rounds a reactor with nothing to route yields to the runtime before it arms the wake-up
/// and sleeps: tasks woken by the last drain usually submit again within them.
const REACTOR_YIELDS: u32 = 2;

/// Whether a dispatcher's reactor task runs.
#[derive(Debug, Default)]
pub(crate) struct ReactorSlot {
    running: AtomicBool,
    /// No reactor can run (no tokio runtime with IO where a future was polled, or no fd):
    /// futures then poll again at once instead of waiting for a wake-up.
    unavailable: AtomicBool,
}

impl ReactorSlot {
    /// The ring closed: wake a reactor asleep on the local eventfd (the module wakes its
    /// pollers itself).
    pub(crate) fn closed(&self, ring: &crate::Inner) {
        if let Backend::Local(local) = &ring.backend {
            local.cq_wakeup.signal();
        }
    }
}

/// Clears `running` when the reactor task ends, however it ends (its runtime may drop it).
struct Running(Weak<State>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(state) = self.0.upgrade() {
            // Release pairs with the acquire in `ensure_reactor`.
            state.reactor.running.store(false, Ordering::Release);
            // Its runtime may have shut down under tasks of another: they poll again and
            // start a reactor of their own.
            state.waiters.wake_tasks();
        }
    }
}

/// The fd a reactor sleeps on: a duplicate, so that it lives as long as the reactor.
fn wake_fd(state: &State) -> io::Result<(OwnedFd, bool)> {
    match &state.ring_inner().backend {
        Backend::Kernel(kernel) => Ok((kernel.file().try_clone()?.into(), false)),
        Backend::Local(local) => Ok((local.cq_wakeup.fd()?.try_clone()?, true)),
    }
}

/// Starts the dispatcher's reactor on the current runtime if none runs. Returns whether
/// one runs (or can): if not, futures must poll again by themselves.
fn ensure_reactor(state: &Arc<State>) -> bool {
    // Relaxed: a flag set once; a future that misses it only waits for one more wake-up.
    if state.reactor.unavailable.load(Ordering::Relaxed) {
        return false;
    }
    // Acquire pairs with the release store in `Running::drop`.
    if state.reactor.running.load(Ordering::Acquire)
        || state.reactor.running.swap(true, Ordering::AcqRel)
    {
        return true;
    }
    let unavailable = || {
        state.reactor.unavailable.store(true, Ordering::Relaxed);
        state.reactor.running.store(false, Ordering::Release);
        false
    };
    let Ok(runtime) = ::tokio::runtime::Handle::try_current() else {
        return unavailable();
    };
    let Ok((fd, local)) = wake_fd(state) else {
        return unavailable();
    };
    // Registered here, in the polling task's runtime context: a runtime built without
    // IO makes tokio panic, which must not leave the futures waiting for a reactor.
    let registered = std::panic::catch_unwind(|| {
        // SAFETY: the `AsyncFd` owns `fd` (an `OwnedFd`), which stays open and the same
        // descriptor until the `AsyncFd` drops.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
    });
    let Ok(Ok(fd)) = registered else {
        return unavailable();
    };
    let weak = Arc::downgrade(state);
    let running = Running(weak.clone());
    runtime.spawn(async move {
        let _running = running;
        reactor(weak, fd, local).await;
    });
    true
}

/// The reactor: route, sleep on the fd until readable, repeat; ends when the ring closes
/// or the dispatcher is gone.
async fn reactor(weak: Weak<State>, fd: AsyncFd<OwnedFd>, local: bool) {
    let mut idle = 0u32;
    loop {
        {
            let Some(state) = weak.upgrade() else { return };
            if state.waiters.closed_hint() {
                return;
            }
            let routed = match state.waiters.lead() {
                Some(_lead) => state.drain(),
                None => 0,
            };
            // A thread that leads routes and wakes the tasks; the reactor sleeps below.
            if routed > 0 {
                idle = 0;
                drop(state);
                ::tokio::task::yield_now().await;
                continue;
            }
            idle += 1;
            if idle < REACTOR_YIELDS {
                drop(state);
                ::tokio::task::yield_now().await;
                continue;
            }
            idle = 0;
            if local {
                state.local_wakeup().arm();
            }
            // The second look of the wake-up handshake (`wakeup.rs`; on the kernel the
            // device's poll checks the same ring under its wait queue).
            if state.cq_ready() {
                if local {
                    state.local_wakeup().disarm();
                }
                continue;
            }
        }
        let Ok(mut guard) = fd.readable().await else {
            return;
        };
        guard.clear_ready();
        if local {
            if let Some(state) = weak.upgrade() {
                state.local_wakeup().disarm();
            }
        }
    }
}

/// A request in flight for a task. Output: its completion (or why none), and the buffer
/// it carried.
struct InFlight {
    state: Arc<State>,
    sqe: Sqe,
    /// The slot, once submitted.
    index: Option<u32>,
    /// Whether the output was given (nothing to give up on drop).
    finished: bool,
    buf: Option<ArenaBuf>,
}

impl InFlight {
    fn new(d: &Dispatcher, sqe: Sqe, buf: Option<ArenaBuf>) -> InFlight {
        InFlight {
            state: Arc::clone(&d.state),
            sqe,
            index: None,
            finished: false,
            buf,
        }
    }

    fn ready(
        &mut self,
        r: Result<Completion, Error>,
    ) -> Poll<(Result<Completion, Error>, Option<ArenaBuf>)> {
        self.finished = true;
        Poll::Ready((r, self.buf.take()))
    }

    /// Routes completions if no one else does.
    fn help(&self) {
        if let Some(_lead) = self.state.waiters.lead() {
            self.state.drain();
        }
    }
}

impl Future for InFlight {
    type Output = (Result<Completion, Error>, Option<ArenaBuf>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready((Err(Error::Closed), this.buf.take()));
        }
        let index = match this.index {
            Some(i) => i,
            None => {
                if this.state.waiters.closed_hint() || this.state.ring_inner().gate.is_closed() {
                    return this.ready(Err(Error::Closed));
                }
                if this
                    .buf
                    .as_ref()
                    .is_some_and(|b| !b.is_of(this.state.ring_inner()))
                {
                    return this.ready(Err(crate::dispatch::FOREIGN_BUFFER));
                }
                let Some((index, user_data)) = this.state.waiters.alloc() else {
                    // Every slot in use: let the completions come, and poll again.
                    this.help();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                };
                let mut sqe = this.sqe;
                sqe.user_data = user_data;
                match this.state.with_submitter(|s| s.submit(sqe)) {
                    Ok(()) => {}
                    Err(crate::SubmitError::Full(_)) => {
                        this.state.waiters.cancel_unsubmitted(index);
                        this.help();
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Err(crate::SubmitError::Closed(_)) => {
                        this.state.waiters.cancel_unsubmitted(index);
                        return this.ready(Err(Error::Closed));
                    }
                    Err(crate::SubmitError::Rejected {
                        stage, rejection, ..
                    }) => {
                        this.state.waiters.cancel_unsubmitted(index);
                        return this.ready(Err(Error::Rejected { stage, rejection }));
                    }
                }
                this.index = Some(index);
                index
            }
        };
        this.help();
        if let Some(cqe) = this.state.waiters.take(index) {
            return this.ready(Ok(Completion(cqe)));
        }
        if !this
            .state
            .waiters
            .register(index, Waiter::Task(cx.waker().clone()))
        {
            let cqe = this.state.waiters.take(index).expect("completed");
            return this.ready(Ok(Completion(cqe)));
        }
        // After registering (and its fence): `close` either finds our waker or we see it.
        if this.state.waiters.is_closed() {
            this.help();
            if let Some(cqe) = this.state.waiters.take(index) {
                return this.ready(Ok(Completion(cqe)));
            }
            if this.state.waiters.has_leader() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // The closed ring's consumer has stopped: this request will never run.
            this.state.waiters.abandon(index, None);
            return this.ready(Err(Error::Closed));
        }
        if !ensure_reactor(&this.state) {
            // Nothing will wake this task: it routes for itself when polled again.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let (Some(index), false) = (self.index, self.finished) {
            // In flight: the request keeps its buffer until it completes.
            let orphan = self
                .buf
                .take()
                .map(|b| Box::new(b) as Box<dyn std::any::Any + Send>);
            self.state.waiters.abandon(index, orphan);
        }
    }
}

/// The futures of the dispatcher's operations. Each is `Send`; dropping one cancels
/// nothing in flight (the request completes, then its slot and buffer are returned).
impl Dispatcher {
    /// [`Dispatcher::call`] as a future.
    pub fn call_async(
        &self,
        op: impl Into<Sqe>,
    ) -> impl Future<Output = Result<Completion, Error>> + Send + 'static {
        let f = InFlight::new(self, op.into(), None);
        async move { f.await.0 }
    }

    /// [`Dispatcher::fetch_add`] as a future.
    pub fn fetch_add_async(
        &self,
        obj: ObjectId,
        offset: u64,
        val: u64,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'static {
        let f = self.call_async(op::FetchAdd64::new(obj, offset, val));
        async move { crate::dispatch::value(f.await?) }
    }

    /// [`Dispatcher::compare_exchange`] as a future.
    pub fn compare_exchange_async(
        &self,
        obj: ObjectId,
        offset: u64,
        current: u64,
        new: u64,
    ) -> impl Future<Output = Result<Result<u64, u64>, Error>> + Send + 'static {
        let f = self.call_async(op::Cas64::new(obj, offset, current, new));
        async move {
            let c = f.await?;
            let old = crate::dispatch::value(c)?;
            Ok(if c.result() == 1 { Ok(old) } else { Err(old) })
        }
    }

    /// [`Dispatcher::load`] as a future.
    pub fn load_async(
        &self,
        obj: ObjectId,
        offset: u64,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'static {
        let f = self.call_async(op::Load64::new(obj, offset));
        async move { crate::dispatch::value(f.await?) }
    }

    /// [`Dispatcher::store`] as a future.
    pub fn store_async(
        &self,
        obj: ObjectId,
        offset: u64,
        val: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let f = self.call_async(op::Store64::new(obj, offset, val));
        async move { crate::dispatch::value(f.await?).map(|_| ()) }
    }

    /// [`Dispatcher::read_into`] as a future: the buffer is the request's until it
    /// completes, and comes back with the result.
    pub fn read_into_async(
        &self,
        obj: ObjectId,
        offset: u64,
        buf: ArenaBuf,
    ) -> impl Future<Output = (Result<usize, Error>, ArenaBuf)> + Send + 'static {
        let sqe = op::Read::new(obj, offset, buf.offset(), buf.len() as u32).build();
        buffer_op(InFlight::new(self, sqe, Some(buf)))
    }

    /// [`Dispatcher::write_from`] as a future, as [`Dispatcher::read_into_async`].
    pub fn write_from_async(
        &self,
        obj: ObjectId,
        offset: u64,
        buf: ArenaBuf,
    ) -> impl Future<Output = (Result<usize, Error>, ArenaBuf)> + Send + 'static {
        let sqe = op::Write::new(obj, offset, buf.offset(), buf.len() as u32).build();
        buffer_op(InFlight::new(self, sqe, Some(buf)))
    }
}

async fn buffer_op(f: InFlight) -> (Result<usize, Error>, ArenaBuf) {
    let (r, buf) = f.await;
    let buf = buf.expect("a buffer operation carries its buffer");
    (r.and_then(crate::dispatch::bytes), buf)
}
