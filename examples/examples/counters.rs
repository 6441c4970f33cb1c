//! Shared counters in a kernel object, bumped from four threads without a system call per
//! request, then read back. Runs on the kernel module when it is loaded, in process
//! otherwise: `cargo run -p sbpf-examples --example counters`.

use std::thread;

use sbpf_ring::{op, BatchError, Ring};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring::builder().sq_entries(256).arena_size(4096).build()?;
    let counters = ring.create_object(64)?;
    let mut completions = ring.completions()?;
    println!("backend: {}", ring.backend());

    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 100_000;
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut submitter = ring.submitter();
            thread::spawn(move || {
                let batch: Vec<_> = (0..32)
                    .map(|_| op::FetchAdd64::new(counters, 8 * t, 1).build())
                    .collect();
                let mut sent = 0;
                while sent < PER_THREAD {
                    let want = (PER_THREAD - sent).min(32) as usize;
                    match submitter.submit_batch(&batch[..want]) {
                        Ok(n) => sent += n as u64,
                        Err(BatchError::Full) => thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();

    let mut done = 0;
    while done < THREADS * PER_THREAD {
        completions.wait(1, None)?;
        for c in completions.iter() {
            assert!(c.is_ok(), "{:?}", c.error());
            done += 1;
        }
    }
    for p in producers {
        p.join().expect("producer panicked");
    }

    let mut submitter = ring.submitter();
    for t in 0..THREADS {
        submitter.submit(op::Load64::new(counters, 8 * t).user_data(t).build())?;
    }
    completions.wait(THREADS as usize, None)?;
    for c in completions.iter() {
        println!("counter {}: {}", c.user_data(), c.value());
        assert_eq!(c.value(), PER_THREAD);
    }
    println!("stats: {:?}", ring.stats());
    Ok(())
}
