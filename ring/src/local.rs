//! The local backend: the ABI in process memory, with a poller thread that plays the
//! kernel's part on user-space objects, with exactly the kernel's validation
//! ([`check_entry`]).

use std::{
    collections::HashMap,
    io,
    os::fd::BorrowedFd,
    sync::{Arc, Mutex, OnceLock, Weak},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    abi::{opcode, Cqe, Sqe, Stats},
    arena::copy,
    bpfmap::{BpfMapObject, LocalMap},
    protocol::Event,
    region::{Bytes, STATS_WORDS},
    sync::{AtomicBool, AtomicU64, Ordering},
    validate::{check_entry, needed_rights, rights, Fault, MAX_LIMIT_OBJECTS},
    Error, Inner, ObjectId,
};

/// Most entries the poller takes in one pass before it publishes. Small enough that a
/// producer waiting for completions gets them while the poller works through a deep SQ
/// (256 made the two threads take turns: 23 against 20 ns per NOP at batch 32).
const MAX_PASS: u32 = 64;

/// Spins of an idle poller between looks at the clock.
const IDLE_SPINS: u32 = 64;

/// How long the poller spins without work before it sleeps (with NEED_WAKEUP set, so that
/// the next producer pays one wake-up).
///
/// A spinning poller answers at once but burns its core; a sleeping one costs the next
/// request a wake-up (some microseconds). [`IdlePolicy::Adaptive`], the default, spins for
/// a window that follows the load, as the kernel's halt-polling does: a sleep that work
/// ended within `max` doubles the window (a longer spin would have caught that work
/// without the wake-up), a longer sleep halves it. Under full load the poller never idles
/// and the policy costs nothing; under a light load it spins about `min` per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Always spin this long, then sleep.
    Fixed(Duration),
    /// Spin for a window between `min` and `max` that grows and shrinks with the load.
    Adaptive {
        /// The shortest window, where it starts.
        min: Duration,
        /// The longest window.
        max: Duration,
    },
}

impl Default for IdlePolicy {
    /// Adaptive from 20 µs to 200 µs (the kernel's halt-polling spins up to 200 µs too):
    /// requests less than 200 µs apart find the poller awake.
    fn default() -> Self {
        IdlePolicy::Adaptive {
            min: Duration::from_micros(20),
            max: Duration::from_micros(200),
        }
    }
}

impl IdlePolicy {
    /// The first spin window.
    fn start(self) -> Duration {
        match self {
            IdlePolicy::Fixed(d) => d,
            IdlePolicy::Adaptive { min, .. } => min,
        }
    }

    /// The window after a sleep that work ended after `slept`.
    fn next(self, window: Duration, slept: Duration) -> Duration {
        match self {
            IdlePolicy::Fixed(d) => d,
            // Grows from at least 1 µs, so a window of zero can grow too.
            IdlePolicy::Adaptive { min, max } if slept <= max => window
                .max(Duration::from_micros(1))
                .saturating_mul(2)
                .clamp(min, max.max(min)),
            IdlePolicy::Adaptive { min, max } => (window / 2).clamp(min, max.max(min)),
        }
    }
}

/// A user-space object: 8-byte words, so word operations are real atomics; or an
/// attached BPF map ([`LocalMap`]), whose words are the mapped values of an mmapable array.
#[derive(Debug)]
pub(crate) struct LocalObject {
    pub(crate) id: u32,
    words: Box<[AtomicU64]>,
    map: Option<LocalMap>,
    /// Rings that hold it attached. At zero it is gone for `attach_object`, as the module
    /// erases an object its last holder detaches, even while a poller's copy of a ring's
    /// table still points at it. Relaxed: a count; the memory is reached through the `Arc`.
    holders: AtomicU64,
}

impl LocalObject {
    fn size(&self) -> u64 {
        match &self.map {
            Some(m) => m.object.size,
            None => self.words.len() as u64 * 8,
        }
    }

    fn rights(&self) -> u32 {
        self.map.as_ref().map_or(rights::ALL, |m| m.object.rights)
    }

    /// The first byte of the words: 8-aligned, `size()` bytes, accessed only atomically
    /// (a map's mapping is page-aligned, its values a whole number of words apart).
    fn base(&self) -> *mut u8 {
        match self.map.as_ref().and_then(LocalMap::values) {
            Some(values) => values,
            None => self.words.as_ptr().cast_mut().cast::<u8>(),
        }
    }
}

/// Objects by id, shared by every local ring of the process (as kernel objects are shared
/// by every process). An object lives while a ring holds it attached.
fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new((0, HashMap::new())))
}

