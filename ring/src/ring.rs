//! The ring: setup, backends, objects, and the handles it gives out.

use std::{
    fmt, io,
    os::fd::AsFd,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use crate::{
    abi::{self, Params, Stats},
    arena::{Arena, SharedMemory},
    bpfmap::BpfMapObject,
    complete::CompletionQueue,
    kernel::{self, Kernel},
    local::{IdlePolicy, Local},
    protocol::Gate,
    region::{self, RingRegion},
    submit::{SingleSubmitter, Submitter},
    validate::{BoundsValidator, Limits, ObjectLimit, Validator, MAX_LIMIT_OBJECTS},
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
    /// The completion queue was already taken: by [`Ring::completions`] or by the
    /// dispatcher ([`Ring::dispatcher`], [`Ring::call`]). The two modes exclude each other.
    #[error("the completion queue was already taken (raw completions and the dispatcher exclude each other)")]
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
    /// The ring already has this many objects attached, its limit.
    #[error("the ring already has {0} objects attached, its limit")]
    TooManyObjects(usize),
    /// The request completed with an error (a dispatcher call's typed helpers).
    #[error("the request failed: {0}")]
    Op(crate::OpError),
    /// The producer's validator refused a dispatcher call's entry.
    #[error("entry rejected by the {stage} validator: {rejection}")]
    Rejected {
        /// The validator's name.
        stage: String,
        /// Why.
        rejection: crate::Rejection,
    },
    /// A BPF map could not be attached or reached.
    #[error("BPF map: {what}: {source}")]
    Bpf {
        /// What was being done, or what is wrong with the fd.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The map's type or value layout cannot be an object.
    #[error("BPF map not supported: {0}")]
    UnsupportedMap(String),
    /// `SBPF_RING_BACKEND` names no backend.
    #[error("SBPF_RING_BACKEND={0:?} names no backend (use local or kernel)")]
    UnknownBackend(String),
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
    idle: IdlePolicy,
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
            idle: IdlePolicy::default(),
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

    /// The poller spins this long without work before it sleeps, always
    /// ([`IdlePolicy::Fixed`]). The default is [`IdlePolicy::Adaptive`]; see
    /// [`RingBuilder::idle_policy`].
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = IdlePolicy::Fixed(idle);
        self
    }

    /// How long the poller spins without work before it sleeps. Default
    /// [`IdlePolicy::Adaptive`] from 20 µs to 200 µs: requests that come less than 200 µs
    /// apart find the poller awake, a light load costs a few percent of a core
    /// (`BENCHMARKS.md`). The kernel module's poller takes the longest window, in whole
    /// milliseconds (at least one), as its idle time.
    pub fn idle_policy(mut self, policy: IdlePolicy) -> Self {
        self.idle = policy;
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
        let longest = match self.idle {
            IdlePolicy::Fixed(d) => d,
            IdlePolicy::Adaptive { min, max } => {
                if min > max {
                    return Err(Error::InvalidArgument(
                        "an adaptive idle window needs min <= max",
                    ));
                }
                max
            }
        };
        let idle_ms = longest.as_millis().min(10_000) as u32;
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
        let choice = match (self.backend, std::env::var_os("SBPF_RING_BACKEND")) {
            (BackendChoice::Auto, Some(v)) => match v.to_str() {
                Some("local") => BackendChoice::Local,
                Some("kernel") => BackendChoice::Kernel,
                Some("") => BackendChoice::Auto,
                _ => return Err(Error::UnknownBackend(v.to_string_lossy().into_owned())),
            },
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
            handle: Handle(inner),
            dispatch: Default::default(),
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
    /// Set when the `CompletionQueue` is dropped: no one will read completions again.
    cq_dropped: AtomicBool,
    /// Serializes object attach and detach, so a count checked is the count attached.
    objects_lock: Mutex<()>,
    /// The BPF maps attached, by object id.
    maps: Mutex<Vec<BpfMapObject>>,
    shut_down: Mutex<bool>,
    /// How long a completion waiter spins before it blocks.
    pub(crate) wait_spin: Duration,
    /// The dispatcher, told when the ring closes.
    pub(crate) dispatch: crate::dispatch::CloseHook,
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
            cq_dropped: AtomicBool::new(false),
            dispatch: Default::default(),
            objects_lock: Mutex::new(()),
            maps: Mutex::new(Vec::new()),
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

    /// Adds an object the backend has attached to the producers' view; an object the
    /// view has no room for is detached again, so none is attached but unusable.
    fn add_limit(&self, object: ObjectLimit) -> Result<(), Error> {
        let mut added = false;
        self.update_limits(|l| added = l.push(object));
        if added {
            return Ok(());
        }
        let id = ObjectId(object.id);
        let _ = match &self.backend {
            Backend::Local(local) => local.detach_object(id),
            Backend::Kernel(kernel) => kernel.detach_object(id),
        };
        Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS))
    }

    fn update_limits(&self, f: impl FnOnce(&mut Limits)) {
        f(&mut self.limits.lock().unwrap_or_else(|e| e.into_inner()));
        // Release pairs with the producers' acquire load in `Submitter::refresh_limits`.
        self.limits_gen.fetch_add(1, Ordering::Release);
    }

    /// The SQ flag that says the consumer sleeps on a full CQ: the local poller says so
    /// ([`abi::SQ_CQ_FULL`]); the module does not, so any sleep counts (and its `poll()`
    /// and ENTER wake such a poller too).
    #[inline]
    pub(crate) fn cq_full_flag(&self) -> u32 {
        match self.backend {
            Backend::Local(_) => abi::SQ_CQ_FULL,
            Backend::Kernel(_) => abi::SQ_NEED_WAKEUP,
        }
    }

    /// Whether a completion consumer that saw [`Inner::cq_full_flag`] should kick. The
    /// local poller sets its flag only with entries waiting, so always; the module's flag
    /// is set for any sleep, so only when entries wait (a hint: the module's `poll()` and
    /// ENTER with GETEVENTS wake a poller asleep on a full CQ anyway).
    #[inline]
    pub(crate) fn worth_kicking(&self, sq: &crate::protocol::SqView<'_>) -> bool {
        match self.backend {
            Backend::Local(_) => true,
            Backend::Kernel(_) => sq.pending(),
        }
    }

    /// Wakes the consumer after a producer saw NEED_WAKEUP.
    #[cold]
    pub(crate) fn kick(&self) {
        match &self.backend {
            Backend::Local(local) => local.sq_event.notify(),
            Backend::Kernel(kernel) => kernel.wake(),
        }
    }

    /// Whether the completion queue was dropped, so that completions are never read.
    pub(crate) fn cq_dropped(&self) -> bool {
        // Acquire pairs with the release store in `CompletionQueue::drop`.
        self.cq_dropped.load(Ordering::Acquire)
    }

    /// Called as the completion queue drops: completions will never be read again, so
    /// the ring closes (as a pipe does for its writers when the reader goes).
    pub(crate) fn drop_completions(&self) {
        // Release pairs with the acquire load in `cq_dropped`.
        self.cq_dropped.store(true, Ordering::Release);
        self.shutdown();
    }

    pub(crate) fn shutdown(&self) -> ShutdownReport {
        let mut done = self.shut_down.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return ShutdownReport::default();
        }
        *done = true;
        let final_tail = self.gate.close(&self.region.sq());
        let returned = match &self.backend {
            Backend::Local(local) => local.stop(final_tail),
            Backend::Kernel(kernel) => self.stop_kernel(kernel, final_tail),
        };
        drop(done);
        // After the backend stopped: every completion that will ever come is posted.
        self.dispatch.closed();
        ShutdownReport { returned }
    }

    /// Lets the kernel consume up to `final_tail` while its completions fit (bounded),
    /// then stops it for good (the SHUTDOWN ioctl, which also wakes every thread waiting in
    /// the kernel) and takes back what it did not consume.
    fn stop_kernel(&self, kernel: &Kernel, final_tail: u32) -> Vec<Sqe> {
        let sq = self.region.sq();
        let cq = self.region.cq();
        let start = std::time::Instant::now();
        let mut full_since = None;
        while sq.consumed() != final_tail && start.elapsed() < Duration::from_secs(1) {
            if self.cq_dropped() {
                // No one reads completions any more: discard them so that every admitted
                // entry is still performed.
                cq.release(cq.available());
            } else if cq.room(cq.available()) == 0 {
                // A consumer that makes no room for 10 ms gets the rest handed back.
                let since = *full_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_millis(10) {
                    break;
                }
            } else {
                full_since = None;
            }
            if !kernel.sqpoll() {
                let _ = kernel.enter(sq.entries(), 0, 0, None);
            } else {
                kernel.wake();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if kernel.shutdown().is_err() {
            // The module stops when the file is closed; nothing can be handed back safely
            // while it may still consume.
            return Vec::new();
        }
        // The kernel consumes nothing any more: what it left between its head and the final
        // tail was admitted and never performed.
        let mut returned = Vec::new();
        let mut pos = sq.consumed();
        while pos != final_tail && final_tail.wrapping_sub(pos) <= sq.entries() {
            // SAFETY: the kernel has stopped consuming (SHUTDOWN), so this thread, under the
            // shutdown lock, is the ring's only consumer, and `pos` has not been released.
            match unsafe { sq.peek(pos) } {
                Some(sqe) => {
                    returned.push(sqe);
                    pos = pos.wrapping_add(1);
                }
                // A producer admitted before the gate closed publishes next, without
                // blocking in between: wait for it, as the local poller does.
                None => std::thread::yield_now(),
            }
        }
        sq.release(pos);
        returned
    }
}

/// What [`Ring::shutdown`] leaves behind.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Entries that were published before shutdown but could not be performed because the
    /// completion ring was full; they were not performed and get no completion.
    pub returned: Vec<Sqe>,
}

/// A reference to the ring's shared state, held by every handle the ring gives out. The
/// memory lives until the last one goes; the ring closes when the [`Ring`] or its
/// [`CompletionQueue`] drops.
#[derive(Clone)]
pub(crate) struct Handle(Arc<Inner>);

impl Handle {
    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }
}

