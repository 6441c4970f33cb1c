//! The ring suite: every operation, every malformed entry, full rings, shutdown, producer
//! modes. Runs on the local backend here and on the kernel module under the QEMU harness.

mod common;

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{collect, ring, run_all, scaled, submit_draining};
use sbpf_ring::{
    abi::{opcode, MAX_IO_LEN},
    op, BatchError, BoundsValidator, CompletionQueue, Error, Limits, ObjectId, Rejection, Ring,
    Sqe, SubmitError, Validator,
};

/// Reads `len` bytes of `obj` at `off` through the ring (READ into arena offset 0).
fn read_object(
    ring: &Ring,
    cq: &mut CompletionQueue,
    obj: ObjectId,
    off: u64,
    len: u32,
) -> Vec<u8> {
    let done = run_all(
        ring,
        cq,
        &[op::Read::new(obj, off, 0, len).user_data(1).build()],
    );
    assert_eq!(done[0].result(), len as i32, "{:?}", done[0]);
    let mut out = vec![0; len as usize];
    ring.arena().read(0, &mut out).unwrap();
    out
}

#[test]
fn every_operation_gives_the_documented_result() {
    let ring = ring(16, 32, 8192);
    let obj = ring.create_object(4096).unwrap();
    let arena = ring.arena();
    let pattern: Vec<u8> = (0..128u32).map(|i| (i * 7 + 3) as u8).collect();
    arena.write(1024, &pattern).unwrap();
    let entries = [
        op::Nop::new().user_data(0).build(),
        op::Write::new(obj, 64, 1024, 128).user_data(1).build(),
        op::Read::new(obj, 64, 4096, 128).user_data(2).build(),
        op::Store64::new(obj, 512, 0xdead_beef).user_data(3).build(),
        op::Load64::new(obj, 512).user_data(4).build(),
        op::FetchAdd64::new(obj, 512, 2).user_data(5).build(),
        op::Cas64::new(obj, 512, 0xdead_bef1, 7)
            .user_data(6)
            .build(),
        op::Cas64::new(obj, 512, 0xdead_bef1, 9)
            .user_data(7)
            .build(),
        op::Load64::new(obj, 512).user_data(8).build(),
        // WRITE's bytes are visible to LOAD64 in native byte order.
        op::Load64::new(obj, 64).user_data(9).build(),
    ];
    let mut cq = ring.completions().unwrap();
    let done = run_all(&ring, &mut cq, &entries);
    let r: Vec<(i32, u64)> = done.iter().map(|c| (c.result(), c.value())).collect();
    assert_eq!(r[0], (0, 0));
    assert_eq!(r[1], (128, 0));
    assert_eq!(r[2], (128, 0));
    assert_eq!(r[3], (0, 0));
    assert_eq!(r[4], (0, 0xdead_beef));
    assert_eq!(r[5], (0, 0xdead_beef));
    assert_eq!(
        r[6],
        (1, 0xdead_bef1),
        "CAS with the right expected value swaps"
    );
    assert_eq!(r[7], (0, 7), "CAS with a stale expected value does not");
    assert_eq!(r[8], (0, 7));
    assert_eq!(r[9].1, u64::from_ne_bytes(pattern[..8].try_into().unwrap()));
    let mut back = vec![0; 128];
    arena.read(4096, &mut back).unwrap();
    assert_eq!(back, pattern);
    let stats = ring.stats();
    assert_eq!(stats.completed, entries.len() as u64);
    assert_eq!(stats.rejected, 0);
}

