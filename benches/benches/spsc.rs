//! Criterion: the ring's raw SPSC protocol over `HeapRings` against rtrb and crossbeam's
//! `ArrayQueue<[u8; 64]>`, producer and consumer threads on their own cores. One iteration
//! transfers a fixed element count, timed from the threads' common start (thread start-up
//! excluded); throughput is per element.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sbpf_benches::spsc::{transfer, Queue};

const ELEMENTS: u64 = 200_000;

fn spsc(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc");
    group
        .throughput(Throughput::Elements(ELEMENTS))
        .sample_size(20);
    for q in [Queue::Raw, Queue::RawPadded, Queue::Rtrb, Queue::Crossbeam] {
        group.bench_function(q.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| transfer(q, ELEMENTS)).sum::<Duration>())
        });
    }
    group.finish();
}

criterion_group!(benches, spsc);
criterion_main!(benches);
