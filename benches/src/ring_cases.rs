//! The ring cases: the local backend with its poller on the other core, one producer in
//! the bench thread submitting batches with [`Submitter::submit_batch`] and draining
//! completions in the same thread.
//!
//! Throughput: pipelined, keeping up to `sq_entries` requests in flight (submit batches
//! while there is room, then drain whatever completed). Latency: batch round trips at one
//! batch in flight (submit a batch, wait for all its completions, drain), so p50/p99 are
//! the submit-to-last-completion time of a whole batch.

use std::time::{Duration, Instant};

use sbpf_ring::{
    op, AcceptAll, BackendChoice, CompletionQueue, IdlePolicy, ObjectId, Rejection, Ring, Sqe,
    Submitter, Validator,
};

use crate::{affinity, result, Budget, CaseResult, Deadline, Samples};

/// Submission ring size of every ring case; the pipelined loop keeps this many in flight.
pub const SQ_ENTRIES: u32 = 256;

/// Size of the object the cases address.
const OBJECT_SIZE: u64 = 4096;

/// The operation a ring case submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingOp {
    /// NOP.
    Nop,
    /// 64-byte READ from the object into the arena.
    Read64,
    /// 64-byte WRITE from the arena into the object.
    Write64,
    /// FETCH_ADD64 on a word of the object.
    FetchAdd,
}

impl RingOp {
    /// The name used in case names.
    pub fn label(self) -> &'static str {
        match self {
            RingOp::Nop => "nop",
            RingOp::Read64 => "read64",
            RingOp::Write64 => "write64",
            RingOp::FetchAdd => "fetch_add",
        }
    }

    fn entry(self, obj: ObjectId, i: u64) -> Sqe {
        // Object offsets cycle through the 4 KiB object, arena offsets through 16 KiB, so
        // no two entries of a batch touch the same arena bytes.
        let (slot, buf) = (i % 64, i % 256);
        match self {
            RingOp::Nop => op::Nop::new().user_data(i).build(),
            RingOp::Read64 => op::Read::new(obj, slot * 64, buf * 64, 64)
                .user_data(i)
                .build(),
            RingOp::Write64 => op::Write::new(obj, slot * 64, buf * 64, 64)
                .user_data(i)
                .build(),
            RingOp::FetchAdd => op::FetchAdd64::new(obj, slot * 8, 1).user_data(i).build(),
        }
    }
}

/// A [`Validator`] behind a box, so validators chosen at run time (the sbpf-guard JIT and
/// interpreter guards) can be plugged into [`ring_case_boxed`]. Costs one more indirect call
/// per entry than a validator passed by type.
pub struct BoxedValidator(pub Box<dyn Validator>);

impl std::fmt::Debug for BoxedValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BoxedValidator")
            .field(&self.0.name())
            .finish()
    }
}

impl Validator for BoxedValidator {
    fn validate(&mut self, sqe: &Sqe, limits: &sbpf_ring::Limits) -> Result<(), Rejection> {
        self.0.validate(sqe, limits)
    }

    fn clone_box(&self) -> Box<dyn Validator> {
        Box::new(BoxedValidator(self.0.clone_box()))
    }

    fn name(&self) -> &str {
        self.0.name()
    }
}

/// The poller's idle policy before the adaptive one: spin 10 ms, then sleep. Kept as the
/// comparison for the idle cases.
pub const OLD_IDLE: IdlePolicy = IdlePolicy::Fixed(Duration::from_millis(10));

/// A local ring whose poller runs on the consumer core, and the calling thread pinned to
/// the producer core. Also used by the no-allocation test and the criterion benches.
pub fn local_ring() -> Result<(Ring, ObjectId), sbpf_ring::Error> {
    local_ring_with(IdlePolicy::default())
}

/// [`local_ring`] with the poller's idle policy given.
pub fn local_ring_with(idle: IdlePolicy) -> Result<(Ring, ObjectId), sbpf_ring::Error> {
    let cores = affinity::producer_consumer();
    if let Some((_, consumer)) = cores {
        // The poller is spawned by `build` and inherits this mask.
        affinity::pin_current(consumer);
    }
    let ring = Ring::builder()
        .backend(BackendChoice::Local)
        .sq_entries(SQ_ENTRIES)
        .arena_size(1 << 20)
        .idle_policy(idle)
        .build();
    if let Some((producer, _)) = cores {
        affinity::pin_current(producer);
    }
    let ring = ring?;
    let obj = ring.create_object(OBJECT_SIZE)?;
    Ok((ring, obj))
}

