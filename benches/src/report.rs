//! Runs every case in one process and puts the results side by side: the table, the
//! ratios against each case's baseline, the JSON report and the plot.

use std::{fmt::Write as _, path::PathBuf, time::SystemTime};

use sbpf_ring::IdlePolicy;
use serde::Serialize;

use crate::{
    dispatch_cases, kmod,
    ring_cases::{
        ring_case, ring_case_boxed, ring_light_case, ring_novalidate_case, ring_old_idle_case,
        RingOp, LIGHT_RATE, OLD_IDLE,
    },
    spsc::{spsc_case, Queue},
    syscall::{syscall_case, Direction},
    uring::{uring_case, UringOp},
    Budget, CaseResult,
};

/// Batch sizes of the ring and io_uring cases.
pub const BATCHES: [u32; 4] = [1, 8, 32, 256];

/// A producer-side validator chosen at run time, benchmarked as `name` (READ 64, batch 32).
/// The hook for the sbpf-guard JIT and interpreter guards.
pub struct ExtraValidator {
    /// Case name, e.g. `ring+guard-jit/read64/b32`.
    pub name: String,
    /// Makes the validator (called once per run).
    pub make: Box<dyn Fn() -> Box<dyn sbpf_ring::Validator>>,
}

impl std::fmt::Debug for ExtraValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraValidator")
            .field("name", &self.name)
            .finish()
    }
}

/// What to run.
#[derive(Debug)]
pub struct Options {
    /// Time per case.
    pub budget: Budget,
    /// Run only cases whose name contains this (or, comma-separated, any of these).
    pub filter: Option<String>,
    /// Extra validator cases (`ring+guard-jit/read64/b32`, `ring+guard-interp/read64/b32`).
    pub validators: Vec<ExtraValidator>,
    /// The QEMU harness's results file for the kmod rows; default `$SBPF_KMOD_RESULTS`.
    pub kmod_results: Option<PathBuf>,
    /// Print each case's name to stderr as it starts.
    pub progress: bool,
    /// How many times every case runs, round-robin over the whole list, each time with
    /// `budget` divided by this; a case reports its median round. Spreading a case over
    /// the run keeps one slow minute of a shared machine from deciding its number.
    pub rounds: u32,
}

impl Options {
    /// The quick or the full budget, every case, kmod rows from the environment.
    pub fn new(quick: bool) -> Self {
        Options {
            budget: if quick { Budget::QUICK } else { Budget::FULL },
            filter: None,
            validators: Vec::new(),
            kmod_results: std::env::var_os(kmod::RESULTS_ENV).map(PathBuf::from),
            progress: false,
            rounds: if quick { 1 } else { 3 },
        }
    }
}

/// One case's result against its baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    /// The case.
    pub case: String,
    /// What it is compared with.
    pub baseline: String,
    /// `case.ops_per_sec / baseline.ops_per_sec`; when both ran in the same rounds, the
    /// median of the per-round ratios instead, so each ratio compares two measurements
    /// taken minutes, not a whole run, apart.
    pub ratio: f64,
    /// The ratio in every round, in run order (empty for a single round).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_round: Vec<f64>,
    /// The design target for this ratio, if there is one.
    pub target: Option<f64>,
    /// Whether the target is met.
    pub met: Option<bool>,
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// CPU model, core count, kernel.
    pub machine: String,
    /// UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    /// Budget used: `quick` or `full`.
    pub budget: String,
    /// Rounds each case ran; its row is the median round.
    pub rounds: u32,
    /// Every case, in run order.
    pub cases: Vec<CaseResult>,
    /// Each case against its baseline.
    pub ratios: Vec<Ratio>,
}

type Runner = Box<dyn Fn(&Budget) -> CaseResult>;

