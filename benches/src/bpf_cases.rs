//! BPF map cases (issue 13): updates of a 1024 x 8-byte array map through the ring against
//! the `bpf()` system call one element at a time (`BPF_MAP_UPDATE_ELEM`), in batches of the
//! same size (`BPF_MAP_UPDATE_BATCH`), and against direct stores into the mmapped values
//! (`BPF_F_MMAPABLE`, the limit). Every figure is elements per second. Hash maps the same
//! way, where the local backend's path is one `bpf()` call per entry.
//!
//! Each case degrades to "not measured: ..." when `bpf()` is not permitted.

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use sbpf_ring::{
    abi::MAP_ANY,
    bpf::{self, map_type, Map},
    op, Sqe,
};

use crate::{
    result,
    ring_cases::{local_ring, measure, Measured, SQ_ENTRIES},
    Budget, CaseResult, Deadline, Samples,
};

/// Elements of every map the cases use.
pub const ELEMENTS: u32 = 1024;

/// Batch sizes compared.
pub const BATCHES: [u32; 3] = [1, 8, 32];

type Runner = Box<dyn Fn(&Budget) -> CaseResult>;

/// Which map a case updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `BPF_MAP_TYPE_ARRAY` with `BPF_F_MMAPABLE`, 4-byte keys and 8-byte values.
    Array,
    /// `BPF_MAP_TYPE_HASH`, 4-byte keys and 8-byte values, preallocated.
    Hash,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Array => "array",
            Kind::Hash => "hash",
        }
    }

    fn create(self) -> std::io::Result<Map> {
        match self {
            Kind::Array => Map::create(map_type::ARRAY, 4, 8, ELEMENTS, bpf::F_MMAPABLE),
            Kind::Hash => Map::create(map_type::HASH, 4, 8, ELEMENTS, 0),
        }
    }
}

/// Every BPF map case, named, in run order.
pub fn cases() -> Vec<(String, Runner)> {
    let mut v: Vec<(String, Runner)> = Vec::new();
    for kind in [Kind::Array, Kind::Hash] {
        let k = kind.label();
        v.push((
            format!("bpf/{k}/update_elem"),
            Box::new(move |b| update_elem_case(kind, b)),
        ));
        for batch in BATCHES {
            v.push((
                format!("bpf/{k}/update_batch/b{batch}"),
                Box::new(move |b| update_batch_case(kind, batch, b)),
            ));
            v.push((
                format!("ring/bpf-{k}/update/b{batch}"),
                Box::new(move |b| ring_case(kind, batch, b)),
            ));
        }
    }
    v.push(("bpf/array/mmap_store".into(), Box::new(mmap_store_case)));
    v
}

/// The pairs compared: (case, baseline, target).
pub fn pairs() -> Vec<(String, String, Option<f64>)> {
    let mut p = Vec::new();
    for kind in [Kind::Array, Kind::Hash] {
        let k = kind.label();
        for b in BATCHES {
            // The targets, at batch 32 as the ring's other targets are.
            let array32 = kind == Kind::Array && b == 32;
            p.push((
                format!("ring/bpf-{k}/update/b{b}"),
                format!("bpf/{k}/update_elem"),
                array32.then_some(10.0),
            ));
            p.push((
                format!("ring/bpf-{k}/update/b{b}"),
                format!("bpf/{k}/update_batch/b{b}"),
                array32.then_some(1.0),
            ));
        }
    }
    p.push((
        "ring/bpf-array/update/b32".into(),
        "bpf/array/mmap_store".into(),
        None,
    ));
    // The QEMU harness's rows (kmod/tests/bpfmap.c), emulated: ratios only.
    for k in ["array", "hash"] {
        for ring in ["ring", "ring-sqpoll"] {
            for base in ["update_elem", "update_batch/b32"] {
                p.push((
                    format!("kmod/{ring}/bpf-{k}/update/b32"),
                    format!("kmod/bpf/{k}/{base}"),
                    None,
                ));
            }
        }
    }
    p
}

/// The map, or why the case cannot run.
fn map_or_reason(kind: Kind) -> Result<Map, String> {
    bpf::permitted().map_err(|e| format!("bpf() not permitted: {e}"))?;
    kind.create()
        .map_err(|e| format!("BPF_MAP_CREATE {}: {e}", kind.label()))
}

/// Runs `step` (which handles some elements and returns how many) through a warm-up, a
/// throughput phase and latency samples of one step each.
fn timed(
    name: &str,
    batch: u32,
    budget: &Budget,
    note: String,
    mut step: impl FnMut(u64) -> u64,
) -> CaseResult {
    let mut i = 0u64;
    let mut warm = Deadline::after(budget.warmup);
    while !warm.passed() {
        i += step(i);
    }
    let mut deadline = Deadline::after(budget.measure);
    let start = Instant::now();
    let mut done = 0u64;
    while !deadline.passed() {
        done += step(i + done);
    }
    let elapsed = start.elapsed();
    let mut samples = Samples::with_capacity(budget.latency_samples);
    let until = Instant::now() + budget.latency_time;
    while !samples.is_full() && Instant::now() < until {
        let t0 = Instant::now();
        i += step(i);
        samples.record(t0.elapsed());
    }
    result(name, batch, done, elapsed, samples, note)
}

