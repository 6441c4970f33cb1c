//! io_uring at the same batch sizes: NOP, and a 64-byte `Read` on the memfd into a plain
//! buffer. Throughput pipelined like the ring cases (<= 256 in flight, one `io_uring_enter`
//! per batch submitted); latency = batch round trip (`submit_and_wait(batch)`, drain).

use std::{os::fd::AsRawFd, time::Instant};

use io_uring::{opcode, squeue, types, IoUring};

use crate::{affinity, result, syscall::memfd, Budget, CaseResult, Deadline, Samples};

/// Submission queue size, as the ring cases'.
pub const ENTRIES: u32 = 256;

/// Which io_uring operation a case submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UringOp {
    /// `IORING_OP_NOP`.
    Nop,
    /// `IORING_OP_READ` of 64 bytes from the memfd.
    Read64,
}

fn entries(op: UringOp, fd: i32, buf: &mut [u8], batch: u32) -> Vec<squeue::Entry> {
    (0..u64::from(batch))
        .map(|i| match op {
            UringOp::Nop => opcode::Nop::new().build().user_data(i),
            UringOp::Read64 => {
                let b = ((i % 256) * 64) as usize;
                opcode::Read::new(types::Fd(fd), buf[b..].as_mut_ptr(), 64)
                    .offset((i % 64) * 64)
                    .build()
                    .user_data(i)
            }
        })
        .collect()
}

fn push_batch(ring: &mut IoUring, batch: &[squeue::Entry]) {
    loop {
        // SAFETY: every entry points into the case's buffer, which outlives the ring's use
        // of it (the ring is drained and dropped before the buffer).
        if unsafe { ring.submission().push_multiple(batch) }.is_ok() {
            return;
        }
        // Only with SQPOLL: entries counted as in flight may not have left the SQ yet.
        ring.submit().expect("io_uring_enter");
        ring.submitter()
            .squeue_wait()
            .expect("io_uring_enter(SQ_WAIT)");
    }
}

fn drain(ring: &mut IoUring, inflight: &mut usize, done: &mut u64, failed: &mut u64) {
    for cqe in ring.completion() {
        *inflight -= 1;
        *done += 1;
        *failed += u64::from(cqe.result() < 0);
    }
}

fn pipelined(
    ring: &mut IoUring,
    batch: &[squeue::Entry],
    mut keep_going: impl FnMut() -> bool,
) -> (u64, u64) {
    let (mut inflight, mut done, mut failed) = (0usize, 0u64, 0u64);
    let b = batch.len();
    while keep_going() {
        while inflight + b <= ENTRIES as usize {
            push_batch(ring, batch);
            ring.submit().expect("io_uring_enter");
            inflight += b;
        }
        if ring.completion().is_empty() {
            ring.submit_and_wait(1).expect("io_uring_enter");
        }
        drain(ring, &mut inflight, &mut done, &mut failed);
    }
    while inflight > 0 {
        ring.submit_and_wait(inflight).expect("io_uring_enter");
        drain(ring, &mut inflight, &mut done, &mut failed);
    }
    (done, failed)
}

/// `io_uring/<op>/b<batch>`, or with `sqpoll` the SQPOLL variant (its kernel thread pinned
/// to the consumer core).
pub fn uring_case(op: UringOp, batch: u32, sqpoll: bool, budget: &Budget) -> CaseResult {
    let label = match op {
        UringOp::Nop => "nop",
        UringOp::Read64 => "read64",
    };
    let prefix = if sqpoll {
        "io_uring-sqpoll"
    } else {
        "io_uring"
    };
    let name = format!("{prefix}/{label}/b{batch}");
    let cores = affinity::producer_consumer();
    let mut builder = IoUring::builder();
    if sqpoll {
        builder.setup_sqpoll(1000);
        if let Some((_, consumer)) = cores {
            builder.setup_sqpoll_cpu(consumer as u32);
        }
    }
    let mut ring = match builder.build(ENTRIES) {
        Ok(r) => r,
        Err(e) => return CaseResult::unavailable(name, batch, format!("io_uring setup: {e}")),
    };
    let file = match memfd() {
        Ok(f) => f,
        Err(e) => return CaseResult::unavailable(name, batch, format!("memfd_create: {e}")),
    };
    if let Some((producer, _)) = cores {
        affinity::pin_current(producer);
    }
    let mut buf = vec![0u8; 256 * 64];
    let batch_entries = entries(op, file.as_raw_fd(), &mut buf, batch);

    let mut warm = Deadline::after(budget.warmup);
    pipelined(&mut ring, &batch_entries, || !warm.passed());
    let mut deadline = Deadline::after(budget.measure);
    let start = Instant::now();
    let (done, mut failed) = pipelined(&mut ring, &batch_entries, || !deadline.passed());
    let elapsed = start.elapsed();

    let mut samples = Samples::with_capacity(budget.latency_samples);
    let until = Instant::now() + budget.latency_time;
    while !samples.is_full() && Instant::now() < until {
        let t0 = Instant::now();
        push_batch(&mut ring, &batch_entries);
        let mut left = batch_entries.len();
        while left > 0 {
            ring.submit_and_wait(left).expect("io_uring_enter");
            for cqe in ring.completion() {
                left -= 1;
                failed += u64::from(cqe.result() < 0);
            }
        }
        samples.record(t0.elapsed());
    }
    affinity::unpin_current();
    drop(ring);
    drop(buf);

    let mut note = format!(
        "throughput pipelined (<= {ENTRIES} in flight, one enter per batch); latency = batch \
         round trip (submit_and_wait {batch}, drain)"
    );
    if op == UringOp::Read64 {
        note.push_str("; Read on a memfd into a plain buffer");
    }
    if sqpoll {
        note.push_str("; SQPOLL thread on the other core");
    }
    if failed > 0 {
        note.push_str(&format!("; {failed} FAILED completions"));
    }
    result(&name, batch, done, elapsed, samples, note)
}