/// Every malformed variant of a valid entry, with the errno the consumer must answer.
fn malformed(obj: ObjectId, object_size: u64, arena_size: u64) -> Vec<(&'static str, Sqe, i32)> {
    let read = op::Read::new(obj, 0, 0, 64).build();
    let word = op::FetchAdd64::new(obj, 0, 1).build();
    let mut v: Vec<(&'static str, Sqe, i32)> = Vec::new();
    let mut with = |name, base: Sqe, f: &dyn Fn(&mut Sqe), errno: i32| {
        let mut e = base;
        f(&mut e);
        v.push((name, e, errno));
    };
    let (einval, efault, enoent) = (-libc::EINVAL, -libc::EFAULT, -libc::ENOENT);
    with(
        "unknown opcode",
        read,
        &|e| e.opcode = opcode::COUNT,
        einval,
    );
    with("opcode 255", read, &|e| e.opcode = 255, einval);
    with("entry flags", read, &|e| e.flags = 1, einval);
    with("resv0", read, &|e| e.resv0 = 1, einval);
    with("resv1", read, &|e| e.resv1 = 1 << 31, einval);
    with("resv2", word, &|e| e.resv2 = 5, einval);
    with(
        "nop with object",
        op::Nop::new().build(),
        &|e| e.obj_id = obj.0,
        einval,
    );
    with(
        "nop with value",
        op::Nop::new().build(),
        &|e| e.val = 1,
        einval,
    );
    with("read with val", read, &|e| e.val = 1, einval);
    with("read with cmp", read, &|e| e.cmp = 1, einval);
    with(
        "load with len",
        op::Load64::new(obj, 0).build(),
        &|e| e.len = 8,
        einval,
    );
    with(
        "store with arena_off",
        op::Store64::new(obj, 0, 1).build(),
        &|e| e.arena_off = 8,
        einval,
    );
    with("fetch_add with cmp", word, &|e| e.cmp = 1, einval);
    with(
        "cas with len",
        op::Cas64::new(obj, 0, 0, 1).build(),
        &|e| e.len = 1,
        einval,
    );
    with("unknown object", read, &|e| e.obj_id = 0x7fff_fff0, enoent);
    with("object id 0", word, &|e| e.obj_id = 0, enoent);
    with("read len 0", read, &|e| e.len = 0, einval);
    with(
        "read len above max",
        read,
        &|e| e.len = MAX_IO_LEN + 1,
        einval,
    );
    with(
        "read past object end",
        read,
        &|e| e.obj_off = object_size - 63,
        efault,
    );
    with(
        "read object offset overflow",
        read,
        &|e| e.obj_off = u64::MAX - 10,
        efault,
    );
    with(
        "read past arena end",
        read,
        &|e| e.arena_off = arena_size - 63,
        efault,
    );
    with(
        "read arena offset overflow",
        read,
        &|e| e.arena_off = u64::MAX,
        efault,
    );
    let write = op::Write::new(obj, 0, 0, 64).build();
    with(
        "write past object end",
        write,
        &|e| e.obj_off = object_size,
        efault,
    );
    with(
        "write past arena end",
        write,
        &|e| e.arena_off = arena_size,
        efault,
    );
    with("write len above max", write, &|e| e.len = u32::MAX, einval);
    with("fetch_add misaligned", word, &|e| e.obj_off = 4, einval);
    with(
        "cas misaligned",
        op::Cas64::new(obj, 1, 0, 1).build(),
        &|_| {},
        einval,
    );
    with(
        "load misaligned",
        op::Load64::new(obj, 7).build(),
        &|_| {},
        einval,
    );
    with(
        "store past end",
        op::Store64::new(obj, object_size, 9).build(),
        &|_| {},
        efault,
    );
    with(
        "fetch_add overflowing offset",
        word,
        &|e| e.obj_off = u64::MAX - 7,
        efault,
    );
    v
}

#[test]
fn every_malformed_entry_is_rejected_and_touches_nothing() {
    const OBJ: u64 = 4096;
    const ARENA: u64 = 8192;
    let ring = ring(8, 16, ARENA);
    let obj = ring.create_object(OBJ).unwrap();
    let arena = ring.arena();
    let obj_pattern: Vec<u8> = (0..OBJ).map(|i| (i % 251) as u8).collect();
    arena.write(0, &obj_pattern).unwrap();
    let mut cq = ring.completions().unwrap();
    let fill = run_all(
        &ring,
        &mut cq,
        &[op::Write::new(obj, 0, 0, OBJ as u32).user_data(0).build()],
    );
    assert_eq!(fill[0].result(), OBJ as i32);
    let arena_pattern: Vec<u8> = (0..ARENA).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    arena.write(0, &arena_pattern).unwrap();
    let before = ring.stats();

    let cases = malformed(obj, OBJ, ARENA);
    // The producer-side bounds validator refuses each of them without taking a slot.
    let mut guarded = ring.submitter_with(BoundsValidator);
    for (name, e, _) in &cases {
        match guarded.submit(*e) {
            Err(SubmitError::Rejected { entry, .. }) => assert_eq!(entry, *e, "{name}"),
            other => panic!("{name}: the producer's validator let it through: {other:?}"),
        }
    }
    assert_eq!(
        ring.stats().submitted,
        before.submitted,
        "rejected entries consumed slots"
    );

    // The consumer refuses each of them on its own copy, with the documented errno.
    let entries: Vec<Sqe> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, e, _))| Sqe {
            user_data: i as u64,
            ..*e
        })
        .collect();
    let done = run_all(&ring, &mut cq, &entries);
    for (c, (name, _, errno)) in done.iter().zip(&cases) {
        assert_eq!(c.result(), *errno, "{name}: {c:?}");
        assert_eq!(c.value(), 0, "{name}");
    }
    let stats = ring.stats();
    assert_eq!(stats.rejected - before.rejected, cases.len() as u64);
    assert_eq!(stats.completed - before.completed, cases.len() as u64);
    let per_reason = stats.rejected_opcode
        + stats.rejected_reserved
        + stats.rejected_object
        + stats.rejected_bounds
        + stats.rejected_align;
    assert_eq!(per_reason, stats.rejected);
    assert!(stats.rejected_opcode > 0 && stats.rejected_reserved > 0 && stats.rejected_object > 0);
    assert!(stats.rejected_bounds > 0 && stats.rejected_align > 0);

    let mut arena_now = vec![0; ARENA as usize];
    arena.read(0, &mut arena_now).unwrap();
    assert_eq!(arena_now, arena_pattern, "a rejected entry wrote the arena");
    assert_eq!(
        read_object(&ring, &mut cq, obj, 0, OBJ as u32),
        obj_pattern,
        "a rejected entry wrote the object"
    );
}

