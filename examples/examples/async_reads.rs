//! 100 000 reads of a kernel object from 64 tokio tasks, each with its own arena buffer
//! from the ring's pool; every read checks the bytes it got.
//! `cargo run --release -p sbpf-examples --example async_reads`.

use std::time::Instant;

use sbpf_ring::Ring;

const TASKS: u64 = 64;
const READS: u64 = 100_000;
const LEN: usize = 64;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring::builder()
        .sq_entries(256)
        .arena_size(1 << 20)
        .build()?;
    let table = ring.create_object(TASKS * 4096)?;
    println!("backend: {}", ring.backend());
    let d = ring.dispatcher()?;
    let pool = ring.buffers();

    // Fill the table: the byte at offset `o` is `o % 251`.
    for page in 0..TASKS {
        let mut buf = pool.alloc(4096).ok_or("no buffer")?;
        let bytes: Vec<u8> = (0..4096).map(|k| ((page * 4096 + k) % 251) as u8).collect();
        buf.write(&bytes)?;
        let (n, _) = d.write_from_async(table, page * 4096, buf).await;
        assert_eq!(n?, 4096);
    }

    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (d, pool) = (d.clone(), pool.clone());
            // The first READS % TASKS tasks take one read more, so the total is READS.
            let reads = READS / TASKS + u64::from(t < READS % TASKS);
            tokio::spawn(async move {
                let mut buf = pool.alloc(LEN).expect("a buffer per task");
                for i in 0..reads {
                    let at = t * 4096 + (i * LEN as u64) % 4032;
                    let (n, b) = d.read_into_async(table, at, buf).await;
                    assert_eq!(n.expect("read"), LEN);
                    assert_eq!(b.to_vec()[0], (at % 251) as u8);
                    buf = b;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed();
    println!(
        "{} reads of {LEN} B from {TASKS} tasks in {elapsed:.2?} ({:.2} M/s); {:?}",
        READS,
        READS as f64 / elapsed.as_secs_f64() / 1e6,
        d.stats()
    );
    Ok(())
}