fn update_elem_case(kind: Kind, budget: &Budget) -> CaseResult {
    let name = format!("bpf/{}/update_elem", kind.label());
    let map = match map_or_reason(kind) {
        Ok(m) => m,
        Err(why) => return CaseResult::unavailable(name, 1, why),
    };
    let note = "one bpf(BPF_MAP_UPDATE_ELEM) per element; latency = one call".to_owned();
    timed(&name, 1, budget, note, |i| {
        let key = ((i % u64::from(ELEMENTS)) as u32).to_ne_bytes();
        map.update(&key, &i.to_ne_bytes(), MAP_ANY)
            .expect("BPF_MAP_UPDATE_ELEM");
        1
    })
}

fn update_batch_case(kind: Kind, batch: u32, budget: &Budget) -> CaseResult {
    let name = format!("bpf/{}/update_batch/b{batch}", kind.label());
    let map = match map_or_reason(kind) {
        Ok(m) => m,
        Err(why) => return CaseResult::unavailable(name, batch, why),
    };
    let mut keys = vec![0u8; 4 * batch as usize];
    let mut values = vec![0u8; 8 * batch as usize];
    let note = format!(
        "one bpf(BPF_MAP_UPDATE_BATCH) per {batch} elements; figure = elements/s; latency = \
         one call"
    );
    timed(&name, batch, budget, note, |i| {
        for j in 0..batch as usize {
            let k = ((i + j as u64) % u64::from(ELEMENTS)) as u32;
            keys[4 * j..4 * j + 4].copy_from_slice(&k.to_ne_bytes());
            values[8 * j..8 * j + 8].copy_from_slice(&i.to_ne_bytes());
        }
        let n = map
            .update_batch(&keys, &values, MAP_ANY)
            .expect("BPF_MAP_UPDATE_BATCH");
        u64::from(n)
    })
}

fn mmap_store_case(budget: &Budget) -> CaseResult {
    let name = "bpf/array/mmap_store";
    let map = match map_or_reason(Kind::Array) {
        Ok(m) => m,
        Err(why) => return CaseResult::unavailable(name, 1, why),
    };
    let len = (u64::from(ELEMENTS) * 8).next_multiple_of(4096) as usize;
    let mapping = match memmap2::MmapOptions::new()
        .len(len)
        .map_raw(map.as_fd().as_raw_fd())
    {
        Ok(m) => m,
        Err(e) => return CaseResult::unavailable(name, 1, format!("mmap of the map: {e}")),
    };
    let base = mapping.as_mut_ptr().cast::<AtomicU64>();
    let note = "relaxed 8-byte stores into the mmapped values, 1024 per step; the limit".to_owned();
    timed(name, 1, budget, note, |i| {
        for j in 0..u64::from(ELEMENTS) {
            // SAFETY: `j < ELEMENTS`, so the word is inside the mapping, which is
            // page-aligned and lives until `mapping` drops after the case; the kernel and
            // BPF programs access it concurrently, so the store is atomic.
            unsafe { (*base.add(j as usize)).store(i + j, Ordering::Relaxed) };
        }
        u64::from(ELEMENTS)
    })
}

fn ring_case(kind: Kind, batch: u32, budget: &Budget) -> CaseResult {
    let name = format!("ring/bpf-{}/update/b{batch}", kind.label());
    let map = match map_or_reason(kind) {
        Ok(m) => m,
        Err(why) => return CaseResult::unavailable(name, batch, why),
    };
    let (ring, _) = match local_ring() {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, batch, e.to_string()),
    };
    let obj = match ring.attach_bpf_map(&map) {
        Ok(o) => o,
        Err(e) => return CaseResult::unavailable(name, batch, e.to_string()),
    };
    let path = ring.bpf_map(obj).map(|m| m.path);
    // Array: STORE64 into element i; hash: MAP_UPDATE with key i and its value in arena
    // slot i (12 bytes in 16).
    let entries: Vec<Sqe> = (0..u64::from(batch))
        .map(|i| match kind {
            Kind::Array => op::Store64::new(obj, i * 8, i).user_data(i).build(),
            Kind::Hash => {
                let mut slot = [0u8; 12];
                slot[..4].copy_from_slice(&(i as u32).to_ne_bytes());
                slot[4..].copy_from_slice(&i.to_ne_bytes());
                ring.arena().write(i * 16, &slot).expect("arena");
                op::MapUpdate::new(obj, i * 16, 12, MAP_ANY)
                    .user_data(i)
                    .build()
            }
        })
        .collect();
    let mut sub = ring.submitter();
    let mut cq = ring.completions().expect("first completion queue");
    let depth = SQ_ENTRIES as usize;
    let Measured {
        done,
        failed,
        elapsed,
        samples,
    } = measure(&mut sub, &mut cq, &entries, budget);
    let mut note = format!(
        "local backend, map path {path:?}, poller on the other core, bounds validator; \
         pipelined (<= {depth} in flight); latency = batch round trip"
    );
    if failed > 0 {
        note.push_str(&format!("; {failed} FAILED completions"));
    }
    drop((sub, cq, ring));
    result(&name, batch, done, elapsed, samples, note)
}