/// Every case, named, in run order.
fn cases(opts: &mut Options) -> Vec<(String, Runner)> {
    let mut v: Vec<(String, Runner)> = Vec::new();
    v.push((
        "syscall/pread64".into(),
        Box::new(|b| syscall_case(Direction::Read, b)),
    ));
    v.push((
        "syscall/pwrite64".into(),
        Box::new(|b| syscall_case(Direction::Write, b)),
    ));
    for op in [
        RingOp::Nop,
        RingOp::Read64,
        RingOp::Write64,
        RingOp::FetchAdd,
    ] {
        for batch in BATCHES {
            let name = format!("ring/{}/b{batch}", op.label());
            v.push((name, Box::new(move |b| ring_case(op, batch, b))));
        }
    }
    v.push((
        "ring-novalidate/read64/b32".into(),
        Box::new(ring_novalidate_case),
    ));
    v.push((
        "ring-idle-fixed10ms/nop/b32".into(),
        Box::new(ring_old_idle_case),
    ));
    for (label, idle) in [("adaptive", IdlePolicy::default()), ("fixed10ms", OLD_IDLE)] {
        let name = format!("ring-light/{label}/nop/{LIGHT_RATE}rps");
        v.push((name, Box::new(move |b| ring_light_case(label, idle, b))));
    }
    for extra in std::mem::take(&mut opts.validators) {
        let name = extra.name.clone();
        v.push((
            name,
            Box::new(move |b| ring_case_boxed(&extra.name, (extra.make)(), b)),
        ));
    }
    v.extend(crate::bpf_cases::cases());
    for (op, label) in [(UringOp::Nop, "nop"), (UringOp::Read64, "read64")] {
        for batch in BATCHES {
            let name = format!("io_uring/{label}/b{batch}");
            v.push((name, Box::new(move |b| uring_case(op, batch, false, b))));
        }
    }
    v.push((
        "io_uring-sqpoll/read64/b32".into(),
        Box::new(|b| uring_case(UringOp::Read64, 32, true, b)),
    ));
    for q in [Queue::Raw, Queue::RawPadded, Queue::Rtrb, Queue::Crossbeam] {
        v.push((q.name().into(), Box::new(move |b| spsc_case(q, b))));
    }
    for threads in [1, 2, 4] {
        v.push((
            format!("call/read64/t{threads}"),
            Box::new(move |b| dispatch_cases::call_case(threads, b)),
        ));
    }
    v.push((
        format!("async/read64/tasks{}", dispatch_cases::TASKS),
        Box::new(dispatch_cases::async_case),
    ));
    v.push((
        format!(
            "tokio-spawn_blocking/pread64/tasks{}",
            dispatch_cases::TASKS
        ),
        Box::new(dispatch_cases::spawn_blocking_case),
    ));
    v.push((
        format!("io_uring/read64/depth{}", dispatch_cases::TASKS),
        Box::new(dispatch_cases::uring_depth_case),
    ));
    v
}

/// Names of every case `opts` would run (before the filter).
pub fn case_names(opts: &mut Options) -> Vec<String> {
    let mut names: Vec<String> = cases(opts).into_iter().map(|(n, _)| n).collect();
    names.extend(kmod::CASES.iter().map(|s| s.to_string()));
    names
}

/// Runs every case that passes the filter, in one process, `opts.rounds` times
/// round-robin, and compares them.
pub fn run_all(mut opts: Options) -> Report {
    let filter = opts.filter.clone();
    let keep = |name: &str| {
        filter
            .as_deref()
            .is_none_or(|f| f.split(',').any(|f| name.contains(f)))
    };
    let runners: Vec<(String, Runner)> = cases(&mut opts)
        .into_iter()
        .filter(|(name, _)| keep(name))
        .collect();
    let rounds = opts.rounds.max(1);
    let budget = opts.budget.divided(rounds);
    let mut results: Vec<CaseResult> = run_rounds(&runners, rounds, &budget, opts.progress)
        .into_iter()
        .filter_map(median_round)
        .collect();
    results.extend(
        kmod::rows(opts.kmod_results.as_deref())
            .into_iter()
            .filter(|c| keep(&c.name)),
    );
    let ratios = ratios(&results);
    Report {
        machine: machine(),
        date: today(),
        budget: if opts.budget.measure == Budget::QUICK.measure {
            "quick".into()
        } else {
            "full".into()
        },
        rounds,
        cases: results,
        ratios,
    }
}

/// Runs every case once per round, round-robin (all cases of round 1, then of round 2, ...),
/// and returns each case's rounds in run order.
pub fn run_rounds<F: Fn(&Budget) -> CaseResult>(
    cases: &[(String, F)],
    rounds: u32,
    budget: &Budget,
    progress: bool,
) -> Vec<Vec<CaseResult>> {
    let mut per_case: Vec<Vec<CaseResult>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for ((name, run), results) in cases.iter().zip(&mut per_case) {
            if progress {
                eprintln!("round {round}/{rounds}: {name}");
            }
            results.push(run(budget));
        }
    }
    per_case
}

