//! The ring: setup, backends, objects, and the handles it gives out.

use std::{
    fmt, io,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use crate::{
    abi::{self, Params, Stats},
    arena::{Arena, SharedMemory},
    complete::CompletionQueue,
    kernel::{self, Kernel},
    local::Local,
    protocol::Gate,
    region::{self, RingRegion},
    submit::{SingleSubmitter, Submitter},
    validate::{BoundsValidator, Limits, ObjectLimit, Validator},
    ObjectId, Sqe,
};

/// Errors of setup and control operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Setting the ring up failed at `step`.
    #[error("ring setup failed at {step}: {source}")]
    Setup {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The kernel backend was asked for but `/dev/sbpf_ring` does not exist.
    #[error("the kernel module is not loaded ({} does not exist)", kernel::DEVICE)]
    NoDevice,
    /// No object with this id is attached (or exists).
    #[error("{0} is not attached")]
    UnknownObject(ObjectId),
    /// The completion queue was already taken.
    #[error("the completion queue was already taken")]
    CompletionQueueTaken,
    /// A single-producer handle excludes every other producer handle, and the reverse.
    #[error("{0}")]
    ProducerMode(&'static str),
    /// The ring is shut down.
    #[error("the ring is shut down")]
    Closed,
    /// Waiting timed out.
    #[error("timed out waiting for completions")]
    TimedOut,
    /// The operation needs the other backend.
    #[error("not supported by the {0} backend")]
    Unsupported(BackendKind),
}

impl Error {
    pub(crate) fn setup(step: &'static str, source: io::Error) -> Self {
        Error::Setup { step, source }
    }
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// The kernel module if `/dev/sbpf_ring` exists, else local. `SBPF_RING_BACKEND=local`
    /// or `=kernel` in the environment overrides it.
    #[default]
    Auto,
    /// The in-process backend.
    Local,
    /// The kernel module; an error if it is not loaded.
    Kernel,
}

/// The backend a ring runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// In-process poller thread on user-space objects.
    Local,
    /// The kernel module.
    Kernel,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Local => "local",
            BackendKind::Kernel => "kernel",
        })
    }
}

/// Configures and creates a [`Ring`].
#[derive(Clone, Debug)]
pub struct RingBuilder {
    sq_entries: u32,
    cq_entries: Option<u32>,
    arena_size: u64,
    backend: BackendChoice,
    sqpoll: bool,
    idle: Duration,
    wait_spin: Duration,
}

impl Default for RingBuilder {
    fn default() -> Self {
        RingBuilder {
            sq_entries: 256,
            cq_entries: None,
            arena_size: 1 << 20,
            backend: BackendChoice::Auto,
            sqpoll: true,
            idle: Duration::from_millis(10),
            wait_spin: Duration::from_micros(100),
        }
    }
}

impl RingBuilder {
    /// Submission entries: a power of two, 1 to 32768. Default 256.
    pub fn sq_entries(mut self, n: u32) -> Self {
        self.sq_entries = n;
        self
    }

    /// Completion entries: a power of two, at least `sq_entries`, at most 65536. Default
    /// twice `sq_entries`.
    pub fn cq_entries(mut self, n: u32) -> Self {
        self.cq_entries = Some(n);
        self
    }

    /// Data arena bytes: a multiple of 4096, at most 1 GiB. Default 1 MiB.
    pub fn arena_size(mut self, bytes: u64) -> Self {
        self.arena_size = bytes;
        self
    }

    /// Which backend; default [`BackendChoice::Auto`].
    pub fn backend(mut self, backend: BackendChoice) -> Self {
        self.backend = backend;
        self
    }

    /// Kernel backend: run a poller thread (default), or consume inline when waiting.
    pub fn sqpoll(mut self, on: bool) -> Self {
        self.sqpoll = on;
        self
    }

    /// How long the poller spins without work before it sleeps. Default 10 ms.
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How long [`CompletionQueue::wait`] spins and yields before it blocks. Default
    /// 100 µs; zero blocks at once, which saves CPU and costs latency and throughput. A
    /// kernel ring without a poller never spins (only ENTER consumes its entries).
    pub fn wait_spin(mut self, spin: Duration) -> Self {
        self.wait_spin = spin;
        self
    }

