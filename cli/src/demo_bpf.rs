//! `sbpf-ring demo --bpf`: the main job on BPF maps, the tables XDP, tc and tracing
//! programs read. Several producers add into an array map's values through one ring while
//! the consumer drains completions; then a hash map is filled and thinned out by key. A BPF
//! program in the kernel ([`sbpf_ring::bpf::Probe`]) checks every result, as any BPF
//! program using the maps would see them.

use std::{
    os::fd::AsFd,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use sbpf_guard::{Engine, Guard, Stage};
use sbpf_ring::{
    abi::{MAP_ANY, MAP_NOEXIST},
    bpf::{self, map_type, Map, Probe},
    op, BackendChoice, CompletionQueue, Ring, Sqe, SubmitError, Submitter,
};

/// Bytes of one hash element in the arena: an 8-byte key, then the 8-byte value.
const ELEM: u64 = 16;

/// What the BPF demo did; the text summary, or its JSON.
#[derive(Debug, serde::Serialize)]
struct Summary {
    backend: String,
    array_path: String,
    hash_path: String,
    producers: u64,
    fetch_adds: u64,
    fetch_add_ops_per_sec: f64,
    hash_updates: u64,
    hash_deletes: u64,
    failed_completions: u64,
    mismatches: Vec<String>,
    verified: bool,
}

/// Runs the demo; `Ok(true)` when the BPF program saw exactly what the ring wrote.
pub fn run(
    choice: BackendChoice,
    producers: u64,
    iterations: u64,
    sq_entries: u32,
    json: bool,
    out: &mut impl std::io::Write,
) -> Result<bool, String> {
    bpf::permitted().map_err(|e| format!("demo --bpf needs bpf(): {e}"))?;
    fn map_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    // Element 0 counts everyone's additions, element p + 1 producer p's.
    let counters = Map::create(map_type::ARRAY, 4, 8, producers as u32 + 1, bpf::F_MMAPABLE)
        .map_err(map_err("BPF_MAP_CREATE array"))?;
    let hash_entries = iterations.clamp(1, 4096);
    let table = Map::create(map_type::HASH, 8, 8, hash_entries as u32, 0)
        .map_err(map_err("BPF_MAP_CREATE hash"))?;
    let counters_probe =
        Probe::load(counters.as_fd()).map_err(map_err("loading the BPF program"))?;
    let table_probe = Probe::load(table.as_fd()).map_err(map_err("loading the BPF program"))?;

    let ring = Ring::builder()
        .backend(choice)
        .sq_entries(sq_entries)
        .arena_size((hash_entries * ELEM).next_multiple_of(4096))
        .build()
        .map_err(|e| format!("cannot set up the ring: {e}"))?;
    let array = ring.attach_bpf_map(&counters).map_err(|e| e.to_string())?;
    let hash = ring.attach_bpf_map(&table).map_err(|e| e.to_string())?;
    let path = |id| {
        ring.bpf_map(id)
            .map_or_else(|| "?".to_owned(), |m| format!("{:?}", m.path))
    };
    if !json {
        eprintln!(
            "sbpf-ring demo --bpf: {} backend, array map ({}) and hash map ({}), {producers} \
             producers x {iterations} iterations",
            ring.backend(),
            path(array),
            path(hash),
        );
    }
    let guard = Guard::new([Stage::bounds(Engine::Jit)]);
    let mut cq = ring.completions().map_err(|e| e.to_string())?;
    let mut failed = 0u64;

    // Phase 1: concurrent FETCH_ADD64 into the array's values.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..producers)
        .map(|p| {
            let mut s = ring.submitter_with(guard.clone());
            let stop = Arc::clone(&stop);
            thread::spawn(move || -> Result<(), String> {
                for _ in 0..iterations {
                    submit(&mut s, op::FetchAdd64::new(array, 0, 1).build(), &stop)?;
                    submit(
                        &mut s,
                        op::FetchAdd64::new(array, (p + 1) * 8, 1).build(),
                        &stop,
                    )?;
                }
                Ok(())
            })
        })
        .collect();
    let fetch_adds = 2 * producers * iterations;
    if let Err(e) = drain(&mut cq, fetch_adds, &mut failed) {
        stop.store(true, Ordering::Relaxed);
        return Err(e);
    }
    let elapsed = started.elapsed();
    for w in workers {
        w.join().map_err(|_| "a producer panicked".to_owned())??;
    }

    let mut mismatches = Vec::new();
    let mut check = |what: String, got: std::io::Result<Option<u64>>, want: Option<u64>| match got {
        Ok(g) if g == want => {}
        Ok(g) => mismatches.push(format!("{what}: the BPF program saw {g:?}, want {want:?}")),
        Err(e) => mismatches.push(format!("{what}: {e}")),
    };
    check(
        "array[0]".into(),
        counters_probe.lookup_u64(&0u32.to_ne_bytes(), 0),
        Some(producers * iterations),
    );
    for p in 0..producers {
        let k = (p as u32 + 1).to_ne_bytes();
        check(
            format!("array[{}]", p + 1),
            counters_probe.lookup_u64(&k, 0),
            Some(iterations),
        );
    }

    // Phase 2: fill the hash map by key, then delete every third element.
    let arena = ring.arena();
    let mut s = ring.submitter_with(guard);
    let never = AtomicBool::new(false);
    let key_of = |i: u64| 0x5eed_0000_0000 + i;
    for i in 0..hash_entries {
        let mut elem = [0u8; ELEM as usize];
        elem[..8].copy_from_slice(&key_of(i).to_ne_bytes());
        elem[8..].copy_from_slice(&(i * i).to_ne_bytes());
        arena.write(i * ELEM, &elem).map_err(|e| e.to_string())?;
    }
    let updates: Vec<Sqe> = (0..hash_entries)
        .map(|i| op::MapUpdate::new(hash, i * ELEM, ELEM as u32, MAP_NOEXIST).build())
        .collect();
    submit_all(&mut s, &mut cq, &updates, &never, &mut failed)?;
    let deletes: Vec<Sqe> = (0..hash_entries)
        .step_by(3)
        .map(|i| op::MapDelete::new(hash, i * ELEM, 8).build())
        .collect();
    submit_all(&mut s, &mut cq, &deletes, &never, &mut failed)?;
    for i in 0..hash_entries {
        let k = key_of(i).to_ne_bytes();
        let want = (i % 3 != 0).then_some(i * i);
        check(format!("hash[{i}]"), table_probe.lookup_u64(&k, 0), want);
        let syscall = table
            .lookup(&k)
            .map(|v| v.map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap())));
        check(format!("hash[{i}] by BPF_MAP_LOOKUP_ELEM"), syscall, want);
    }
    // An update with MAP_ANY on a deleted key brings it back.
    arena
        .write(0, &key_of(0).to_ne_bytes())
        .map_err(|e| e.to_string())?;
    submit_all(
        &mut s,
        &mut cq,
        &[op::MapUpdate::new(hash, 0, ELEM as u32, MAP_ANY).build()],
        &never,
        &mut failed,
    )?;
    check(
        "hash[0] after MAP_ANY".into(),
        table_probe.lookup_u64(&key_of(0).to_ne_bytes(), 0),
        Some(0),
    );

    mismatches.truncate(20);
    let summary = Summary {
        backend: ring.backend().to_string(),
        array_path: path(array),
        hash_path: path(hash),
        producers,
        fetch_adds,
        fetch_add_ops_per_sec: fetch_adds as f64 / elapsed.as_secs_f64(),
        hash_updates: hash_entries + 1,
        hash_deletes: deletes.len() as u64,
        failed_completions: failed,
        verified: mismatches.is_empty() && failed == 0,
        mismatches,
    };
    let text = if json {
        serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
    } else {
        format!(
            "{} FETCH_ADD64s into an array map at {:.1} M/s, {} hash updates and {} \
             deletes; failed completions: {}; checked by a BPF program: {}{}",
            summary.fetch_adds,
            summary.fetch_add_ops_per_sec / 1e6,
            summary.hash_updates,
            summary.hash_deletes,
            summary.failed_completions,
            if summary.verified { "ok" } else { "MISMATCH" },
            summary
                .mismatches
                .iter()
                .map(|m| format!("\n  {m}"))
                .collect::<String>()
        )
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(summary.verified)
}

