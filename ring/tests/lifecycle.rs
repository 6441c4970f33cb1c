//! The close protocol: what `shutdown`, dropping the `Ring` and dropping the
//! `CompletionQueue` do to every other handle, on whichever backend the environment selects
//! (`SBPF_RING_BACKEND=kernel` in the QEMU harness). Each test bounds its waits so that a
//! hang fails it instead of stalling the suite.

mod common;

use std::{
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use common::{collect, ring};
use sbpf_ring::{
    op, Completion, CompletionQueue, Error, ObjectId, OpError, Ring, Sqe, SubmitError, Submitter,
};

/// Generous bound for "promptly": a waiter woken by close returns well within it, one that
/// is not woken never does.
const PROMPTLY: Duration = Duration::from_secs(5);

/// Runs `f` on a thread and returns its result, or fails if it takes longer than `PROMPTLY`
/// after `trigger` ran.
fn returns_after<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    trigger: impl FnOnce(),
) -> T {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        ready_tx.send(()).unwrap();
        let _ = tx.send(f());
    });
    ready_rx.recv().unwrap();
    // Let the waiter reach its blocking call.
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    trigger();
    let out = rx
        .recv_timeout(PROMPTLY)
        .unwrap_or_else(|_| panic!("still blocked {PROMPTLY:?} after the close"));
    waiter.join().unwrap();
    assert!(start.elapsed() < PROMPTLY);
    out
}

#[test]
fn shutdown_wakes_a_waiter_blocked_without_timeout() {
    let ring = ring(16, 32, 4096);
    let mut cq = ring.completions().unwrap();
    let r = returns_after(
        move || cq.wait(1, None),
        || {
            assert!(ring.shutdown().returned.is_empty());
        },
    );
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}

#[test]
fn shutdown_wakes_a_waiter_long_before_its_timeout() {
    let ring = ring(16, 32, 4096);
    let mut cq = ring.completions().unwrap();
    let r = returns_after(
        move || cq.wait(1, Some(Duration::from_secs(600))),
        || {
            ring.shutdown();
        },
    );
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}

#[test]
fn dropping_the_ring_wakes_a_blocked_waiter() {
    let ring = ring(16, 32, 4096);
    let mut cq = ring.completions().unwrap();
    let r = returns_after(move || cq.wait(4, None), move || drop(ring));
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}