    fn params(&self) -> Result<Params, Error> {
        let sq = self.sq_entries;
        if !sq.is_power_of_two() || sq > abi::MAX_SQ_ENTRIES {
            return Err(Error::InvalidArgument(
                "sq_entries must be a power of two, 1 to 32768",
            ));
        }
        let cq = self
            .cq_entries
            .unwrap_or(sq.saturating_mul(2).min(abi::MAX_CQ_ENTRIES));
        if !cq.is_power_of_two() || cq < sq || cq > abi::MAX_CQ_ENTRIES {
            return Err(Error::InvalidArgument(
                "cq_entries must be a power of two, sq_entries to 65536",
            ));
        }
        if self.arena_size % 4096 != 0 || self.arena_size > abi::MAX_ARENA_SIZE {
            return Err(Error::InvalidArgument(
                "arena_size must be a multiple of 4096, at most 1 GiB",
            ));
        }
        let idle_ms = self.idle.as_millis().min(10_000) as u32;
        let mut flags = abi::SETUP_CQSIZE;
        if self.sqpoll {
            flags |= abi::SETUP_SQPOLL;
        }
        Ok(Params {
            sq_entries: sq,
            cq_entries: cq,
            flags,
            sq_idle_ms: idle_ms.max(1),
            arena_size: self.arena_size,
            ..Params::default()
        })
    }

    fn resolve(&self) -> Result<BackendKind, Error> {
        let choice = match (self.backend, std::env::var("SBPF_RING_BACKEND").as_deref()) {
            (BackendChoice::Auto, Ok("local")) => BackendChoice::Local,
            (BackendChoice::Auto, Ok("kernel")) => BackendChoice::Kernel,
            (choice, _) => choice,
        };
        match choice {
            BackendChoice::Local => Ok(BackendKind::Local),
            BackendChoice::Kernel if kernel::available() => Ok(BackendKind::Kernel),
            BackendChoice::Kernel => Err(Error::NoDevice),
            BackendChoice::Auto if kernel::available() => Ok(BackendKind::Kernel),
            BackendChoice::Auto => Ok(BackendKind::Local),
        }
    }

    /// Creates the ring.
    pub fn build(self) -> Result<Ring, Error> {
        let mut params = self.params()?;
        let inner = match self.resolve()? {
            BackendKind::Local => {
                params =
                    region::local_params(params.sq_entries, params.cq_entries, params.arena_size);
                let bytes = Local::region_bytes(params.ring_size)?;
                let region = RingRegion::new(bytes, &params)?;
                region.init_header(&params)?;
                let arena = SharedMemory::new(Local::region_bytes(params.arena_size)?);
                let inner = Arc::new(Inner::new(
                    region,
                    arena,
                    &params,
                    Backend::Local(Local::new(self.idle)),
                    self.wait_spin,
                ));
                Local::start(&inner)?;
                inner
            }
            BackendKind::Kernel => {
                let (kernel, region, arena) = Kernel::open(&mut params)?;
                Arc::new(Inner::new(
                    region,
                    SharedMemory::new(arena),
                    &params,
                    Backend::Kernel(kernel),
                    self.wait_spin,
                ))
            }
        };
        Ok(Ring {
            handle: Handle::new(inner),
        })
    }
}

pub(crate) enum Backend {
    Local(Local),
    Kernel(Kernel),
}

/// Everything a ring's handles share.
pub(crate) struct Inner {
    pub(crate) region: RingRegion,
    pub(crate) arena: SharedMemory,
    pub(crate) backend: Backend,
    pub(crate) gate: Gate,
    /// Producer-side view of the limits; producers cache it and re-copy when `limits_gen`
    /// moves.
    limits: Mutex<Limits>,
    /// Bumped (release) after every change of `limits`.
    pub(crate) limits_gen: AtomicU64,
    /// 0: no producer handle yet; 1: shared producers; 2: one single producer.
    producer_mode: AtomicU32,
    cq_taken: AtomicBool,
    /// User-facing handles alive; the last one to go shuts the ring down.
    users: AtomicUsize,
    shut_down: Mutex<bool>,
    /// How long a completion waiter spins before it blocks.
    pub(crate) wait_spin: Duration,
}

impl Inner {
    fn new(
        region: RingRegion,
        arena: SharedMemory,
        params: &Params,
        backend: Backend,
        wait_spin: Duration,
    ) -> Self {
        Inner {
            region,
            arena,
            backend,
            wait_spin,
            gate: Gate::new(),
            limits: Mutex::new(Limits::new(params.arena_size)),
            limits_gen: AtomicU64::new(0),
            producer_mode: AtomicU32::new(0),
            cq_taken: AtomicBool::new(false),
            users: AtomicUsize::new(0),
            shut_down: Mutex::new(false),
        }
    }