/// Submits one entry, retrying while the ring is full, until `stop`.
fn submit(s: &mut Submitter, mut e: Sqe, stop: &AtomicBool) -> Result<(), String> {
    loop {
        match s.submit(e) {
            Ok(()) => return Ok(()),
            Err(SubmitError::Full(back)) if !stop.load(Ordering::Relaxed) => {
                e = back;
                thread::yield_now();
            }
            Err(err) => return Err(format!("submit: {err}")),
        }
    }
}

/// Waits for `n` completions (bounded), counting the failed ones.
fn drain(cq: &mut CompletionQueue, n: u64, failed: &mut u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while seen < n {
        if Instant::now() > deadline {
            return Err(format!("only {seen} of {n} completions arrived"));
        }
        let _ = cq.wait(1, Some(Duration::from_millis(100)));
        for c in cq.iter() {
            seen += 1;
            *failed += u64::from(!c.is_ok());
        }
    }
    Ok(())
}

/// Submits `entries` in order, draining completions as the ring fills, then waits for all.
fn submit_all(
    s: &mut Submitter,
    cq: &mut CompletionQueue,
    entries: &[Sqe],
    stop: &AtomicBool,
    failed: &mut u64,
) -> Result<(), String> {
    let mut seen = 0u64;
    for &e in entries {
        let mut e = e;
        loop {
            match s.submit(e) {
                Ok(()) => break,
                Err(SubmitError::Full(back)) if !stop.load(Ordering::Relaxed) => {
                    e = back;
                    let _ = cq.wait(1, Some(Duration::from_millis(10)));
                    for c in cq.iter() {
                        seen += 1;
                        *failed += u64::from(!c.is_ok());
                    }
                }
                Err(err) => return Err(format!("submit: {err}")),
            }
        }
    }
    drain(cq, entries.len() as u64 - seen, failed)
}