/// The last id given out, and the live objects by id.
type Registry = (u32, HashMap<u32, Weak<LocalObject>>);

/// State of a local ring beside the shared region.
#[derive(Debug)]
pub(crate) struct Local {
    /// Attached objects, sorted by id; the poller keeps a private copy, refreshed when
    /// `objects_gen` moves.
    objects: Mutex<Vec<Arc<LocalObject>>>,
    /// Bumped (release) after every change of `objects`.
    objects_gen: AtomicU64,
    /// Where the poller sleeps when idle; producers notify it when they see NEED_WAKEUP.
    pub(crate) sq_event: Event,
    /// Where completion waiters sleep; the poller notifies after every publication.
    pub(crate) cq_event: Event,
    /// A reactor's eventfd, written after a publication only when armed.
    pub(crate) cq_wakeup: crate::wakeup::CqWakeup,
    /// `u64::MAX`, or the final SQ tail once shutdown has closed the gate.
    stop_at: AtomicU64,
    /// Set by the poller as it exits: no completion will come any more.
    finished: AtomicBool,
    idle: IdlePolicy,
    poller: Mutex<Option<JoinHandle<Vec<Sqe>>>>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // This ring holds its objects no more.
        for o in self
            .objects
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            o.holders.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Local {
    pub(crate) fn new(idle: IdlePolicy) -> Self {
        Local {
            objects: Mutex::new(Vec::new()),
            objects_gen: AtomicU64::new(0),
            sq_event: Event::new(),
            cq_event: Event::new(),
            cq_wakeup: Default::default(),
            stop_at: AtomicU64::new(u64::MAX),
            finished: AtomicBool::new(false),
            idle,
            poller: Mutex::new(None),
        }
    }

    pub(crate) fn region_bytes(len: u64) -> io::Result<Bytes> {
        Bytes::anonymous(len as usize)
    }

    /// Starts the poller. It holds the ring alive until shutdown.
    pub(crate) fn start(inner: &Arc<Inner>) -> io::Result<()> {
        let worker = Arc::clone(inner);
        let handle = std::thread::Builder::new()
            .name("sbpf-ring-poller".into())
            .spawn(move || Poller::new(&worker).run())?;
        *inner
            .local()
            .poller
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    /// Stops the poller at `final_tail` and returns the entries it could not complete.
    pub(crate) fn stop(&self, final_tail: u32) -> Vec<Sqe> {
        // Release pairs with the poller's acquire load in `run`.
        self.stop_at.store(u64::from(final_tail), Ordering::Release);
        let handle = self.poller.lock().unwrap_or_else(|e| e.into_inner()).take();
        let returned = match handle {
            Some(h) => {
                self.sq_event.notify();
                h.join().unwrap_or_default()
            }
            None => Vec::new(),
        };
        // The poller set `finished` as it left; this covers a poller that never started.
        self.finish();
        returned
    }

    /// Marks the poller gone and wakes every completion waiter to see it.
    fn finish(&self) {
        // Release pairs with the acquire load in `finished`: the completions posted before
        // are visible to a waiter that sees the flag.
        self.finished.store(true, Ordering::Release);
        self.cq_event.notify();
        self.cq_wakeup.signal();
    }

    /// Whether the poller has exited: no completion will be posted any more.
    pub(crate) fn finished(&self) -> bool {
        // Acquire pairs with the release store in `finish`.
        self.finished.load(Ordering::Acquire)
    }

    pub(crate) fn create_object(&self, size: u64) -> Result<ObjectId, Error> {
        // Refused before the object exists, as the module refuses it.
        if self.objects.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_LIMIT_OBJECTS {
            return Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS));
        }
        if size == 0 || size % 8 != 0 || size > crate::abi::MAX_OBJECT_SIZE {
            return Err(Error::InvalidArgument(
                "object size must be a non-zero multiple of 8, at most 1 GiB",
            ));
        }
        let object = {
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            reg.0 += 1;
            let id = reg.0;
            let words = (0..size / 8).map(|_| AtomicU64::new(0)).collect();
            let object = Arc::new(LocalObject {
                id,
                words,
                map: None,
                holders: AtomicU64::new(0),
            });
            reg.1.insert(id, Arc::downgrade(&object));
            object
        };
        let id = ObjectId(object.id);
        self.attach(object, true)?;
        Ok(id)
    }