/// The lower middle of `xs` (not empty) by value.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// The round with the median throughput (the lower middle of an even count), its note
/// extended with every round's throughput in run order.
pub fn median_round(mut rounds: Vec<CaseResult>) -> Option<CaseResult> {
    if rounds.len() <= 1 {
        return rounds.pop();
    }
    let all: Vec<String> = rounds.iter().map(|c| si(c.ops_per_sec)).collect();
    let ops: Vec<f64> = rounds.iter().map(|c| c.ops_per_sec).collect();
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| rounds[a].ops_per_sec.total_cmp(&rounds[b].ops_per_sec));
    let mid = order[(order.len() - 1) / 2];
    let failed = rounds.iter().any(|c| c.note.contains("FAILED"));
    let mut median = rounds.swap_remove(mid);
    median.round_ops_per_sec = ops;
    let _ = write!(
        median.note,
        "; median of {} rounds ({}/s)",
        all.len(),
        all.join(", ")
    );
    if failed && !median.note.contains("FAILED") {
        median
            .note
            .push_str("; FAILED completions in another round");
    }
    Some(median)
}

/// The pairs compared, with their targets: (case, baseline, target).
fn pairs() -> Vec<(String, String, Option<f64>)> {
    let mut p = Vec::new();
    for b in BATCHES {
        let t = |x: f64| (b == 32).then_some(x);
        p.push((
            format!("ring/read64/b{b}"),
            "syscall/pread64".into(),
            t(10.0),
        ));
        p.push((
            format!("ring/write64/b{b}"),
            "syscall/pwrite64".into(),
            None,
        ));
        p.push((
            format!("ring/nop/b{b}"),
            format!("io_uring/nop/b{b}"),
            t(3.0),
        ));
        p.push((
            format!("ring/read64/b{b}"),
            format!("io_uring/read64/b{b}"),
            None,
        ));
    }
    p.push((
        "ring/read64/b32".into(),
        "io_uring-sqpoll/read64/b32".into(),
        None,
    ));
    p.push((
        "ring-novalidate/read64/b32".into(),
        "ring/read64/b32".into(),
        None,
    ));
    // The adaptive idle policy against the old fixed 10 ms spin: the same full-load
    // throughput, and far more requests per CPU-second under a light load.
    p.push((
        "ring/nop/b32".into(),
        "ring-idle-fixed10ms/nop/b32".into(),
        None,
    ));
    p.push((
        format!("ring-light/adaptive/nop/{LIGHT_RATE}rps"),
        format!("ring-light/fixed10ms/nop/{LIGHT_RATE}rps"),
        Some(5.0),
    ));
    p.push((
        "ring+guard-jit/read64/b32".into(),
        "ring/read64/b32".into(),
        None,
    ));
    p.push((
        "ring+guard-interp/read64/b32".into(),
        "ring/read64/b32".into(),
        None,
    ));
    // Per-request calls from threads, and futures from tasks (issue 14).
    for t in [1, 2, 4] {
        p.push((
            format!("call/read64/t{t}"),
            "syscall/pread64".into(),
            Some(5.0),
        ));
        p.push((format!("call/read64/t{t}"), "ring/read64/b1".into(), None));
    }
    let tasks = dispatch_cases::TASKS;
    p.push((
        format!("async/read64/tasks{tasks}"),
        format!("tokio-spawn_blocking/pread64/tasks{tasks}"),
        Some(10.0),
    ));
    p.push((
        format!("async/read64/tasks{tasks}"),
        format!("io_uring/read64/depth{tasks}"),
        None,
    ));
    p.push(("ring/raw/entry64".into(), "rtrb/entry64".into(), Some(1.0)));
    p.push((
        "ring/raw/entry64".into(),
        "crossbeam/entry64".into(),
        Some(1.0),
    ));
    for (ring, base) in [
        ("kmod/ring/read64/b32", "kmod/ioctl/read64"),
        ("kmod/ring/nop/b32", "kmod/ioctl/nop"),
        ("kmod/ring-sqpoll/read64/b32", "kmod/ioctl/read64"),
        ("kmod/ring-sqpoll/nop/b32", "kmod/ioctl/nop"),
        ("kmod/ring-sqpoll/read64/b32", "kmod/pread/read64"),
    ] {
        p.push((ring.into(), base.into(), None));
    }
    p.extend(crate::bpf_cases::pairs());
    p
}