/// The batch of `batch` entries of `op` that every submission in a case reuses.
pub fn batch_entries(op: RingOp, obj: ObjectId, batch: u32) -> Vec<Sqe> {
    (0..u64::from(batch)).map(|i| op.entry(obj, i)).collect()
}

/// Waits until `min` completions are ready. With no timeout, `wait` returns early only if the
/// ring closed, which no case does while it runs.
#[inline]
pub fn wait_for(cq: &mut CompletionQueue, min: usize) {
    if let Err(e) = cq.wait(min, None) {
        panic!("wait: {e}");
    }
}

/// One pipelined run for `deadline`: returns (completed requests, failed completions).
/// Allocates nothing.
pub fn pipelined(
    sub: &mut Submitter,
    cq: &mut CompletionQueue,
    entries: &[Sqe],
    depth: usize,
    mut keep_going: impl FnMut(u64) -> bool,
) -> (u64, u64) {
    let b = entries.len();
    let (mut inflight, mut done, mut failed) = (0usize, 0u64, 0u64);
    while keep_going(done) {
        while inflight + b <= depth {
            match sub.submit_batch(entries) {
                Ok(n) => inflight += n,
                Err(sbpf_ring::BatchError::Full) => break,
                Err(e) => panic!("submit_batch: {e}"),
            }
        }
        if cq.is_empty() {
            wait_for(cq, 1);
        }
        for c in cq.iter() {
            inflight -= 1;
            done += 1;
            failed += u64::from(!c.is_ok());
        }
    }
    while inflight > 0 {
        wait_for(cq, inflight);
        for c in cq.iter() {
            inflight -= 1;
            done += 1;
            failed += u64::from(!c.is_ok());
        }
    }
    (done, failed)
}

/// One batch round trip: submit `entries`, wait for all their completions, drain.
#[inline]
pub fn round_trip(sub: &mut Submitter, cq: &mut CompletionQueue, entries: &[Sqe]) -> u64 {
    let n = sub.submit_batch(entries).expect("submit_batch");
    assert_eq!(n, entries.len(), "one batch fits an idle ring");
    let mut failed = 0;
    let mut left = n;
    while left > 0 {
        wait_for(cq, left);
        for c in cq.iter() {
            left -= 1;
            failed += u64::from(!c.is_ok());
        }
    }
    failed
}

/// What [`measure`] found.
#[derive(Debug)]
pub struct Measured {
    /// Requests completed in the throughput phase.
    pub done: u64,
    /// Failed completions, both phases.
    pub failed: u64,
    /// Length of the throughput phase.
    pub elapsed: std::time::Duration,
    /// Batch round-trip latencies.
    pub samples: Samples,
}

/// The measurement every pipelined ring case makes with `entries` as its batch: a warm-up,
/// the throughput phase ([`pipelined`], up to [`SQ_ENTRIES`] in flight), then round-trip
/// latencies ([`round_trip`]); unpins the calling thread afterwards.
pub fn measure(
    sub: &mut Submitter,
    cq: &mut CompletionQueue,
    entries: &[Sqe],
    budget: &Budget,
) -> Measured {
    let depth = SQ_ENTRIES as usize;
    let mut warm = Deadline::after(budget.warmup);
    pipelined(sub, cq, entries, depth, |_| !warm.passed());

    let mut deadline = Deadline::after(budget.measure);
    let start = Instant::now();
    let (done, mut failed) = pipelined(sub, cq, entries, depth, |_| !deadline.passed());
    let elapsed = start.elapsed();

    let mut samples = Samples::with_capacity(budget.latency_samples);
    let until = Instant::now() + budget.latency_time;
    while !samples.is_full() && Instant::now() < until {
        let t0 = Instant::now();
        failed += round_trip(sub, cq, entries);
        samples.record(t0.elapsed());
    }
    affinity::unpin_current();
    Measured {
        done,
        failed,
        elapsed,
        samples,
    }
}

/// `ring/<op>/b<batch>` with the default [`sbpf_ring::BoundsValidator`].
pub fn ring_case(op: RingOp, batch: u32, budget: &Budget) -> CaseResult {
    let name = format!("ring/{}/b{batch}", op.label());
    ring_case_with(&name, op, batch, sbpf_ring::BoundsValidator, budget)
}

/// `ring-novalidate/read64/b32`: the bare ring, [`AcceptAll`] at the producer (the poller
/// still validates its copy, as it always does).
pub fn ring_novalidate_case(budget: &Budget) -> CaseResult {
    ring_case_with(
        "ring-novalidate/read64/b32",
        RingOp::Read64,
        32,
        AcceptAll,
        budget,
    )
}