    pub(crate) fn attach_object(&self, id: ObjectId) -> Result<u64, Error> {
        let object = {
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            reg.1.retain(|_, w| w.strong_count() > 0);
            reg.1.get(&id.0).and_then(Weak::upgrade)
        };
        let object = object.ok_or(Error::UnknownObject(id))?;
        let size = object.size();
        self.attach(object, false)?;
        Ok(size)
    }

    /// Attaches the BPF map behind `fd` under a new id (not shared with other rings: the
    /// fd is this process's permission).
    pub(crate) fn attach_bpf_map(&self, fd: BorrowedFd<'_>) -> Result<BpfMapObject, Error> {
        if self.objects.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_LIMIT_OBJECTS {
            return Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS));
        }
        let id = {
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            reg.0 += 1;
            reg.0
        };
        let map = LocalMap::attach(fd, id)?;
        let info = map.object;
        self.attach(
            Arc::new(LocalObject {
                id,
                words: Box::new([]),
                map: Some(map),
                holders: AtomicU64::new(0),
            }),
            true,
        )?;
        Ok(info)
    }

    /// Attaches `object`: a new one (`fresh`), or one that another ring still holds.
    fn attach(&self, object: Arc<LocalObject>, fresh: bool) -> Result<(), Error> {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        match objects.binary_search_by_key(&object.id, |o| o.id) {
            Ok(_) => return Ok(()),
            Err(_) if objects.len() >= MAX_LIMIT_OBJECTS => {
                return Err(Error::TooManyObjects(MAX_LIMIT_OBJECTS))
            }
            Err(i) => {
                let held = if fresh {
                    object.holders.fetch_add(1, Ordering::Relaxed);
                    true
                } else {
                    object
                        .holders
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                            (h > 0).then_some(h + 1)
                        })
                        .is_ok()
                };
                if !held {
                    return Err(Error::UnknownObject(ObjectId(object.id)));
                }
                objects.insert(i, object);
            }
        }
        // Release pairs with the poller's acquire load in `refresh_objects`.
        self.objects_gen.fetch_add(1, Ordering::Release);
        Ok(())
    }

    pub(crate) fn detach_object(&self, id: ObjectId) -> Result<(), Error> {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(i) = objects.binary_search_by_key(&id.0, |o| o.id) else {
            return Err(Error::UnknownObject(id));
        };
        objects.remove(i).holders.fetch_sub(1, Ordering::Relaxed);
        // Release pairs with the poller's acquire load in `refresh_objects`.
        self.objects_gen.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

/// Private counters of the poller, mirrored into the shared stats words after each pass.
#[derive(Default)]
struct Counters(Stats);

impl Counters {
    fn reject(&mut self, fault: Fault) {
        let s = &mut self.0;
        s.rejected += 1;
        match fault {
            Fault::Opcode => s.rejected_opcode += 1,
            Fault::Reserved => s.rejected_reserved += 1,
            Fault::Object => s.rejected_object += 1,
            Fault::Length | Fault::Bounds => s.rejected_bounds += 1,
            Fault::Align => s.rejected_align += 1,
        }
    }

    fn mirror(&self, words: &[AtomicU64; STATS_WORDS]) {
        let s = &self.0;
        let values = [
            s.submitted,
            s.completed,
            s.rejected,
            s.rejected_opcode,
            s.rejected_reserved,
            s.rejected_object,
            s.rejected_bounds,
            s.rejected_align,
            s.wakeups,
            s.cq_full,
        ];
        for (word, value) in words.iter().zip(values) {
            // Relaxed: the mirror is an advisory snapshot.
            word.store(value, Ordering::Relaxed);
        }
    }
}

/// The poller thread's private state: its own SQ head and CQ tail, as the kernel keeps.
struct Poller<'a> {
    inner: &'a Inner,
    local: &'a Local,
    sq_head: u32,
    cq_tail: u32,
    objects: Vec<Arc<LocalObject>>,
    objects_gen: u64,
    counters: Counters,
    /// Whether the current stall on a full CQ has been counted.
    cq_full: bool,
}

impl<'a> Poller<'a> {
    fn new(inner: &'a Arc<Inner>) -> Self {
        Poller {
            inner,
            local: inner.local(),
            sq_head: 0,
            cq_tail: 0,
            objects: Vec::new(),
            objects_gen: u64::MAX,
            counters: Counters::default(),
            cq_full: false,
        }
    }

    /// Whether the attached objects changed since this poller's copy.
    fn objects_stale(&self) -> bool {
        // Acquire pairs with the release increments in `attach`/`detach_object`.
        self.local.objects_gen.load(Ordering::Acquire) != self.objects_gen
    }

