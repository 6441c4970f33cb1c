//! Criterion: NOP and 64-byte READ through the local ring (poller on the other core) at
//! batch 1 and 32, beside one `pread` of 64 bytes per request on a memfd. Each iteration
//! is one batch round trip (submit, wait for all, drain); throughput is per request.

use std::os::fd::AsRawFd;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sbpf_benches::{
    ring_cases::{batch_entries, local_ring, round_trip, RingOp},
    syscall::memfd,
};

fn ring(c: &mut Criterion) {
    let (ring, obj) = local_ring().expect("local ring");
    let mut sub = ring.submitter();
    let mut cq = ring.completions().expect("completion queue");
    let mut group = c.benchmark_group("ring");
    for op in [RingOp::Nop, RingOp::Read64] {
        for batch in [1u32, 32] {
            let entries = batch_entries(op, obj, batch);
            group.throughput(Throughput::Elements(u64::from(batch)));
            group.bench_function(BenchmarkId::new(op.label(), format!("b{batch}")), |b| {
                b.iter(|| assert_eq!(round_trip(&mut sub, &mut cq, &entries), 0))
            });
        }
    }
    group.finish();
    sbpf_benches::affinity::unpin_current();
}

fn syscall(c: &mut Criterion) {
    let file = memfd().expect("memfd");
    let fd = file.as_raw_fd();
    let mut buf = [0u8; 64];
    let mut group = c.benchmark_group("syscall");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pread64", |b| {
        b.iter(|| {
            // SAFETY: `buf` is valid for 64 bytes for the whole call.
            let r = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), 64, 0) };
            assert_eq!(r, 64);
        })
    });
    group.finish();
}

criterion_group!(benches, ring, syscall);
criterion_main!(benches);
