//! Per-request calls and futures through the dispatcher, against their baselines:
//!
//! - `call/read64/t{1,2,4}`: `Ring::read_into` of 64 bytes (a pool buffer per thread)
//!   from 1, 2 and 4 threads through one local ring; throughput of all threads together,
//!   latency = one call on thread 0. Baselines: `syscall/pread64` (one `pread` per
//!   request) and `ring/read64/b1` (the raw submit/complete path, one thread).
//! - `async/read64/tasks64`: `read_into_async` from 64 tokio tasks on a two-worker
//!   runtime; `tokio-spawn_blocking/pread64/tasks64`: 64 tasks each awaiting
//!   `spawn_blocking(pread)`; `io_uring/read64/depth64`: the `io-uring` crate keeping 64
//!   reads of the same memfd in flight from one thread (what 64 tasks would give it).

use std::{
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use io_uring::{opcode, types, IoUring};
use sbpf_ring::Ring;

use crate::{result, syscall::memfd, Budget, CaseResult, Samples};

/// Tasks of the async cases.
pub const TASKS: usize = 64;

/// The ring cases' local ring: its poller pinned to the consumer core, this thread (and
/// the threads it spawns) to the producer core, as `ring/read64/b1` runs.
fn local_ring() -> Result<(Ring, sbpf_ring::ObjectId), sbpf_ring::Error> {
    crate::ring_cases::local_ring()
}

/// Runs `f(thread, stop)` on `threads` threads for the budget; returns (ops, elapsed).
fn threaded(
    threads: usize,
    budget: &Budget,
    f: impl Fn(usize, &AtomicBool) -> u64 + Sync,
) -> (u64, Duration) {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let mut elapsed = Duration::ZERO;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (f, stop, total) = (&f, &stop, &total);
            s.spawn(move || total.fetch_add(f(t, stop), Ordering::Relaxed));
        }
        std::thread::sleep(budget.warmup);
        let start = Instant::now();
        std::thread::sleep(budget.measure);
        stop.store(true, Ordering::Relaxed);
        elapsed = start.elapsed();
    });
    (total.load(Ordering::Relaxed), elapsed)
}

/// `call/read64/t<threads>`.
pub fn call_case(threads: usize, budget: &Budget) -> CaseResult {
    let name = format!("call/read64/t{threads}");
    let (ring, obj) = match local_ring() {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, 1, e.to_string()),
    };
    let pool = ring.buffers();
    // Warm-up and measurement in one run: count only what completes after the warm-up.
    let warm_until = Instant::now() + budget.warmup;
    let (ops, elapsed) = threaded(threads, budget, |t, stop| {
        let mut buf = pool.alloc(64).expect("a buffer per thread");
        let mut n = 0u64;
        let mut i = t as u64;
        while !stop.load(Ordering::Relaxed) {
            let (r, b) = ring.read_into(obj, (i % 64) * 64, buf);
            assert_eq!(r.expect("read"), 64);
            buf = b;
            i += 1;
            if Instant::now() >= warm_until {
                n += 1;
            }
        }
        n
    });
    let mut samples = Samples::with_capacity(budget.latency_samples);
    let until = Instant::now() + budget.latency_time;
    let mut buf = pool.alloc(64).expect("a buffer");
    while !samples.is_full() && Instant::now() < until {
        let t0 = Instant::now();
        let (r, b) = ring.read_into(obj, 0, buf);
        samples.record(t0.elapsed());
        assert_eq!(r.expect("read"), 64);
        buf = b;
    }
    let note = format!(
        "Ring::read_into of 64 B from {threads} thread(s) through one local ring, poller pinned \
         to the other core, callers to this one; latency = one call, alone"
    );
    result(&name, 1, ops, elapsed, samples, note)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Runs `TASKS` copies of `task(i, stop)` on a two-worker runtime for the budget; each
/// returns how many operations it completed after the warm-up.
fn tasks<F, Fut>(budget: &Budget, task: F) -> std::io::Result<(u64, Duration)>
where
    F: Fn(usize, Arc<AtomicBool>, Instant) -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let rt = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    let warm_until = Instant::now() + budget.warmup;
    let handles: Vec<_> = (0..TASKS)
        .map(|i| rt.spawn(task(i, Arc::clone(&stop), warm_until)))
        .collect();
    std::thread::sleep(budget.warmup);
    let start = Instant::now();
    std::thread::sleep(budget.measure);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let total = rt.block_on(async {
        let mut total = 0;
        for h in handles {
            total += h.await.expect("a task panicked");
        }
        total
    });
    Ok((total, elapsed))
}