/// Accepts everything and counts how often it was asked.
#[derive(Clone)]
struct Counting(Arc<AtomicU64>);

impl Validator for Counting {
    fn validate(&mut self, _: &Sqe, _: &Limits) -> Result<(), Rejection> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn clone_box(&self) -> Box<dyn Validator> {
        Box::new(self.clone())
    }
}

/// Submits NOPs with ids 0, 1, ... until the ring has stayed full for a while (nobody
/// drains the CQ); returns how many were accepted.
fn fill_until_full(mut submit: impl FnMut(Sqe) -> Result<(), SubmitError>) -> u64 {
    let mut accepted = 0u64;
    let mut full_streak = 0;
    while full_streak < 20 {
        let e = op::Nop::new().user_data(accepted).build();
        match submit(e) {
            Ok(()) => {
                accepted += 1;
                full_streak = 0;
            }
            Err(SubmitError::Full(back)) => {
                assert_eq!(back, e, "Full must hand back the same entry");
                full_streak += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(other) => panic!("{other}"),
        }
        assert!(accepted <= 8, "more accepted than SQ + CQ can hold");
    }
    accepted
}

#[test]
fn full_submission_ring_hands_the_entry_back_and_loses_nothing() {
    // SQ 4, CQ 4, nobody draining: the consumer fills the CQ, then the SQ fills.
    let ring = ring(4, 4, 4096);
    let validations = Arc::new(AtomicU64::new(0));
    let mut s = ring.submitter_with(Counting(Arc::clone(&validations)));
    let mut cq = ring.completions().unwrap();
    let accepted = fill_until_full(|e| s.submit(e));
    assert_eq!(accepted, 8, "SQ (4) and CQ (4) both full");
    assert_eq!(
        validations.load(Ordering::Relaxed),
        8,
        "a full ring answers before the validator runs"
    );
    assert_eq!(
        s.submit_batch(&[op::Nop::new().build()])
            .unwrap_err()
            .to_string(),
        BatchError::Full.to_string()
    );
    assert_eq!(validations.load(Ordering::Relaxed), 8, "nor for a batch");
    let mut done = Vec::new();
    collect(&mut cq, &mut done, 8);
    let ids: Vec<u64> = done.iter().map(|c| c.user_data()).collect();
    assert_eq!(
        ids,
        (0..8).collect::<Vec<_>>(),
        "completions in order, exactly once"
    );
    assert!(
        ring.stats().cq_full > 0,
        "the consumer must have met a full CQ"
    );
    // And the ring works on after backpressure.
    let more = run_all(&ring, &mut cq, &[op::Nop::new().user_data(99).build()]);
    assert_eq!(more[0].user_data(), 99);
}

#[test]
fn a_single_producer_on_a_full_ring_answers_before_validating() {
    let ring = ring(4, 4, 4096);
    let validations = Arc::new(AtomicU64::new(0));
    let mut s = ring
        .single_submitter(Counting(Arc::clone(&validations)))
        .unwrap();
    let mut cq = ring.completions().unwrap();
    assert_eq!(fill_until_full(|e| s.submit(e)), 8);
    assert_eq!(validations.load(Ordering::Relaxed), 8);
    let mut done = Vec::new();
    collect(&mut cq, &mut done, 8);
    // Its cached view of the head catches up once there is room.
    s.submit(op::Nop::new().user_data(8).build()).unwrap();
    collect(&mut cq, &mut done, 9);
    assert_eq!(validations.load(Ordering::Relaxed), 9);
}

#[test]
fn batches_publish_together_and_refuse_as_a_whole() {
    let ring = ring(32, 64, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    let batch: Vec<Sqe> = (0..20)
        .map(|i| op::FetchAdd64::new(obj, 8, 1).user_data(i).build())
        .collect();
    assert_eq!(s.submit_batch(&batch).unwrap(), 20);
    let mut bad = batch.clone();
    bad[7].obj_off = 4096;
    match s.submit_batch(&bad) {
        Err(BatchError::Rejected { index, .. }) => assert_eq!(index, 7),
        other => panic!("{other:?}"),
    }
    let mut done = Vec::new();
    collect(&mut cq, &mut done, 20);
    // A batch larger than the ring publishes a prefix.
    let big: Vec<Sqe> = (0..40)
        .map(|i| op::Nop::new().user_data(100 + i).build())
        .collect();
    let n = s.submit_batch(&big).unwrap();
    assert!((1..=32).contains(&n), "published {n}");
    collect(&mut cq, &mut done, 20 + n);
    let mut s2 = ring.submitter();
    let load = op::Load64::new(obj, 8).user_data(1000).build();
    submit_draining(&mut s2, &mut cq, load, &mut done);
    collect(&mut cq, &mut done, 21 + n);
    let last = done.iter().find(|c| c.user_data() == 1000).unwrap();
    assert_eq!(last.value(), 20, "only the accepted batch ran");
}

#[test]
fn single_submitter_excludes_shared_producers() {
    let ring = ring(8, 16, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut single = ring.single_submitter(BoundsValidator).unwrap();
    assert!(matches!(
        ring.try_submitter_with(BoundsValidator),
        Err(Error::ProducerMode(_))
    ));
    let mut cq = ring.completions().unwrap();
    assert!(matches!(
        ring.completions(),
        Err(Error::CompletionQueueTaken)
    ));
    let n = scaled(10_000) as u64;
    let mut done = Vec::new();
    let mut i = 0;
    while i < n {
        match single.submit(op::FetchAdd64::new(obj, 0, 3).user_data(i).build()) {
            Ok(()) => i += 1,
            Err(SubmitError::Full(_)) => {
                let _ = cq.wait(1, Some(Duration::from_millis(50)));
                done.extend(cq.iter());
            }
            Err(e) => panic!("{e}"),
        }
    }
    collect(&mut cq, &mut done, n as usize);
    let olds: HashSet<u64> = done.iter().map(|c| c.value()).collect();
    assert_eq!(
        olds.len(),
        n as usize,
        "every FETCH_ADD saw a distinct old value"
    );
    assert_eq!(*olds.iter().max().unwrap(), 3 * (n - 1));
}

/// Without a poller (inline ENTER on the kernel backend), entries are consumed only by the
/// ENTER inside `wait`, so `wait` must enter at once instead of spinning first. With a
/// minute of spinning allowed, a `wait` that spun would take that minute; the bound is
/// half of it, so only that mistake, not a slow machine, fails the test. (On the local
/// backend the poller always runs, and its completions end the spin.)
#[test]
fn wait_without_a_poller_enters_at_once() {
    let spin = Duration::from_secs(60);
    let ring = Ring::builder()
        .sq_entries(16)
        .arena_size(4096)
        .sqpoll(false)
        .wait_spin(spin)
        .build()
        .expect("ring setup");
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    let start = std::time::Instant::now();
    for round in 0..3u64 {
        for i in 0..4 {
            s.submit(op::FetchAdd64::new(obj, 0, 1).user_data(i).build())
                .unwrap();
        }
        assert!(cq.wait(4, None).unwrap() >= 4);
        let values: Vec<u64> = cq.iter().map(|c| c.value()).collect();
        assert_eq!(values, (4 * round..4 * round + 4).collect::<Vec<_>>());
    }
    assert!(
        start.elapsed() < spin / 2,
        "wait spun before entering: {:?}",
        start.elapsed()
    );
}

#[test]
fn shutdown_completes_what_was_published_and_refuses_the_rest() {
    let ring = ring(64, 128, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    for i in 0..50 {
        s.submit(op::FetchAdd64::new(obj, 0, 1).user_data(i).build())
            .unwrap();
    }
    let report = ring.shutdown();
    assert!(report.returned.is_empty(), "the CQ had room for everything");
    let mut done = Vec::new();
    collect(&mut cq, &mut done, 50);
    match s.submit(op::Nop::new().user_data(7).build()) {
        Err(SubmitError::Closed(e)) => assert_eq!(e.user_data, 7),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        cq.wait(1, Some(Duration::from_millis(10))),
        Err(Error::Closed)
    ));
}

#[test]
fn objects_are_shared_between_rings() {
    let a = ring(8, 16, 4096);
    let b = ring(8, 16, 4096);
    let obj = a.create_object(128).unwrap();
    assert_eq!(b.attach_object(obj).unwrap(), 128);
    let (mut cqa, mut cqb) = (a.completions().unwrap(), b.completions().unwrap());
    run_all(
        &a,
        &mut cqa,
        &[op::Store64::new(obj, 16, 41).user_data(0).build()],
    );
    let done = run_all(
        &b,
        &mut cqb,
        &[op::FetchAdd64::new(obj, 16, 1).user_data(0).build()],
    );
    assert_eq!(done[0].value(), 41);
    b.detach_object(obj).unwrap();
    assert!(matches!(b.detach_object(obj), Err(Error::UnknownObject(_))));
    assert!(matches!(
        b.attach_object(ObjectId(0x7fff_fff0)),
        Err(Error::UnknownObject(_))
    ));
}

#[test]
fn bad_setup_arguments_are_refused() {
    for (sq, cq, arena) in [
        (3, 8, 4096),
        (0, 8, 4096),
        (8, 4, 4096),
        (8, 16, 100),
        (1 << 16, 1 << 17, 4096),
    ] {
        let r = Ring::builder()
            .sq_entries(sq)
            .cq_entries(cq)
            .arena_size(arena)
            .build();
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "({sq}, {cq}, {arena}) accepted"
        );
    }
    let ring = ring(8, 16, 4096);
    assert!(ring.create_object(0).is_err());
    assert!(ring.create_object(12).is_err());
    let arena = ring.arena();
    assert!(arena.write(4090, &[0; 7]).is_err());
    assert!(arena.read(u64::MAX, &mut [0; 1]).is_err());
}