    pub(crate) fn local(&self) -> &Local {
        match &self.backend {
            Backend::Local(local) => local,
            Backend::Kernel(_) => unreachable!("local state of a kernel ring"),
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Local(_) => BackendKind::Local,
            Backend::Kernel(_) => BackendKind::Kernel,
        }
    }

    /// A copy of the producer-side limits.
    pub(crate) fn limits(&self) -> Limits {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_limits(&self, f: impl FnOnce(&mut Limits)) {
        f(&mut self.limits.lock().unwrap_or_else(|e| e.into_inner()));
        // Release pairs with the producers' acquire load in `Submitter::refresh_limits`.
        self.limits_gen.fetch_add(1, Ordering::Release);
    }

    /// Wakes the consumer after a producer saw NEED_WAKEUP.
    #[cold]
    pub(crate) fn kick(&self) {
        match &self.backend {
            Backend::Local(local) => local.sq_event.notify(),
            Backend::Kernel(kernel) => kernel.wake(),
        }
    }

    fn shutdown(&self) -> ShutdownReport {
        let mut done = self.shut_down.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return ShutdownReport::default();
        }
        *done = true;
        let final_tail = self.gate.close(&self.region.sq());
        let returned = match &self.backend {
            Backend::Local(local) => local.stop(final_tail),
            Backend::Kernel(kernel) => {
                // The kernel keeps consuming until the file is closed; wait (bounded) for it
                // to reach the final tail so the completions of everything admitted arrive.
                let sq = self.region.sq();
                for _ in 0..1000 {
                    if sq.consumed() == final_tail {
                        break;
                    }
                    if !kernel.sqpoll() {
                        let _ = kernel.enter(sq.entries(), 0, 0, None);
                    } else {
                        kernel.wake();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Vec::new()
            }
        };
        ShutdownReport { returned }
    }
}

/// What [`Ring::shutdown`] leaves behind.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Entries that were published before shutdown but could not be performed because the
    /// completion ring was full; they were not performed and get no completion.
    pub returned: Vec<Sqe>,
}

/// A counted reference to the ring's shared state; the last handle to go shuts it down.
pub(crate) struct Handle(Arc<Inner>);

impl Handle {
    fn new(inner: Arc<Inner>) -> Self {
        inner.users.fetch_add(1, Ordering::Relaxed);
        Handle(inner)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        Handle::new(Arc::clone(&self.0))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // AcqRel: the last handle sees every other handle's work before shutting down.
        if self.0.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.shutdown();
        }
    }
}

/// A submission/completion ring pair with its arena, on the kernel module or in process.
///
/// Hands out producer handles ([`Ring::submitter`], cloneable, any number of threads) and
/// the one [`CompletionQueue`].
pub struct Ring {
    handle: Handle,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("backend", &self.backend())
            .field("sq_entries", &self.sq_entries())
            .field("cq_entries", &self.cq_entries())
            .field("arena", &self.handle.inner().arena.len())
            .finish()
    }
}

impl Ring {
    /// A builder with the defaults.
    pub fn builder() -> RingBuilder {
        RingBuilder::default()
    }

    /// A ring with `sq_entries` submission entries and the other defaults.
    pub fn new(sq_entries: u32) -> Result<Ring, Error> {
        Ring::builder().sq_entries(sq_entries).build()
    }

    fn inner(&self) -> &Inner {
        self.handle.inner()
    }

    /// The backend this ring runs on.
    pub fn backend(&self) -> BackendKind {
        self.inner().kind()
    }

    /// Submission ring size.
    pub fn sq_entries(&self) -> u32 {
        self.inner().region.sq().entries()
    }

    /// Completion ring size.
    pub fn cq_entries(&self) -> u32 {
        self.inner().region.cq().entries()
    }

    /// The data arena.
    pub fn arena(&self) -> Arena {
        Arena {
            handle: self.handle.clone(),
        }
    }

    /// Creates a zeroed object of `size` bytes (a multiple of 8) and attaches it.
    pub fn create_object(&self, size: u64) -> Result<ObjectId, Error> {
        let id = match &self.inner().backend {
            Backend::Local(local) => local.create_object(size)?,
            Backend::Kernel(kernel) => kernel.create_object(size)?,
        };
        self.inner().update_limits(|l| {
            l.push(ObjectLimit { id: id.0, size });
        });
        Ok(id)
    }

    /// Attaches an existing object (made by another ring, or another process on the kernel
    /// backend); returns its size.
    pub fn attach_object(&self, id: ObjectId) -> Result<u64, Error> {
        let size = match &self.inner().backend {
            Backend::Local(local) => local.attach_object(id)?,
            Backend::Kernel(kernel) => kernel.attach_object(id)?,
        };
        self.inner().update_limits(|l| {
            if l.object_size(id.0).is_none() {
                l.push(ObjectLimit { id: id.0, size });
            }
        });
        Ok(size)
    }

