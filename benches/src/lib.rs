//! Side-by-side benchmarks of sbpf-ring: the ring against one system call per request,
//! against io_uring at the same batch size, and its raw SPSC transfer against rtrb and
//! crossbeam's `ArrayQueue`.
//!
//! Each case is one function that measures in process and returns a [`CaseResult`]:
//! throughput over a time budget (or a fixed element count for the SPSC cases), and
//! latency percentiles from samples whose kind the case's `note` states. [`report::run_all`]
//! runs every case in one process so the ratios compare like with like; `sbpf-ring bench`
//! (the CLI) is a thin wrapper around it. See `benches/README.md`.

use std::time::{Duration, Instant};

use serde::Serialize;

pub mod affinity;
pub mod bpf_cases;
pub mod dispatch_cases;
pub mod kmod;
pub mod plot;
pub mod report;
pub mod ring_cases;
pub mod spsc;
pub mod syscall;
pub mod uring;

/// The outcome of one case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Case name, e.g. `ring/read64/b32`.
    pub name: String,
    /// Completed requests (or transferred elements) per second.
    pub ops_per_sec: f64,
    /// Median latency in nanoseconds; what is timed is in `note`.
    pub p50_ns: u64,
    /// 99th percentile latency in nanoseconds.
    pub p99_ns: u64,
    /// Requests per submission (1 where there is no batching).
    pub batch: u32,
    /// How the case was measured, and anything that qualifies its numbers.
    pub note: String,
    /// The latency samples, for the distribution plot.
    #[serde(skip)]
    pub samples: Vec<u64>,
    /// Throughput of every round, in run order, when the case ran in more than one
    /// ([`report::median_round`]); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub round_ops_per_sec: Vec<f64>,
}

impl CaseResult {
    /// A case that could not run here, with the reason; it shows in the table with zeros.
    pub fn unavailable(name: impl Into<String>, batch: u32, why: impl Into<String>) -> Self {
        CaseResult {
            name: name.into(),
            ops_per_sec: 0.0,
            p50_ns: 0,
            p99_ns: 0,
            batch,
            note: format!("not measured: {}", why.into()),
            samples: Vec::new(),
            round_ops_per_sec: Vec::new(),
        }
    }

    /// Whether the case produced numbers.
    pub fn measured(&self) -> bool {
        self.ops_per_sec > 0.0
    }
}

/// How long each case runs.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Unmeasured run before the throughput phase.
    pub warmup: Duration,
    /// Length of the throughput phase.
    pub measure: Duration,
    /// Most latency samples per case.
    pub latency_samples: usize,
    /// Most time spent collecting latency samples per case.
    pub latency_time: Duration,
    /// Elements each SPSC case transfers.
    pub spsc_elements: u64,
}

impl Budget {
    /// About one second per case: all cases in well under two minutes on two cores.
    pub const QUICK: Budget = Budget {
        warmup: Duration::from_millis(100),
        measure: Duration::from_millis(500),
        latency_samples: 5_000,
        latency_time: Duration::from_millis(300),
        spsc_elements: 4_000_000,
    };

    /// The default run: a few seconds per case.
    pub const FULL: Budget = Budget {
        warmup: Duration::from_millis(300),
        measure: Duration::from_secs(2),
        latency_samples: 50_000,
        latency_time: Duration::from_secs(1),
        spsc_elements: 20_000_000,
    };

    /// This budget shared out over `rounds` runs of a case: each measures, samples and
    /// transfers `1/rounds` as much (the warm-up stays whole: every run starts cold).
    pub fn divided(self, rounds: u32) -> Budget {
        let n = rounds.max(1);
        Budget {
            warmup: self.warmup,
            measure: self.measure / n,
            latency_samples: (self.latency_samples / n as usize).max(1),
            latency_time: self.latency_time / n,
            spsc_elements: (self.spsc_elements / u64::from(n)).max(1),
        }
    }

    /// A tiny budget for tests of the harness itself.
    pub const SMOKE: Budget = Budget {
        warmup: Duration::from_millis(5),
        measure: Duration::from_millis(20),
        latency_samples: 50,
        latency_time: Duration::from_millis(10),
        spsc_elements: 20_000,
    };
}

/// Latency samples with a fixed capacity, so recording never allocates in the measured loop.
#[derive(Debug)]
pub struct Samples {
    values: Vec<u64>,
}

impl Samples {
    /// Room for `n` samples, allocated now.
    pub fn with_capacity(n: usize) -> Self {
        Samples {
            values: Vec::with_capacity(n.max(1)),
        }
    }

    /// Records one sample; silently drops it when full.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        if self.values.len() < self.values.capacity() {
            self.values.push(d.as_nanos() as u64);
        }
    }

    /// Whether the capacity is reached.
    pub fn is_full(&self) -> bool {
        self.values.len() == self.values.capacity()
    }

    /// The sorted samples and their p50 and p99 (zeros when empty).
    pub fn finish(mut self) -> (Vec<u64>, u64, u64) {
        self.values.sort_unstable();
        let p = |q: usize| {
            if self.values.is_empty() {
                0
            } else {
                self.values[(self.values.len() * q / 100).min(self.values.len() - 1)]
            }
        };
        let (p50, p99) = (p(50), p(99));
        (self.values, p50, p99)
    }
}

/// A deadline checked cheaply: the clock is read every `stride` calls.
#[derive(Debug)]
pub(crate) struct Deadline {
    end: Instant,
    calls: u32,
}

impl Deadline {
    pub(crate) fn after(d: Duration) -> Self {
        Deadline {
            end: Instant::now() + d,
            calls: 0,
        }
    }

    #[inline]
    pub(crate) fn passed(&mut self) -> bool {
        self.calls = self.calls.wrapping_add(1);
        self.calls % 16 == 0 && Instant::now() >= self.end
    }
}

/// Builds a result from a throughput count and latency samples.
pub(crate) fn result(
    name: &str,
    batch: u32,
    ops: u64,
    elapsed: Duration,
    samples: Samples,
    note: String,
) -> CaseResult {
    let (samples, p50_ns, p99_ns) = samples.finish();
    CaseResult {
        name: name.to_owned(),
        ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
        p50_ns,
        p99_ns,
        batch,
        note,
        samples,
        round_ops_per_sec: Vec::new(),
    }
}