/// READ 64 at batch 32 through a validator chosen at run time, named `name` (the hook for
/// `ring+guard-jit/read64/b32` and `ring+guard-interp/read64/b32`).
pub fn ring_case_boxed(name: &str, validator: Box<dyn Validator>, budget: &Budget) -> CaseResult {
    ring_case_with(name, RingOp::Read64, 32, BoxedValidator(validator), budget)
}

/// `ring-idle-fixed10ms/nop/b32`: NOP at batch 32 with the old idle policy ([`OLD_IDLE`]),
/// to compare full-load throughput with the adaptive default side by side.
pub fn ring_old_idle_case(budget: &Budget) -> CaseResult {
    ring_case_idle(
        "ring-idle-fixed10ms/nop/b32",
        RingOp::Nop,
        32,
        sbpf_ring::BoundsValidator,
        OLD_IDLE,
        budget,
    )
}

/// A ring case with any producer-side validator.
pub fn ring_case_with(
    name: &str,
    op: RingOp,
    batch: u32,
    validator: impl Validator,
    budget: &Budget,
) -> CaseResult {
    ring_case_idle(name, op, batch, validator, IdlePolicy::default(), budget)
}

/// Requests per second of the light-load cases: one NOP every 5 ms.
pub const LIGHT_RATE: u32 = 200;

/// `ring-light/<policy>/nop/200rps`: one NOP round trip every 5 ms, as a lightly used
/// service makes them, for at least a second. Its throughput figure is requests per
/// second of CPU time that the whole process (poller, producer, waits) used, so a policy
/// that burns a core scores low; the note gives the CPU share of one core.
pub fn ring_light_case(label: &str, idle: IdlePolicy, budget: &Budget) -> CaseResult {
    let name = format!("ring-light/{label}/nop/{LIGHT_RATE}rps");
    let ring = Ring::builder()
        .backend(BackendChoice::Local)
        .sq_entries(64)
        .arena_size(4096)
        .idle_policy(idle)
        .build();
    let ring = match ring {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, 1, e.to_string()),
    };
    let mut sub = ring.submitter();
    let mut cq = ring.completions().expect("first completion queue");
    let period = Duration::from_secs(1) / LIGHT_RATE;
    let span = budget.measure.max(Duration::from_secs(1));
    let cpu0 = process_cpu_time();
    let start = Instant::now();
    let mut samples = Samples::with_capacity(budget.latency_samples);
    let mut n = 0u64;
    let mut failed = 0u64;
    while start.elapsed() < span {
        let t0 = Instant::now();
        sub.submit(op::Nop::new().user_data(n).build())
            .expect("submit on an idle ring");
        wait_for(&mut cq, 1);
        failed += cq.iter().filter(|c| !c.is_ok()).count() as u64;
        if !samples.is_full() {
            samples.record(t0.elapsed());
        }
        n += 1;
        let next = start + period * n as u32;
        if let Some(left) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu_time()
        .saturating_sub(cpu0)
        .max(Duration::from_micros(1));
    drop((sub, cq));
    drop(ring);
    let share = cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
    let mut note = format!(
        "local backend, idle {idle:?}; {n} NOP round trips at {LIGHT_RATE}/s over {:.2} s used \
         {:.3} s of CPU ({share:.1}% of one core); throughput = requests per CPU-second; \
         latency = one round trip",
        elapsed.as_secs_f64(),
        cpu.as_secs_f64()
    );
    if failed > 0 {
        note.push_str(&format!("; {failed} FAILED completions"));
    }
    // The figure is requests per CPU-second: the run "took" the CPU time it used.
    result(&name, 1, n, cpu, samples, note)
}

/// User plus system time of every thread of this process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed value we pass; RUSAGE_SELF is
    // always valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn ring_case_idle(
    name: &str,
    op: RingOp,
    batch: u32,
    validator: impl Validator,
    idle: IdlePolicy,
    budget: &Budget,
) -> CaseResult {
    let (ring, obj) = match local_ring_with(idle) {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, batch, e.to_string()),
    };
    let vname = validator.name().to_owned();
    let mut sub = ring.submitter_with(validator);
    let mut cq = ring.completions().expect("first completion queue");
    let entries = batch_entries(op, obj, batch);
    let depth = SQ_ENTRIES as usize;
    let Measured {
        done,
        failed,
        elapsed,
        samples,
    } = measure(&mut sub, &mut cq, &entries, budget);

    let mut note = format!(
        "local backend, poller on the other core, validator {vname}; throughput pipelined \
         (<= {depth} in flight); latency = batch round trip (submit {batch}, wait all, drain)"
    );
    if failed > 0 {
        note.push_str(&format!("; {failed} FAILED completions"));
    }
    drop((sub, cq));
    drop(ring);
    result(name, batch, done, elapsed, samples, note)
}