/// A submission/completion ring pair with its arena, on the kernel module or in process.
///
/// Hands out producer handles ([`Ring::submitter`], cloneable, any number of threads) and
/// the one [`CompletionQueue`].
pub struct Ring {
    handle: Handle,
    /// The dispatcher and buffer pool, made on first use ([`Ring::dispatcher`]).
    pub(crate) dispatch: crate::dispatch::RingDispatch,
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

    pub(crate) fn handle_ref(&self) -> &Handle {
        &self.handle
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

    /// Creates a zeroed object of `size` bytes (a multiple of 8) and attaches it. A ring
    /// holds at most [`MAX_LIMIT_OBJECTS`] objects ([`Error::TooManyObjects`]); each is
    /// usable through every validator and guard.
    pub fn create_object(&self, size: u64) -> Result<ObjectId, Error> {
        let inner = self.inner();
        // One object at a time, so the count checked is the count attached.
        let _serial = inner.objects_lock.lock().unwrap_or_else(|e| e.into_inner());
        if inner.limits().objects().len() >= MAX_LIMIT_OBJECTS {
            return Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS));
        }
        let id = match &inner.backend {
            Backend::Local(local) => local.create_object(size)?,
            Backend::Kernel(kernel) => kernel.create_object(size)?,
        };
        inner.add_limit(ObjectLimit::new(id.0, size))?;
        Ok(id)
    }

    /// Attaches an existing object (made by another ring, or another process on the kernel
    /// backend); returns its size. Attaching an attached object changes nothing.
    pub fn attach_object(&self, id: ObjectId) -> Result<u64, Error> {
        let inner = self.inner();
        let _serial = inner.objects_lock.lock().unwrap_or_else(|e| e.into_inner());
        let limits = inner.limits();
        if let Some(o) = limits.object(id.0) {
            return Ok(o.size);
        }
        if limits.objects().len() >= MAX_LIMIT_OBJECTS {
            return Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS));
        }
        let size = match &inner.backend {
            Backend::Local(local) => local.attach_object(id)?,
            Backend::Kernel(kernel) => kernel.attach_object(id)?,
        };
        inner.add_limit(ObjectLimit::new(id.0, size))?;
        Ok(size)
    }

    /// Detaches an object. Entries already published may still complete against it.
    pub fn detach_object(&self, id: ObjectId) -> Result<(), Error> {
        let _serial = self
            .inner()
            .objects_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match &self.inner().backend {
            Backend::Local(local) => local.detach_object(id)?,
            Backend::Kernel(kernel) => kernel.detach_object(id)?,
        }
        self.inner().update_limits(|l| l.remove(id.0));
        self.inner()
            .maps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|m| m.id != id);
        Ok(())
    }

    /// Attaches a BPF map by its fd, as an object: array maps (with or without
    /// `BPF_F_MMAPABLE`), hash and LRU hash maps. On arrays every opcode works on the
    /// values (laid out as [`BpfMapObject::size`] says), except that the local backend
    /// serves the atomic word operations (`FETCH_ADD64`, `CAS64`) only on the
    /// `BPF_F_MMAPABLE` arrays it maps: through `bpf()` they complete with `-EOPNOTSUPP`,
    /// as no system call performs them atomically. The MAP_* opcodes
    /// ([`crate::op::MapUpdate`], [`crate::op::MapLookup`], [`crate::op::MapDelete`]) work on
    /// every map by key. BPF's rules hold: a read-only fd gives no write right (writes
    /// complete with `-EPERM`, and the producer-side validator refuses them early), a
    /// frozen map refuses writes, per-CPU maps and other types are refused here
    /// ([`Error::UnsupportedMap`]).
    ///
    /// The ring holds its own reference on the map (the kernel module a reference on the
    /// map, the local backend a duplicate fd) until [`Ring::detach_object`] or the ring is
    /// gone, so the caller may close `fd`. [`Ring::bpf_map`] tells how operations reach it.
    pub fn attach_bpf_map(&self, fd: impl AsFd) -> Result<ObjectId, Error> {
        let inner = self.inner();
        let _serial = inner.objects_lock.lock().unwrap_or_else(|e| e.into_inner());
        if inner.limits().objects().len() >= MAX_LIMIT_OBJECTS {
            return Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS));
        }
        let map = match &inner.backend {
            Backend::Local(local) => local.attach_bpf_map(fd.as_fd())?,
            Backend::Kernel(kernel) => kernel.attach_bpf_map(fd.as_fd())?,
        };
        inner.add_limit(ObjectLimit {
            id: map.id.0,
            rights: map.rights,
            size: map.size,
        })?;
        inner
            .maps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(map);
        Ok(map.id)
    }

    /// The attached BPF map with this object id, if it is one.
    pub fn bpf_map(&self, id: ObjectId) -> Option<BpfMapObject> {
        self.inner()
            .maps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.id == id)
            .copied()
    }

    /// The producer-side limits validators see.
    pub fn limits(&self) -> Limits {
        self.inner().limits()
    }

    /// Why the ring has no dispatcher: it closed (its completion queue was dropped, say), a
    /// single-producer handle excludes the dispatcher's producers, or the completion queue
    /// is in raw use.
    pub(crate) fn no_dispatcher(&self) -> Error {
        if self.inner().gate.is_closed() {
            Error::Closed
        // Relaxed: only this word's own value matters (as where it is claimed).
        } else if self.inner().producer_mode.load(Ordering::Relaxed) == 2 {
            Error::ProducerMode("a single-producer handle excludes the dispatcher's producers")
        } else {
            Error::CompletionQueueTaken
        }
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

    /// Closes the ring: refuses new submissions, lets the consumer finish every entry
    /// published before (while the completion ring has room), stops it (the local poller
    /// thread, or the module's poller and ENTER path), and wakes every thread blocked in
    /// [`CompletionQueue::wait`], which returns [`Error::Closed`] unless what it waited for
    /// is there. Producers that publish concurrently either get their entry performed or
    /// get it back as [`SubmitError::Closed`](crate::SubmitError::Closed); entries
    /// published but never performed (the completion ring stayed full) are in the report.
    /// Completions posted stay readable. Idempotent: a second call reports nothing.
    pub fn shutdown(&self) -> ShutdownReport {
        self.inner().shutdown()
    }
}

/// Dropping the ring closes it as [`Ring::shutdown`] does, discarding the report: every
/// handle it gave out sees the ring closed at once, and the memory lives until the last
/// of them goes.
impl Drop for Ring {
    fn drop(&mut self) {
        self.inner().shutdown();
    }
}