    fn refresh_objects(&mut self) {
        // Acquire pairs with the release increments in `attach`/`detach_object`.
        let gen = self.local.objects_gen.load(Ordering::Acquire);
        if gen != self.objects_gen {
            self.objects = self
                .local
                .objects
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            self.objects_gen = gen;
        }
    }

    /// Consumes published entries while the CQ has room, up to `limit`; returns how many.
    fn pass(&mut self, limit: Option<u32>) -> u32 {
        let sq = self.inner.region.sq();
        let cq = self.inner.region.cq();
        let room = cq.room(self.cq_tail).min(MAX_PASS);
        let mut n = 0;
        while n < room {
            if limit == Some(self.sq_head) {
                break;
            }
            // SAFETY: this thread is the ring's one consumer and `sq_head` its private head,
            // released only below.
            let Some(sqe) = (unsafe { sq.peek(self.sq_head) }) else {
                break;
            };
            self.sq_head = self.sq_head.wrapping_add(1);
            let cqe = self.execute(&sqe);
            // SAFETY: this thread is the ring's one completion producer, and `room` said
            // the slot at its private tail is free.
            unsafe { cq.write(self.cq_tail, &cqe) };
            self.cq_tail = self.cq_tail.wrapping_add(1);
            n += 1;
        }
        if n > 0 {
            // Counters first: the CQ tail's release then makes them visible to whoever
            // sees the completions they count.
            self.counters.0.submitted += u64::from(n);
            self.counters.0.completed += u64::from(n);
            self.counters.mirror(self.inner.region.stats_words());
            sq.release(self.sq_head);
            cq.publish(self.cq_tail);
            self.local.cq_event.notify();
            self.local.cq_wakeup.after_publish();
        } else if room == 0 && !self.cq_full && sq.is_published(self.sq_head) {
            // One count per episode of a full CQ, as the kernel module counts.
            self.cq_full = true;
            self.counters.0.cq_full += 1;
            self.counters.mirror(self.inner.region.stats_words());
        }
        if n > 0 {
            self.cq_full = false;
        }
        n
    }

    fn execute(&mut self, sqe: &Sqe) -> Cqe {
        let mut cqe = Cqe {
            user_data: sqe.user_data,
            ..Cqe::default()
        };
        let mut found = self.objects.binary_search_by_key(&sqe.obj_id, |o| o.id);
        if found.is_err() && self.objects_stale() {
            // Attached after this pass refreshed its copy (and before the entry was
            // published, so the acquire of its `seq` made the attachment visible).
            self.refresh_objects();
            found = self.objects.binary_search_by_key(&sqe.obj_id, |o| o.id);
        }
        let object = found.ok().map(|i| &self.objects[i]);
        let arena = &self.inner.arena;
        if let Err(fault) = check_entry(sqe, arena.len(), |_| object.map(|o| o.size())) {
            self.counters.reject(fault);
            cqe.res = fault.errno();
            return cqe;
        }
        let Some(object) = object else {
            return cqe; // NOP: nothing to do.
        };
        let needed = needed_rights(sqe.opcode);
        if object.rights() & needed != needed {
            // A plain object is no map; a map's fd did not grant the write.
            cqe.res = if needed & rights::MAP != 0 && object.rights() & rights::MAP == 0 {
                -libc::EOPNOTSUPP
            } else {
                -libc::EPERM
            };
            return cqe;
        }
        if let Some(map) = &object.map {
            if sqe.opcode >= opcode::MAP_UPDATE || map.values().is_none() {
                map.execute(sqe, arena, &mut cqe);
                return cqe;
            }
        }
        let base = object.base();
        // SAFETY: `obj_off` is 8-aligned and `obj_off + 8 <= size` (validated), and the
        // object's words are accessed only atomically.
        let word = || unsafe { &*base.add(sqe.obj_off as usize).cast::<AtomicU64>() };
        match sqe.opcode {
            opcode::READ | opcode::WRITE => {
                let len = sqe.len as usize;
                // `check_entry` bounded both ranges.
                let Ok(arena_ptr) = arena.range(sqe.arena_off, len) else {
                    unreachable!("validated arena range")
                };
                // SAFETY: `obj_off + len <= size` (validated), so the range is in the object.
                let obj_ptr = unsafe { base.add(sqe.obj_off as usize) };
                // SAFETY: both ranges are in bounds (validated) and shared memory accessed
                // only atomically.
                unsafe {
                    if sqe.opcode == opcode::READ {
                        copy::<true, true>(arena_ptr, obj_ptr, len);
                    } else {
                        copy::<true, true>(obj_ptr, arena_ptr, len);
                    }
                }
                cqe.res = sqe.len as i32;
            }
            // SeqCst on the object words: they are the program's shared variables, and the
            // kernel's atomic64 operations are fully ordered too.
            opcode::LOAD64 => cqe.value = word().load(Ordering::SeqCst),
            opcode::STORE64 => word().store(sqe.val, Ordering::SeqCst),
            opcode::FETCH_ADD64 => cqe.value = word().fetch_add(sqe.val, Ordering::SeqCst),
            _ => {
                match word().compare_exchange(sqe.cmp, sqe.val, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(old) => {
                        cqe.value = old;
                        cqe.res = 1;
                    }
                    Err(old) => cqe.value = old,
                }
            }
        }
        cqe
    }