/// `async/read64/tasks64`.
pub fn async_case(budget: &Budget) -> CaseResult {
    let name = format!("async/read64/tasks{TASKS}");
    let (ring, obj) = match local_ring() {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, 1, e.to_string()),
    };
    let d = ring.dispatcher().expect("dispatcher");
    let pool = ring.buffers();
    let run = tasks(budget, |i, stop, warm_until| {
        let (d, pool) = (d.clone(), pool.clone());
        async move {
            let mut buf = pool.alloc(64).expect("a buffer per task");
            let (mut n, mut k) = (0, i as u64);
            while !stop.load(Ordering::Relaxed) {
                let (r, b) = d.read_into_async(obj, (k % 64) * 64, buf).await;
                assert_eq!(r.expect("read"), 64);
                buf = b;
                k += 1;
                if Instant::now() >= warm_until {
                    n += 1;
                }
            }
            n
        }
    });
    match run {
        Ok((ops, elapsed)) => result(
            &name,
            1,
            ops,
            elapsed,
            Samples::with_capacity(0),
            format!("read_into_async of 64 B from {TASKS} tasks, 2 runtime workers, local ring (poller pinned to the other core); no latency samples"),
        ),
        Err(e) => CaseResult::unavailable(name, 1, e.to_string()),
    }
}

/// `tokio-spawn_blocking/pread64/tasks64`.
pub fn spawn_blocking_case(budget: &Budget) -> CaseResult {
    let name = format!("tokio-spawn_blocking/pread64/tasks{TASKS}");
    let file = match memfd() {
        Ok(f) => Arc::new(f),
        Err(e) => return CaseResult::unavailable(name, 1, e.to_string()),
    };
    let run = tasks(budget, |i, stop, warm_until| {
        let file = Arc::clone(&file);
        async move {
            let (mut n, mut k) = (0, i as u64);
            while !stop.load(Ordering::Relaxed) {
                let f = Arc::clone(&file);
                let off = ((k % 64) * 64) as libc::off_t;
                let r = tokio::task::spawn_blocking(move || {
                    let mut buf = [0u8; 64];
                    // SAFETY: `buf` is valid for 64 bytes for the whole call.
                    unsafe { libc::pread(f.as_raw_fd(), buf.as_mut_ptr().cast(), 64, off) }
                })
                .await
                .expect("spawn_blocking");
                assert_eq!(r, 64);
                k += 1;
                if Instant::now() >= warm_until {
                    n += 1;
                }
            }
            n
        }
    });
    match run {
        Ok((ops, elapsed)) => result(
            &name,
            1,
            ops,
            elapsed,
            Samples::with_capacity(0),
            format!("{TASKS} tasks each awaiting spawn_blocking(pread 64 B of a memfd), 2 runtime workers"),
        ),
        Err(e) => CaseResult::unavailable(name, 1, e.to_string()),
    }
}

/// `io_uring/read64/depth64`.
pub fn uring_depth_case(budget: &Budget) -> CaseResult {
    let name = format!("io_uring/read64/depth{TASKS}");
    let file = match memfd() {
        Ok(f) => f,
        Err(e) => return CaseResult::unavailable(name, 1, e.to_string()),
    };
    let mut ring = match IoUring::new(TASKS as u32 * 2) {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, 1, e.to_string()),
    };
    let fd = file.as_raw_fd();
    let mut bufs = vec![[0u8; 64]; TASKS];
    let push = |ring: &mut IoUring, bufs: &mut [[u8; 64]], slot: usize, k: u64| {
        let e = opcode::Read::new(types::Fd(fd), bufs[slot].as_mut_ptr(), 64)
            .offset((k % 64) * 64)
            .build()
            .user_data(slot as u64);
        // SAFETY: the buffer outlives the ring's use of it (drained below before return).
        unsafe { ring.submission().push(&e) }.expect("room for 64 in a 128-entry SQ");
    };
    for slot in 0..TASKS {
        push(&mut ring, &mut bufs, slot, slot as u64);
    }
    let run = |ring: &mut IoUring, bufs: &mut [[u8; 64]], until: Instant| {
        let mut n = 0u64;
        while Instant::now() < until {
            ring.submit_and_wait(1).expect("io_uring_enter");
            let done: Vec<(u64, i32)> = ring
                .completion()
                .map(|c| (c.user_data(), c.result()))
                .collect();
            for (slot, res) in done {
                assert_eq!(res, 64);
                push(ring, bufs, slot as usize, n);
                n += 1;
            }
        }
        n
    };
    run(&mut ring, &mut bufs, Instant::now() + budget.warmup);
    let start = Instant::now();
    let ops = run(&mut ring, &mut bufs, start + budget.measure);
    let elapsed = start.elapsed();
    // Drain what is in flight before the buffers go.
    let _ = ring.submit_and_wait(TASKS);
    result(
        &name,
        1,
        ops,
        elapsed,
        Samples::with_capacity(0),
        "io-uring crate, 64 reads of 64 B from a memfd kept in flight by one thread".to_owned(),
    )
}
