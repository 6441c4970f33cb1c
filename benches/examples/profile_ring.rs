//! A fixed amount of work on one ring case, for profilers (callgrind, perf):
//! `profile_ring [nop|read64|write64|fetch_add] [batch] [requests]`.

use sbpf_benches::ring_cases::{batch_entries, local_ring, pipelined, RingOp, SQ_ENTRIES};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = match args.get(1).map_or("read64", String::as_str) {
        "nop" => RingOp::Nop,
        "write64" => RingOp::Write64,
        "fetch_add" => RingOp::FetchAdd,
        _ => RingOp::Read64,
    };
    let batch: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let total: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (ring, obj) = local_ring().expect("local ring");
    let mut sub = ring.submitter();
    let mut cq = ring.completions().expect("completion queue");
    let entries = batch_entries(op, obj, batch);
    let start = std::time::Instant::now();
    let (done, failed) = pipelined(&mut sub, &mut cq, &entries, SQ_ENTRIES as usize, |d| {
        d < total
    });
    let t = start.elapsed();
    println!(
        "{} {done} requests ({failed} failed) in {t:?}: {:.0} ns/request",
        op.label(),
        t.as_nanos() as f64 / done as f64
    );
}
