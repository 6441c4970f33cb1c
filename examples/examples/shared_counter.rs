//! One shared counter in a kernel object, bumped with `fetch_add` from 8 threads through
//! one ring. Each thread gets its own old values back (no per-thread ring, no completion
//! loop): together they are every number below the total exactly once.
//! `cargo run --release -p sbpf-examples --example shared_counter`.

use std::{thread, time::Instant};

use sbpf_ring::Ring;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 100_000;
    let ring = Ring::builder().sq_entries(256).arena_size(4096).build()?;
    let counter = ring.create_object(64)?;
    println!("backend: {}", ring.backend());

    let start = Instant::now();
    let mut olds: Vec<u64> = thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..PER_THREAD)
                        .map(|_| ring.fetch_add(counter, 0, 1))
                        .collect::<Result<Vec<u64>, _>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a counting thread panicked"))
            .collect::<Result<Vec<Vec<u64>>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let elapsed = start.elapsed();

    olds.sort_unstable();
    assert!(olds.iter().copied().eq(0..THREADS * PER_THREAD));
    let total = ring.load(counter, 0)?;
    assert_eq!(total, THREADS * PER_THREAD);
    let stats = ring.dispatcher()?.stats();
    println!(
        "{total} increments from {THREADS} threads in {elapsed:.2?} ({:.1} M/s); every old value seen once; {stats:?}",
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
    Ok(())
}