#[test]
fn a_waiter_gets_what_was_published_before_the_close() {
    let ring = ring(16, 32, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    for i in 0..3 {
        s.submit(op::FetchAdd64::new(obj, 0, 1).user_data(i).build())
            .unwrap();
    }
    ring.shutdown();
    // What was published is performed and its completions stay readable after the close.
    let mut done = Vec::new();
    collect(&mut cq, &mut done, 3);
    let values: Vec<u64> = done.iter().map(Completion::value).collect();
    assert_eq!(values, [0, 1, 2]);
    assert!(matches!(cq.wait(1, None), Err(Error::Closed)));
}

/// A producer in another thread that keeps submitting after the ring is dropped gets its
/// entry back as `Closed`, never `Full` forever, whether the completion queue went with
/// the ring or lives on.
#[test]
fn producers_see_closed_after_the_ring_drops() {
    for keep_cq in [false, true] {
        let ring = ring(8, 8, 4096);
        let obj = ring.create_object(64).unwrap();
        let mut s = ring.submitter();
        let cq = ring.completions().unwrap();
        let (tx, rx) = mpsc::channel();
        let producer = thread::spawn(move || {
            let mut fulls = 0u64;
            let start = Instant::now();
            for i in 0.. {
                match s.submit(op::FetchAdd64::new(obj, 0, 1).user_data(i).build()) {
                    Ok(()) => {}
                    Err(SubmitError::Full(_)) => fulls += 1,
                    Err(SubmitError::Closed(e)) => {
                        assert_eq!(e.user_data, i, "the entry handed back is ours");
                        let _ = tx.send((i, fulls));
                        return;
                    }
                    Err(e) => panic!("{e}"),
                }
                if start.elapsed() > PROMPTLY * 2 {
                    return;
                }
                if i == 100 {
                    let _ = tx.send((u64::MAX, 0));
                }
            }
        });
        // Let the producer fill the rings, then close.
        assert_eq!(rx.recv_timeout(PROMPTLY).unwrap().0, u64::MAX);
        let kept = keep_cq.then_some(cq);
        drop(ring);
        let (at, fulls) = rx
            .recv_timeout(PROMPTLY)
            .expect("the producer never saw Closed");
        assert!(at > 100, "closed at {at} after {fulls} Full answers");
        producer.join().unwrap();
        drop(kept);
    }
}

/// Dropping the completion queue closes the ring (no one can read its completions), and
/// what was published before is still performed.
#[test]
fn dropping_the_completion_queue_closes_the_ring() {
    let ring = ring(16, 16, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let cq = ring.completions().unwrap();
    // More than the completion ring holds: the rest is performed as completions are
    // discarded.
    let mut published = 0;
    for i in 0..16 {
        match s.submit(op::FetchAdd64::new(obj, 0, 1).user_data(i).build()) {
            Ok(()) => published += 1,
            Err(SubmitError::Full(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    drop(cq);
    assert!(matches!(
        s.submit(op::Nop::new().build()),
        Err(SubmitError::Closed(_))
    ));
    assert!(matches!(
        ring.completions(),
        Err(Error::CompletionQueueTaken)
    ));
    // Another ring reads the object: every published entry was performed once.
    let other = common::ring(8, 16, 4096);
    other.attach_object(obj).unwrap();
    let mut ocq = other.completions().unwrap();
    let done = common::run_all(
        &other,
        &mut ocq,
        &[op::Load64::new(obj, 0).user_data(0).build()],
    );
    assert_eq!(done[0].value(), published);
}

/// Shutdown with a completion ring that stays full: what was published and not performed
/// comes back in the report, and nothing is both performed and returned.
#[test]
fn shutdown_hands_back_what_a_full_completion_ring_kept_out() {
    let ring = ring(16, 16, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    let mut published = 0u64;
    // Fill the completion ring (16), then the submission ring (16) behind it.
    let start = Instant::now();
    while published < 32 && start.elapsed() < PROMPTLY {
        match s.submit(op::FetchAdd64::new(obj, 0, 1).user_data(published).build()) {
            Ok(()) => published += 1,
            Err(SubmitError::Full(_)) => thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(published, 32);
    let report = ring.shutdown();
    let mut done = Vec::new();
    done.extend(cq.iter());
    let performed: Vec<u64> = done.iter().map(Completion::user_data).collect();
    let returned: Vec<u64> = report.returned.iter().map(|e| e.user_data).collect();
    assert_eq!(performed, (0..16).collect::<Vec<_>>());
    assert_eq!(returned, (16..32).collect::<Vec<_>>());
}

/// An object lives while a ring holds it attached: another ring attaches it while one
/// does, and once the last holder detaches it (or drops) it is gone, every time.
#[test]
fn an_object_is_gone_once_its_last_holder_lets_go() {
    let (a, b) = (ring(8, 16, 4096), ring(8, 16, 4096));
    for _ in 0..50 {
        let obj = a.create_object(64).unwrap();
        a.store(obj, 0, 42).unwrap();
        assert_eq!(b.attach_object(obj).unwrap(), 64);
        a.detach_object(obj).unwrap();
        assert_eq!(b.load(obj, 0).unwrap(), 42, "b still holds it");
        b.detach_object(obj).unwrap();
        assert!(matches!(a.attach_object(obj), Err(Error::UnknownObject(_))));
        assert!(matches!(b.attach_object(obj), Err(Error::UnknownObject(_))));
    }
    let obj = a.create_object(64).unwrap();
    drop(a);
    assert!(matches!(b.attach_object(obj), Err(Error::UnknownObject(_))));
}

/// Submits every entry through `s`, with its own validator (unlike `common::run_all`,
/// which accepts everything), failing on any refusal; returns the completions ordered by
/// user_data, each checked to be a success.
fn run_validated(s: &mut Submitter, cq: &mut CompletionQueue, entries: &[Sqe]) -> Vec<Completion> {
    let mut done = Vec::new();
    for e in entries {
        common::submit_draining(s, cq, *e, &mut done);
    }
    collect(cq, &mut done, entries.len());
    done.sort_by_key(Completion::user_data);
    for (c, e) in done.iter().zip(entries) {
        assert_eq!(c.user_data(), e.user_data);
        assert!(c.is_ok(), "{c:?}: {:?}", c.fault());
    }
    done
}

/// Every one of a ring's 64 objects is usable through the default submitter: its
/// `BoundsValidator` accepts in-bounds entries for each (the limits it sees hold all 64,
/// not a prefix) and refuses out-of-bounds ones.
#[test]
fn a_ring_holds_64_objects_each_usable() {
    let ring = ring(64, 128, 4096);
    // Made before any object exists: it must see each one as it is attached.
    let mut s = ring.submitter();
    let objects: Vec<ObjectId> = (0..64)
        .map(|i| ring.create_object(64 + 8 * i).unwrap())
        .collect();
    assert!(matches!(
        ring.create_object(64),
        Err(Error::TooManyObjects(64))
    ));
    assert_eq!(ring.limits().objects().len(), 64);
    let mut cq = ring.completions().unwrap();
    // The last word of each object, so each object's own size is checked: stored, then
    // loaded back, both through the default validator.
    let last = |i: usize| 56 + 8 * i as u64;
    let stores: Vec<_> = objects
        .iter()
        .enumerate()
        .map(|(i, &obj)| {
            op::Store64::new(obj, last(i), 1000 + i as u64)
                .user_data(i as u64)
                .build()
        })
        .collect();
    run_validated(&mut s, &mut cq, &stores);
    let loads: Vec<_> = objects
        .iter()
        .enumerate()
        .map(|(i, &obj)| op::Load64::new(obj, last(i)).user_data(i as u64).build())
        .collect();
    let done = run_validated(&mut s, &mut cq, &loads);
    let values: Vec<u64> = done.iter().map(Completion::value).collect();
    assert_eq!(values, (1000..1064).collect::<Vec<_>>());
    // One past the end of each object is refused by the same validator (Fault::Bounds).
    for (i, &obj) in objects.iter().enumerate() {
        let sqe = op::Load64::new(obj, last(i) + 8).build();
        match s.submit(sqe) {
            Err(SubmitError::Rejected { rejection, .. }) => assert_eq!(rejection.code, 5),
            other => panic!("object {i}: {other:?}"),
        }
    }
    // Detaching makes room for another; the default submitter refuses the detached object
    // (Fault::Object) and takes the new one.
    ring.detach_object(objects[10]).unwrap();
    let again = ring.create_object(8).unwrap();
    match s.submit(op::Load64::new(objects[10], 0).build()) {
        Err(SubmitError::Rejected { rejection, .. }) => assert_eq!(rejection.code, 3),
        other => panic!("detached object: {other:?}"),
    }
    let done = run_validated(
        &mut s,
        &mut cq,
        &[
            op::FetchAdd64::new(again, 0, 3).user_data(0).build(),
            op::Load64::new(again, 0).user_data(1).build(),
        ],
    );
    assert_eq!(done[1].value(), 3);
}

#[test]
fn submit_timeout_waits_for_room_and_gives_up_at_its_deadline() {
    let ring = ring(4, 4, 4096);
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    // Fill the completion ring and the submission ring, with no one consuming.
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < PROMPTLY {
        match s.submit_timeout(op::Nop::new().user_data(n).build(), Some(Duration::ZERO)) {
            Ok(()) => n += 1,
            Err(SubmitError::Full(_)) if n >= 8 => break,
            Err(SubmitError::Full(_)) => thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(n, 8);
    let t = Instant::now();
    let r = s.submit_timeout(
        op::Nop::new().user_data(99).build(),
        Some(Duration::from_millis(50)),
    );
    assert!(matches!(r, Err(SubmitError::Full(e)) if e.user_data == 99));
    assert!(t.elapsed() >= Duration::from_millis(50));
    // With a consumer making room, the blocking submit goes through.
    let consumer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let mut done = Vec::new();
        collect(&mut cq, &mut done, 9);
        done
    });
    s.submit_timeout(op::Nop::new().user_data(8).build(), Some(PROMPTLY))
        .unwrap();
    let done = consumer.join().unwrap();
    let ids: Vec<u64> = done.iter().map(Completion::user_data).collect();
    assert_eq!(ids, (0..9).collect::<Vec<_>>());
    // And on a closed ring it answers Closed at once.
    ring.shutdown();
    assert!(matches!(
        s.submit_timeout(op::Nop::new().build(), None),
        Err(SubmitError::Closed(_))
    ));
}

#[test]
fn completions_say_what_failed_by_type() {
    let ring = ring(8, 16, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut cq = ring.completions().unwrap();
    let mut s = ring.submitter_with(sbpf_ring::AcceptAll);
    let bad = [
        (
            op::Load64::new(obj, 4).user_data(0).build(),
            OpError::Invalid,
        ),
        (
            op::Load64::new(ObjectId(0x7fff_fff1), 0)
                .user_data(1)
                .build(),
            OpError::NoObject,
        ),
        (
            op::Load64::new(obj, 64).user_data(2).build(),
            OpError::Bounds,
        ),
    ];
    for (sqe, _) in &bad {
        s.submit(*sqe).unwrap();
    }
    let mut buf = [Completion::default(); 3];
    let mut got = 0;
    let start = Instant::now();
    while got < 3 && start.elapsed() < PROMPTLY {
        let _ = cq.wait(3 - got, Some(Duration::from_millis(100)));
        got += cq.fill(&mut buf[got..]);
    }
    for (c, (_, want)) in buf.iter().zip(&bad) {
        assert_eq!(c.fault(), Some(*want), "{c:?}");
        assert_eq!(c.error().unwrap().raw_os_error(), Some(want.errno()));
    }
    assert_eq!(op::Nop::default().build(), op::Nop::new().build());
    let _: Ring = ring;
}

/// A consumer that waits on an idle ring, again and again, does not keep waking the
/// poller: only work does. (Each wait once kicked the sleeping poller, whose idle window
/// then grew until it spun for good on a ring with nothing to do.)
#[test]
fn waiting_on_an_idle_ring_does_not_wake_the_poller() {
    let ring = ring(16, 32, 4096);
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    // One round trip, then let the poller fall asleep.
    s.submit(op::Nop::new().build()).unwrap();
    let mut done = Vec::new();
    collect(&mut cq, &mut done, 1);
    thread::sleep(Duration::from_millis(50));
    let before = ring.stats().wakeups;
    for _ in 0..50 {
        assert!(matches!(
            cq.wait(1, Some(Duration::from_millis(1))),
            Err(Error::TimedOut)
        ));
    }
    let woken = ring.stats().wakeups - before;
    assert!(woken <= 2, "50 idle waits woke the poller {woken} times");
}

/// An object attached while the poller is busy is usable by the very next entry: the
/// poller looks again when an entry names an object its copy of the table lacks.
#[test]
fn an_object_is_usable_as_soon_as_it_is_attached() {
    let ring = ring(64, 128, 4096);
    let mut flood = ring.submitter_with(sbpf_ring::AcceptAll);
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Keeps the poller in its passes, so attachments land while it works.
    let flooder = {
        let stop = std::sync::Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = flood.submit(op::Nop::new().user_data(u64::MAX).build());
            }
        })
    };
    let mut done = Vec::new();
    for i in 0..40u64 {
        let obj = ring.create_object(8).unwrap();
        common::submit_draining(
            &mut s,
            &mut cq,
            op::FetchAdd64::new(obj, 0, 1).user_data(i).build(),
            &mut done,
        );
    }
    let start = Instant::now();
    while done.iter().filter(|c| c.user_data() != u64::MAX).count() < 40 {
        assert!(start.elapsed() < PROMPTLY, "completions missing");
        let _ = cq.wait(1, Some(Duration::from_millis(10)));
        done.extend(cq.iter());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in done.iter().filter(|c| c.user_data() != u64::MAX) {
        assert!(c.is_ok(), "entry {} failed: {:?}", c.user_data(), c.fault());
    }
    drop(cq);
    flooder.join().unwrap();
}

/// Extreme idle windows and timeouts are taken, not a panic of the poller or the caller.
#[test]
fn extreme_idle_windows_and_timeouts_work() {
    for idle in [
        sbpf_ring::IdlePolicy::Adaptive {
            min: Duration::ZERO,
            max: Duration::MAX,
        },
        sbpf_ring::IdlePolicy::Fixed(Duration::ZERO),
    ] {
        let ring = Ring::builder()
            .sq_entries(8)
            .arena_size(4096)
            .idle_policy(idle)
            .build()
            .unwrap();
        let mut s = ring.submitter();
        let mut cq = ring.completions().unwrap();
        for i in 0..5 {
            s.submit_timeout(op::Nop::new().user_data(i).build(), Some(Duration::MAX))
                .unwrap();
            assert_eq!(cq.wait(1, Some(Duration::MAX)).unwrap(), 1);
            assert_eq!(cq.pop().unwrap().user_data(), i);
            thread::sleep(Duration::from_millis(2));
        }
    }
}
