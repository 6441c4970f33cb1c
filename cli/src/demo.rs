//! `sbpf-ring demo`: the project's main job. Several producer threads run a mixed
//! workload against kernel objects through one ring; one consumer checks every result.

use std::{
    io::IsTerminal,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use sbpf_guard::{builtin::code, Engine, Guard, GuardStats, Stage};
use sbpf_ring::{
    op, AcceptAll, BackendChoice, BatchError, BoundsValidator, ObjectId, Ring, Sqe, SubmitError,
    Submitter,
};
use serde::Serialize;

/// Arguments of `sbpf-ring demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Producer threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    producers: u32,
    /// Iterations per producer (each is five requests).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    iterations: u64,
    /// Submission ring entries (a power of two).
    #[arg(long, default_value_t = 1024)]
    sq_entries: u32,
    /// Backend: auto (kernel module if loaded), local, or kernel.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// The producers' check of each entry before it is published: the built-in bounds guard
    /// (eBPF) under rbpf's JIT or its interpreter, or the same check compiled in (native).
    #[arg(long, value_enum, default_value_t = GuardChoice::Jit)]
    guard: GuardChoice,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
    /// Drive BPF maps (an array and a hash map) through the ring instead of the module's
    /// own objects, and check every result with a BPF program in the kernel. Needs bpf()
    /// (root or CAP_BPF).
    #[arg(long)]
    bpf: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum GuardChoice {
    Jit,
    Interpreter,
    Native,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Backend {
    Auto,
    Local,
    Kernel,
}

/// Table rows each producer cycles through, and arena slots it may have in flight.
const ROWS: u64 = 256;
const SLOTS: u64 = 64;
const RECORD: u64 = 64;
/// One deliberately bad pair of entries every this many iterations.
const BAD_EVERY: u64 = 997;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Write = 1,
    Read = 2,
    Store = 3,
    Load = 4,
    Add = 5,
    Bad = 6,
}

fn user_data(p: u64, i: u64, kind: Kind) -> u64 {
    (p << 48) | (i << 8) | kind as u64
}

fn decode(ud: u64) -> (u64, u64, u8) {
    (ud >> 48, (ud >> 8) & 0xff_ffff_ffff, (ud & 0xff) as u8)
}

/// The 64-byte record producer `p` writes at iteration `i`.
fn record(p: u64, i: u64) -> [u8; RECORD as usize] {
    let mut r = [0u8; RECORD as usize];
    for (k, chunk) in r.chunks_exact_mut(8).enumerate() {
        let v = (p << 40) ^ (i << 8) ^ k as u64 ^ 0x5bd1_e995_0000_0000;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    r
}

fn word_value(p: u64, i: u64) -> u64 {
    (p << 56) | i.wrapping_mul(0x9e37_79b9)
}

#[derive(Serialize, Debug)]
struct Summary {
    backend: String,
    producers: u32,
    iterations: u64,
    operations: u64,
    checked: u64,
    guard: String,
    rejected_by_validator: u64,
    rejected_by_consumer: u64,
    /// Entries the eBPF guard accepted and refused, over every producer's copy.
    guard_accepted: Option<u64>,
    guard_rejected: Option<u64>,
    counter: u64,
    elapsed_s: f64,
    ops_per_sec: f64,
    consumer_stats: StatsOut,
    ok: bool,
    errors: Vec<String>,
}

#[derive(Serialize, Debug)]
struct StatsOut {
    submitted: u64,
    completed: u64,
    rejected: u64,
    wakeups: u64,
    cq_full: u64,
}

struct Layout {
    table: ObjectId,
    counters: ObjectId,
    producers: u64,
}

impl Layout {
    fn table_off(&self, p: u64, i: u64) -> u64 {
        (p * ROWS + i % ROWS) * RECORD
    }
    fn write_slot(&self, p: u64, i: u64) -> u64 {
        (p * SLOTS + i % SLOTS) * RECORD
    }
    fn read_slot(&self, p: u64, i: u64) -> u64 {
        ((self.producers + p) * SLOTS + i % SLOTS) * RECORD
    }
    fn word(&self, p: u64) -> u64 {
        8 + 8 * p
    }
}

/// Set by the consumer when it gives up (completions stalled), so producers waiting for
/// room stop instead of waiting forever.
struct Abandon(AtomicBool);

impl Abandon {
    fn check(&self) -> Result<(), String> {
        // Relaxed: a stop request; nothing is read on the strength of it.
        if self.0.load(Ordering::Relaxed) {
            Err("stopped: the consumer gave up".into())
        } else {
            Ok(())
        }
    }
}

fn submit_all(s: &mut Submitter, entries: &[Sqe], abandon: &Abandon) -> Result<(), String> {
    let mut sent = 0;
    while sent < entries.len() {
        match s.submit_batch(&entries[sent..]) {
            Ok(n) => sent += n,
            Err(BatchError::Full) => {
                abandon.check()?;
                thread::yield_now();
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Runs the demo and prints its summary on stdout; `Ok(true)` when every result checked out.
pub fn run(args: DemoArgs) -> Result<bool, String> {
    run_to(args, &mut std::io::stdout().lock())
}

/// As [`run`], writing the summary (text, or JSON with `--json`) to `out`.
pub fn run_to(args: DemoArgs, out: &mut impl std::io::Write) -> Result<bool, String> {
    use std::fmt::Write as _;
    let choice = match args.backend {
        Backend::Auto => BackendChoice::Auto,
        Backend::Local => BackendChoice::Local,
        Backend::Kernel => BackendChoice::Kernel,
    };
    let producers = u64::from(args.producers);
    if args.bpf {
        return crate::demo_bpf::run(
            choice,
            producers,
            args.iterations,
            args.sq_entries,
            args.json,
            out,
        );
    }
    let arena = (2 * producers * SLOTS * RECORD).next_multiple_of(4096);
    let ring = Ring::builder()
        .backend(choice)
        .sq_entries(args.sq_entries)
        .arena_size(arena)
        .build()
        .map_err(|e| format!("cannot set up the ring: {e}"))?;
    if !args.json {
        eprintln!(
            "sbpf-ring demo: {} backend{}, {} producers x {} iterations, SQ {} / CQ {}",
            ring.backend(),
            if ring.backend() == sbpf_ring::BackendKind::Kernel {
                " (/dev/sbpf_ring)"
            } else {
                " (kernel module not loaded)"
            },
            producers,
            args.iterations,
            ring.sq_entries(),
            ring.cq_entries()
        );
    }
    let layout = Arc::new(Layout {
        table: ring
            .create_object(producers * ROWS * RECORD)
            .map_err(|e| e.to_string())?,
        counters: ring
            .create_object(4096.max((producers + 1) * 8).next_multiple_of(8))
            .map_err(|e| e.to_string())?,
        producers,
    });
    let mut cq = ring.completions().map_err(|e| e.to_string())?;
    let iters_done: Arc<Vec<AtomicU64>> =
        Arc::new((0..producers).map(|_| AtomicU64::new(0)).collect());
    let rejected_by_validator = Arc::new(AtomicU64::new(0));
    let guard = match args.guard {
        GuardChoice::Jit => Some(Guard::new([Stage::bounds(Engine::Jit)])),
        GuardChoice::Interpreter => Some(Guard::new([Stage::bounds(Engine::Interpreter)])),
        GuardChoice::Native => None,
    };
    let guard_name = guard.as_ref().map_or_else(
        || "native bounds check".to_owned(),
        |g| {
            format!(
                "{} ({})",
                sbpf_ring::Validator::name(g),
                g.stages()[0].program().engine()
            )
        },
    );
    let guard_stats: Option<GuardStats> = guard.as_ref().map(Guard::stats);
    let abandon = Arc::new(Abandon(AtomicBool::new(false)));
    let started = Instant::now();

    let workers: Vec<_> = (0..producers)
        .map(|p| {
            // Each producer owns its copy of the guard; `guard_stats` adds them up.
            let mut guarded = match &guard {
                Some(g) => ring.submitter_with(g.clone()),
                None => ring.submitter_with(BoundsValidator),
            };
            let mut raw = ring.submitter_with(AcceptAll);
            let arena = ring.arena();
            let (layout, iters_done, rejected, abandon) = (
                Arc::clone(&layout),
                Arc::clone(&iters_done),
                Arc::clone(&rejected_by_validator),
                Arc::clone(&abandon),
            );
            let iterations = args.iterations;
            thread::spawn(move || -> Result<(), String> {
                for i in 0..iterations {
                    // Reuse an arena slot only once the consumer has checked its last use.
                    // Acquire pairs with the consumer's release increment.
                    while i >= iters_done[p as usize].load(Ordering::Acquire) + SLOTS {
                        abandon.check()?;
                        thread::yield_now();
                    }
                    arena
                        .write(layout.write_slot(p, i), &record(p, i))
                        .map_err(|e| e.to_string())?;
                    let (t, c) = (layout.table, layout.counters);
                    let batch = [
                        op::Write::new(
                            t,
                            layout.table_off(p, i),
                            layout.write_slot(p, i),
                            RECORD as u32,
                        )
                        .user_data(user_data(p, i, Kind::Write))
                        .build(),
                        op::Read::new(
                            t,
                            layout.table_off(p, i),
                            layout.read_slot(p, i),
                            RECORD as u32,
                        )
                        .user_data(user_data(p, i, Kind::Read))
                        .build(),
                        op::Store64::new(c, layout.word(p), word_value(p, i))
                            .user_data(user_data(p, i, Kind::Store))
                            .build(),
                        op::Load64::new(c, layout.word(p))
                            .user_data(user_data(p, i, Kind::Load))
                            .build(),
                        op::FetchAdd64::new(c, 0, 1)
                            .user_data(user_data(p, i, Kind::Add))
                            .build(),
                    ];
                    submit_all(&mut guarded, &batch, &abandon)?;
                    if i % BAD_EVERY == BAD_EVERY - 1 {
                        // Out of the table: the producer's validator refuses it...
                        // (A full ring hands it back before checking it; try again.)
                        let mut bad =
                            op::Read::new(t, layout.table_off(p, 0) + u64::MAX / 2, 0, 64)
                                .user_data(user_data(p, i, Kind::Bad))
                                .build();
                        loop {
                            match guarded.submit(bad) {
                                Err(SubmitError::Rejected { .. }) => {
                                    rejected.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Err(SubmitError::Full(back)) => {
                                    bad = back;
                                    abandon.check()?;
                                    thread::yield_now();
                                }
                                Err(SubmitError::Closed(_)) => {
                                    return Err("the ring closed under a producer".into())
                                }
                                other => {
                                    return Err(format!(
                                        "the validator accepted a bad entry: {other:?}"
                                    ))
                                }
                            }
                        }
                        // ...and one that skips it (misaligned word) must be refused by the
                        // consumer.
                        let skip = op::FetchAdd64::new(c, 3, 1)
                            .user_data(user_data(p, i, Kind::Bad))
                            .build();
                        submit_all(&mut raw, &[skip], &abandon)?;
                    }
                }
                Ok(())
            })
        })
        .collect();

    let per_iter = 5u64;
    let bad_per_producer = args.iterations / BAD_EVERY;
    let expected = producers * (args.iterations * per_iter + bad_per_producer);
    let progress =
        (!args.json && std::io::stderr().is_terminal() && expected > 200_000).then(|| {
            let bar = indicatif::ProgressBar::new(expected);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} requests ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });

    let arena = ring.arena();
    let mut errors: Vec<String> = Vec::new();
    let mut checked = 0u64;
    let mut rejected_by_consumer = 0u64;
    let mut seen_add = 0u64;
    let mut last_progress = 0u64;
    let mut buf = [0u8; RECORD as usize];
    while checked < expected {
        match cq.wait(1, Some(Duration::from_secs(10))) {
            Ok(_) => {}
            Err(e) => {
                errors.push(format!(
                    "completions stalled after {checked} of {expected}: {e}"
                ));
                break;
            }
        }
        for c in cq.iter() {
            let (p, i, kind) = decode(c.user_data());
            let mut fail = |what: String| {
                if errors.len() < 20 {
                    errors.push(format!("producer {p} iteration {i}: {what}"));
                }
            };
            match kind {
                k if k == Kind::Write as u8 => {
                    if c.result() != RECORD as i32 {
                        fail(format!("WRITE returned {}", c.result()));
                    }
                }
                k if k == Kind::Read as u8 => {
                    if c.result() != RECORD as i32 {
                        fail(format!("READ returned {}", c.result()));
                    } else if arena.read(layout.read_slot(p, i), &mut buf).is_err()
                        || buf != record(p, i)
                    {
                        fail("READ did not return what WRITE stored".into());
                    }
                    // Release pairs with the producer's acquire load before slot reuse.
                    iters_done[p as usize].fetch_add(1, Ordering::Release);
                }
                k if k == Kind::Store as u8 => {
                    if c.result() != 0 {
                        fail(format!("STORE64 returned {}", c.result()));
                    }
                }
                k if k == Kind::Load as u8 => {
                    if c.value() != word_value(p, i) {
                        fail(format!(
                            "LOAD64 gave {:#x}, expected {:#x}",
                            c.value(),
                            word_value(p, i)
                        ));
                    }
                }
                k if k == Kind::Add as u8 => {
                    seen_add += 1;
                    if c.result() != 0 || c.value() >= producers * args.iterations {
                        fail(format!(
                            "FETCH_ADD64 returned {} old {}",
                            c.result(),
                            c.value()
                        ));
                    }
                }
                k if k == Kind::Bad as u8 => {
                    if c.result() == -libc::EINVAL {
                        rejected_by_consumer += 1;
                    } else {
                        fail(format!("a misaligned entry completed with {}", c.result()));
                    }
                }
                _ => fail(format!("unknown completion {:?}", c)),
            }
            checked += 1;
        }
        if let Some(bar) = &progress {
            if checked - last_progress > 10_000 {
                bar.set_position(checked);
                last_progress = checked;
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if checked < expected {
        abandon.0.store(true, Ordering::Relaxed);
    }
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a producer thread panicked".into()),
        }
    }
    let elapsed = started.elapsed();

    // The shared counter must hold exactly one increment per iteration of every producer.
    let mut s = ring.submitter();
    let counter = match s.submit(
        op::Load64::new(layout.counters, 0)
            .user_data(u64::MAX)
            .build(),
    ) {
        Ok(()) => match cq.wait(1, Some(Duration::from_secs(10))) {
            Ok(_) => cq.pop().map_or(u64::MAX, |c| c.value()),
            Err(e) => {
                errors.push(format!("final LOAD64: {e}"));
                u64::MAX
            }
        },
        Err(e) => {
            errors.push(format!("final LOAD64: {e}"));
            u64::MAX
        }
    };
    if counter != producers * args.iterations || seen_add != producers * args.iterations {
        errors.push(format!(
            "shared counter is {counter}, expected {}",
            producers * args.iterations
        ));
    }
    let rejected_by_validator = rejected_by_validator.load(Ordering::Relaxed);
    if rejected_by_validator != producers * bad_per_producer
        || rejected_by_consumer != producers * bad_per_producer
    {
        errors.push("bad entries were not all rejected".into());
    }
    // The guard saw every entry of every producer's guarded handle: the five of each
    // iteration at least once (again when only part of a batch fit the ring and the rest
    // was submitted again), and each bad one, which it refused.
    let totals = guard_stats.map(|s| s.totals());
    if let Some(t) = &totals {
        let accepted = producers * args.iterations * per_iter;
        if t.accepted() < accepted
            || t.rejected_total() != rejected_by_validator
            || t.rejected(code::GUARD_FAULT) != 0
        {
            errors.push(format!(
                "the guard counted {} accepted and {} refused ({} by a fault), expected at \
                 least {accepted}, exactly {} and none",
                t.accepted(),
                t.rejected_total(),
                t.rejected(code::GUARD_FAULT),
                rejected_by_validator
            ));
        }
    }
    let stats = ring.stats();
    let summary = Summary {
        backend: ring.backend().to_string(),
        producers: args.producers,
        iterations: args.iterations,
        operations: checked,
        checked,
        guard: guard_name,
        rejected_by_validator,
        rejected_by_consumer,
        guard_accepted: totals.as_ref().map(|t| t.accepted()),
        guard_rejected: totals.as_ref().map(|t| t.rejected_total()),
        counter,
        elapsed_s: elapsed.as_secs_f64(),
        ops_per_sec: checked as f64 / elapsed.as_secs_f64(),
        consumer_stats: StatsOut {
            submitted: stats.submitted,
            completed: stats.completed,
            rejected: stats.rejected,
            wakeups: stats.wakeups,
            cq_full: stats.cq_full,
        },
        ok: errors.is_empty(),
        errors,
    };
    let mut text = String::new();
    if args.json {
        let _ = writeln!(
            text,
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
        );
    } else {
        let _ = writeln!(text, "backend            {}", summary.backend);
        let _ = writeln!(
            text,
            "operations         {} ({} checked, every result verified)",
            summary.operations, summary.checked
        );
        let _ = writeln!(text, "producers' check   {}", summary.guard);
        let _ = writeln!(
            text,
            "rejected           {} by the producers' check, {} by the consumer",
            summary.rejected_by_validator, summary.rejected_by_consumer
        );
        if let (Some(a), Some(r)) = (summary.guard_accepted, summary.guard_rejected) {
            let _ = writeln!(
                text,
                "guard totals       {a} accepted, {r} refused (every producer's copy)"
            );
        }
        let _ = writeln!(
            text,
            "shared counter     {} (expected {})",
            summary.counter,
            producers * args.iterations
        );
        let _ = writeln!(text, "elapsed            {:.3} s", summary.elapsed_s);
        let _ = writeln!(text, "throughput         {:.0} ops/s", summary.ops_per_sec);
        let _ = writeln!(
            text,
            "consumer counters  submitted {} completed {} rejected {} wake-ups {} cq-full {}",
            stats.submitted, stats.completed, stats.rejected, stats.wakeups, stats.cq_full
        );
        for e in &summary.errors {
            let _ = writeln!(text, "ERROR: {e}");
        }
        let _ = writeln!(text, "{}", if summary.ok { "OK" } else { "FAILED" });
    }
    out.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the summary: {e}"))?;
    Ok(summary.ok)
}