/// Every pair whose two sides were measured.
pub fn ratios(cases: &[CaseResult]) -> Vec<Ratio> {
    let find = |n: &str| cases.iter().find(|c| c.name == n && c.measured());
    pairs()
        .into_iter()
        .filter_map(|(case, baseline, target)| {
            let (c, b) = (find(&case)?, find(&baseline)?);
            let (cr, br) = (&c.round_ops_per_sec, &b.round_ops_per_sec);
            // Per round only when every round of both sides measured something.
            let paired = cr.len() > 1 && cr.len() == br.len();
            let per_round: Vec<f64> = if paired && cr.iter().chain(br).all(|&x| x > 0.0) {
                cr.iter().zip(br).map(|(c, b)| c / b).collect()
            } else {
                Vec::new()
            };
            let ratio = if per_round.is_empty() {
                c.ops_per_sec / b.ops_per_sec
            } else {
                median(&per_round)
            };
            Some(Ratio {
                met: target.map(|t| ratio >= t),
                case,
                baseline,
                ratio,
                per_round,
                target,
            })
        })
        .collect()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map_or("unknown CPU".to_owned(), |m| m.trim().to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {} CPUs, Linux {}",
        crate::affinity::cpus(),
        kernel.trim()
    )
}

/// Today's UTC date as `YYYY-MM-DD` (civil-from-days, no date crate needed).
fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2} G", x / 1e9),
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e3 => format!("{:.1} k", x / 1e3),
        x => format!("{x:.0} "),
    }
}

/// A latency for the table; 0 means not measured (the kmod rows carry throughput only).
fn ns(x: u64) -> String {
    if x == 0 {
        "-".into()
    } else if x >= 10_000 {
        format!("{:.1} us", x as f64 / 1e3)
    } else {
        format!("{x} ns")
    }
}

impl Report {
    /// The human-readable table: every case, then the ratios.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "machine: {}\ndate: {} ({} budget, median of {} round{} per case)\n",
            self.machine,
            self.date,
            self.budget,
            self.rounds,
            if self.rounds == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            s,
            "{:<30} {:>12} {:>10} {:>10} {:>8}  vs baseline",
            "case", "ops/s", "p50", "p99", ""
        );
        for c in &self.cases {
            let vs = self
                .ratios
                .iter()
                .find(|r| r.case == c.name)
                .map(|r| format!("{:.2}x {}", r.ratio, r.baseline))
                .unwrap_or_default();
            if c.measured() {
                let _ = writeln!(
                    s,
                    "{:<30} {:>12} {:>10} {:>10} {:>8}  {vs}",
                    c.name,
                    si(c.ops_per_sec),
                    ns(c.p50_ns),
                    ns(c.p99_ns),
                    ""
                );
            } else {
                let _ = writeln!(s, "{:<30} {}", c.name, c.note);
            }
        }
        let _ = writeln!(
            s,
            "\nratios{}:",
            if self.rounds > 1 {
                " (median of the per-round ratios, every round's in brackets)"
            } else {
                ""
            }
        );
        for r in &self.ratios {
            let target = match (r.target, r.met) {
                (Some(t), Some(true)) => format!("target >= {t}x: met"),
                (Some(t), _) => format!("target >= {t}x: MISSED"),
                _ => String::new(),
            };
            let rounds = if r.per_round.is_empty() {
                String::new()
            } else {
                let each: Vec<String> = r.per_round.iter().map(|x| format!("{x:.2}")).collect();
                format!("[{}]  ", each.join(", "))
            };
            let _ = writeln!(
                s,
                "  {:<28} / {:<28} {:>7.2}x  {rounds}{target}",
                r.case, r.baseline, r.ratio
            );
        }
        let _ = writeln!(s, "\nhow each case was measured:");
        for c in &self.cases {
            let _ = writeln!(s, "  {}: {}", c.name, c.note);
        }
        s
    }

    /// The JSON report.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}
