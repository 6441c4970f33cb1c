//! Every object a ring may hold (64, the module's per-file limit) is usable through an eBPF
//! guard, which finds the entry's own object in its context, under both engines; on
//! whichever backend the environment selects (`SBPF_RING_BACKEND=kernel` in the QEMU
//! harness).

use std::time::{Duration, Instant};

use sbpf_guard::{Engine, Guard, Stage, Verdict};
use sbpf_ring::{op, Error, ObjectId, Ring, SubmitError};

#[test]
fn sixty_four_objects_each_pass_a_guard() {
    let ring = Ring::builder()
        .sq_entries(128)
        .arena_size(4096)
        .build()
        .expect("ring setup");
    // Sizes differ, so each entry is judged against its own object's size.
    let objects: Vec<ObjectId> = (0..64u64)
        .map(|i| ring.create_object(64 + 8 * i).unwrap())
        .collect();
    assert!(matches!(
        ring.create_object(8),
        Err(Error::TooManyObjects(64))
    ));
    let limits = ring.limits();
    for engine in [Engine::Jit, Engine::Interpreter] {
        let mut guard = Guard::new([Stage::bounds(engine)]);
        for (i, &obj) in objects.iter().enumerate() {
            let last = 56 + 8 * i as u64;
            let inside = op::FetchAdd64::new(obj, last, 1).build();
            assert_eq!(
                guard.evaluate(&inside, &limits),
                Verdict::Accept,
                "object {i} ({engine:?})"
            );
            let past = op::FetchAdd64::new(obj, last + 8, 1).build();
            assert!(
                matches!(
                    guard.evaluate(&past, &limits),
                    Verdict::Reject { code: 5, .. }
                ),
                "object {i} ({engine:?})"
            );
        }
    }
    // Through the ring: each object's last word, with the guard as the producer's check.
    let mut s = ring.submitter_with(Guard::new([Stage::bounds(Engine::Jit)]));
    let mut cq = ring.completions().unwrap();
    let mut done = Vec::new();
    for round in 0..2u64 {
        for (i, &obj) in objects.iter().enumerate() {
            let sqe = op::FetchAdd64::new(obj, 56 + 8 * i as u64, 1)
                .user_data(i as u64)
                .build();
            let mut sqe = sqe;
            loop {
                match s.submit(sqe) {
                    Ok(()) => break,
                    Err(SubmitError::Full(e)) => {
                        sqe = e;
                        let _ = cq.wait(1, Some(Duration::from_millis(100)));
                        done.extend(cq.iter());
                    }
                    Err(e) => panic!("object {i}: {e}"),
                }
            }
        }
        let want = 64 * (round as usize + 1);
        let start = Instant::now();
        while done.len() < want {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "completions missing"
            );
            let _ = cq.wait(1, Some(Duration::from_millis(100)));
            done.extend(cq.iter());
        }
    }
    // The second round saw the first round's add in every object.
    for c in &done[64..] {
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(c.value(), 1, "object {}", c.user_data());
    }
}