    /// Detaches an object. Entries already published may still complete against it.
    pub fn detach_object(&self, id: ObjectId) -> Result<(), Error> {
        match &self.inner().backend {
            Backend::Local(local) => local.detach_object(id)?,
            Backend::Kernel(kernel) => kernel.detach_object(id)?,
        }
        self.inner().update_limits(|l| l.remove(id.0));
        Ok(())
    }

    /// The producer-side limits validators see.
    pub fn limits(&self) -> Limits {
        self.inner().limits()
    }

    fn claim_producer_mode(&self, mode: u32) -> Result<(), Error> {
        // Relaxed: only this word's own value matters.
        match self.inner().producer_mode.compare_exchange(
            0,
            mode,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(()),
            Err(m) if m == mode && mode == 1 => Ok(()),
            Err(_) => Err(Error::ProducerMode(
                "a single-producer handle excludes every other producer handle",
            )),
        }
    }

    /// A producer handle with the native [`BoundsValidator`]. Clone it for more threads.
    ///
    /// # Panics
    ///
    /// If a [`SingleSubmitter`] exists; use [`Ring::try_submitter_with`] to get an error.
    pub fn submitter(&self) -> Submitter {
        self.try_submitter_with(BoundsValidator)
            .expect("a single-producer handle exists")
    }

    /// A producer handle whose entries pass `validator` (an eBPF guard, a chain, or your
    /// own) before they take a slot.
    pub fn submitter_with(&self, validator: impl Validator) -> Submitter {
        self.try_submitter_with(validator)
            .expect("a single-producer handle exists")
    }

    /// As [`Ring::submitter_with`], with an error instead of a panic.
    pub fn try_submitter_with(&self, validator: impl Validator) -> Result<Submitter, Error> {
        self.claim_producer_mode(1)?;
        Ok(Submitter::new(self.handle.clone(), Box::new(validator)))
    }

    /// The single-producer handle: no CAS on the tail, a cached head. Refused once any
    /// other producer handle exists, and the reverse.
    pub fn single_submitter(&self, validator: impl Validator) -> Result<SingleSubmitter, Error> {
        self.claim_producer_mode(2)?;
        Ok(SingleSubmitter::new(
            self.handle.clone(),
            Box::new(validator),
        ))
    }

    /// The completion queue; there is one per ring.
    pub fn completions(&self) -> Result<CompletionQueue, Error> {
        if self.inner().cq_taken.swap(true, Ordering::Relaxed) {
            return Err(Error::CompletionQueueTaken);
        }
        Ok(CompletionQueue::new(self.handle.clone()))
    }

    /// The consumer's counters.
    pub fn stats(&self) -> Stats {
        match &self.inner().backend {
            Backend::Kernel(kernel) => kernel
                .stats()
                .unwrap_or_else(|_| region::read_stats(self.inner().region.stats_words())),
            Backend::Local(_) => region::read_stats(self.inner().region.stats_words()),
        }
    }

    /// One request per system call (the kernel module's baseline path, same validation).
    pub fn sync_op(&self, sqe: &Sqe) -> Result<crate::Completion, Error> {
        match &self.inner().backend {
            Backend::Kernel(kernel) => Ok(crate::Completion(kernel.sync_op(sqe)?)),
            Backend::Local(_) => Err(Error::Unsupported(BackendKind::Local)),
        }
    }

    /// Picks the object that `pread`/`pwrite` on [`Ring::device`] address (kernel backend).
    pub fn select_object(&self, id: ObjectId) -> Result<(), Error> {
        match &self.inner().backend {
            Backend::Kernel(kernel) => kernel.select_object(id),
            Backend::Local(_) => Err(Error::Unsupported(BackendKind::Local)),
        }
    }

    /// The device file of a kernel ring, for `pread`/`pwrite` and `poll`.
    pub fn device(&self) -> Option<&std::fs::File> {
        match &self.inner().backend {
            Backend::Kernel(kernel) => Some(kernel.file()),
            Backend::Local(_) => None,
        }
    }

    /// Refuses new submissions, lets the consumer finish every entry published before
    /// (while the completion ring has room), and stops the local poller. Producers that
    /// publish concurrently either get their entry performed or get it back as
    /// [`SubmitError::Closed`](crate::SubmitError::Closed). Completions stay readable.
    pub fn shutdown(&self) -> ShutdownReport {
        self.inner().shutdown()
    }
}