    /// The poller's life: consume, and after its idle window without work, sleep with
    /// NEED_WAKEUP.
    fn run(mut self) -> Vec<Sqe> {
        // Even if serving panics (a bug), no waiter may wait forever for this thread.
        struct Finish<'a>(&'a Inner);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    // Producers are told the ring is closed instead of filling it.
                    self.0.gate.close(&self.0.region.sq());
                }
                self.0.local().finish();
            }
        }
        let _finish = Finish(self.inner);
        self.serve()
    }

    fn serve(&mut self) -> Vec<Sqe> {
        let sq = self.inner.region.sq();
        let mut idle_since: Option<Instant> = None;
        let mut spins = 0u32;
        let mut window = self.local.idle.start();
        loop {
            self.refresh_objects();
            // Acquire pairs with the release store in `Local::stop`.
            let stop_at = match self.local.stop_at.load(Ordering::Acquire) {
                u64::MAX => None,
                t => Some(t as u32),
            };
            if self.pass(stop_at) > 0 {
                idle_since = None;
                spins = 0;
                continue;
            }
            if let Some(final_tail) = stop_at {
                if self.sq_head == final_tail {
                    return Vec::new();
                }
                if self.inner.region.cq().room(self.cq_tail) == 0 {
                    if !self.inner.cq_dropped() {
                        return self.hand_back(final_tail);
                    }
                    // No one can read completions any more: discard them, so that every
                    // admitted entry is still performed.
                    self.inner.region.cq().release(self.cq_tail);
                    continue;
                }
                // A producer is still writing an entry it reserved before the gate closed.
                crate::sync::spin_loop();
                continue;
            }
            spins += 1;
            if spins < IDLE_SPINS {
                crate::sync::spin_loop();
                continue;
            }
            spins = 0;
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < window {
                // Lets a producer or consumer that shares this core run.
                std::thread::yield_now();
                continue;
            }
            let cq = self.inner.region.cq();
            let (head, cq_tail, local, gen) =
                (self.sq_head, self.cq_tail, self.local, self.objects_gen);
            let ready = || {
                local.stop_at.load(Ordering::Acquire) != u64::MAX
                    || local.objects_gen.load(Ordering::Acquire) != gen
                    || (sq.is_published(head) && cq.room(cq_tail) > 0)
            };
            // Published entries that wait only for a completion slot: the consumer must
            // wake us when it makes room.
            let cq_full = sq.is_published(head) && cq.room(cq_tail) == 0;
            if sq.prepare_sleep(cq_full, ready) {
                let slept = Instant::now();
                local.sq_event.wait(ready, None);
                sq.clear_wakeup();
                // Only a wake-up that found an entry measures the gap between requests; a
                // kick that found nothing says nothing about the load.
                if sq.is_published(head) {
                    window = local.idle.next(window, slept.elapsed());
                }
                self.counters.0.wakeups += 1;
                self.counters.mirror(self.inner.region.stats_words());
            }
            idle_since = None;
        }
    }

    /// At shutdown with a full CQ: takes the entries up to `final_tail` out of the ring
    /// without performing them, to hand back to the caller.
    fn hand_back(&mut self, final_tail: u32) -> Vec<Sqe> {
        let sq = self.inner.region.sq();
        let mut returned = Vec::with_capacity(final_tail.wrapping_sub(self.sq_head) as usize);
        while self.sq_head != final_tail {
            // SAFETY: this thread is the ring's one consumer; `sq_head` is its private head,
            // released only after the loop.
            match unsafe { sq.peek(self.sq_head) } {
                Some(sqe) => {
                    returned.push(sqe);
                    self.sq_head = self.sq_head.wrapping_add(1);
                }
                None => crate::sync::spin_loop(),
            }
        }
        sq.release(self.sq_head);
        returned
    }
}
