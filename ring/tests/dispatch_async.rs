//! The dispatcher's futures (feature `tokio`): every task gets exactly its own result, a
//! future dropped in flight leaks no buffer and no slot, and closing the ring wakes every
//! pending future with `Closed`. On whichever backend the environment selects.

mod common;

use std::{
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use common::{ring, scaled};
use sbpf_ring::{op, AcceptAll, Error};

const TASKS: u64 = 64;

fn assert_send<T: Send>(t: T) -> T {
    t
}

/// 64 tasks on a multi-threaded runtime: each adds to its own word (its old values must be
/// 0, 1, 2, ... in order) and to a shared one (every old value exactly once overall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_gets_its_own_result() {
    let ring = ring(64, 128, 4096);
    let obj = ring.create_object(4096).unwrap();
    let d = ring.dispatcher().unwrap();
    let kernel = std::env::var("SBPF_RING_BACKEND").is_ok_and(|b| b == "kernel");
    let per = scaled(if kernel { 200 } else { 2_000 }) as u64;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let d = d.clone();
            tokio::spawn(assert_send(async move {
                let mut seen = Vec::with_capacity(per as usize);
                for i in 0..per {
                    assert_eq!(d.fetch_add_async(obj, 8 + t * 8, 1).await.unwrap(), i);
                    seen.push(d.fetch_add_async(obj, 0, 1).await.unwrap());
                }
                seen
            }))
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..TASKS * per));
    assert_eq!(d.load_async(obj, 8).await.unwrap(), per);
    let stats = d.stats();
    assert_eq!(
        (stats.forged, stats.stale, stats.in_flight),
        (0, 0, 0),
        "{stats:?}"
    );
}

/// Reads and writes with pool buffers from 64 tasks; every buffer comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_through_futures_come_back() {
    let ring = ring(64, 128, 256 * 1024);
    let obj = ring.create_object(64 * 1024).unwrap();
    let d = ring.dispatcher().unwrap();
    let pool = ring.buffers();
    let capacity = pool.available();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (d, pool) = (d.clone(), pool.clone());
            tokio::spawn(async move {
                let at = t * 1024;
                for i in 0..scaled(200) as u64 {
                    let data: Vec<u8> = (0..64).map(|k| (k ^ i ^ t) as u8).collect();
                    let mut buf = pool.alloc(64).unwrap();
                    buf.write(&data).unwrap();
                    let (n, buf) = d.write_from_async(obj, at, buf).await;
                    assert_eq!(n.unwrap(), 64);
                    let (n, buf) = d.read_into_async(obj, at, buf).await;
                    assert_eq!(n.unwrap(), 64);
                    assert_eq!(buf.to_vec(), data);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.available(), capacity);
}

fn poll_once<F: Future>(f: &mut Pin<Box<F>>) -> Poll<F::Output> {
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// Futures polled once (so their entries are in flight, nothing routed: the test holds
/// the lead) and then dropped keep their buffers and slots until their requests complete;
/// then everything comes back, and no completion reaches anyone else.
#[test]
fn a_future_dropped_in_flight_leaks_no_buffer_and_no_slot() {
    let ring = ring(16, 32, 64 * 1024);
    let obj = ring.create_object(4096).unwrap();
    let d = ring.dispatcher().unwrap();
    let pool = ring.buffers();
    let capacity = pool.available();
    let hold = d.hold_lead_for_test().unwrap();
    for i in 0..8u64 {
        let buf = pool.alloc(64).unwrap();
        let mut f = Box::pin(d.read_into_async(obj, i * 64, buf));
        assert!(poll_once(&mut f).is_pending());
        let mut g = Box::pin(d.fetch_add_async(obj, 0, 1));
        assert!(poll_once(&mut g).is_pending());
        drop((f, g));
    }
    // In flight: the buffers are still the requests'.
    assert_eq!(pool.available(), capacity - 8);
    assert_eq!(d.stats().in_flight, 16);
    drop(hold);
    // A call routes everything before its own completion (one consumer, in order).
    assert_eq!(ring.fetch_add(obj, 0, 1).unwrap(), 8);
    let stats = d.stats();
    assert_eq!(pool.available(), capacity);
    assert_eq!(
        (stats.in_flight, stats.stale, stats.forged),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.routed, 17);
}

/// 16 tasks pending on requests that cannot complete (the test holds the lead and the
/// completion ring is full of raw NOPs); shutting the ring down wakes every one with
/// `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_every_pending_future() {
    let ring = ring(4, 4, 4096);
    let obj = ring.create_object(4096).unwrap();
    let d = ring.dispatcher().unwrap();
    let hold = d.hold_lead_for_test().unwrap();
    let mut raw = ring.submitter_with(AcceptAll);
    for _ in 0..4 {
        raw.submit(op::Nop::new().user_data(u64::MAX).build())
            .unwrap();
    }
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let d = d.clone();
            tokio::spawn(async move { d.fetch_add_async(obj, t * 8, 1).await })
        })
        .collect();
    // Let them reach their waits; not a correctness bound.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ring = Arc::new(ring);
    let closer = Arc::clone(&ring);
    tokio::task::spawn_blocking(move || closer.shutdown())
        .await
        .unwrap();
    drop(hold);
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    }
    assert!(matches!(d.load_async(obj, 0).await, Err(Error::Closed)));
    assert_eq!(d.stats().routed, 0);
}

/// Futures complete without a reactor to wake them: on a runtime built without IO (tokio
/// cannot watch the ring's fd there) and polled by a plain executor outside tokio, with
/// a thread of another runtime holding nothing. Each such future polls again by itself.
#[test]
fn futures_complete_without_a_reactor() {
    let ring = ring(16, 32, 4096);
    let obj = ring.create_object(4096).unwrap();
    let d = ring.dispatcher().unwrap();
    let no_io = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = no_io.block_on(async {
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(d.fetch_add_async(obj, 0, 1).await.unwrap());
        }
        got
    });
    assert_eq!(got, (0..10).collect::<Vec<u64>>());
    // Outside any runtime: a busy executor of our own.
    let mut f = std::pin::pin!(d.load_async(obj, 0));
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0u32;
    let value = loop {
        polls += 1;
        assert!(polls < 10_000_000, "never completed");
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            break v.unwrap();
        }
        std::thread::yield_now();
    };
    assert_eq!(value, 10);
}

/// A future refuses a buffer of another ring's pool, as the blocking call does.
#[tokio::test]
async fn a_future_refuses_a_buffer_of_another_ring() {
    let (a, b) = (ring(8, 16, 64 * 1024), ring(8, 16, 64 * 1024));
    let obj = a.create_object(64).unwrap();
    let d = a.dispatcher().unwrap();
    let foreign = b.buffers().alloc(8).unwrap();
    let (r, foreign) = d.read_into_async(obj, 0, foreign).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let (r, _) = d.write_from_async(obj, 0, foreign).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(d.stats().in_flight, 0);
}

/// A waker that panics when woken while its flag is set. The flag is Relaxed: the test sets
/// it before it spawns the routing thread and clears it after joining it, which order it.
struct PanickingWaker(AtomicBool);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        assert!(!self.0.load(Ordering::Relaxed), "the test's waker panics");
    }
}

/// A task's future pending behind a held lead, its waker armed to panic; then `setup`, then
/// a calling thread that routes the task's completion and so meets the panic. Checks that
/// the panic reaches that caller, that the ring goes on routing (the next call's old value
/// is `after`: whether the panicking caller's add ran), that the task still gets its
/// result, and that no request slot is left behind.
fn waker_panics_in_a_caller(
    ring: &sbpf_ring::Ring,
    setup: impl FnOnce(&sbpf_ring::Ring),
    after: u64,
) {
    let obj = ring.create_object(4096).unwrap();
    let d = ring.dispatcher().unwrap();
    let hold = d.hold_lead_for_test().unwrap();
    let waker = Arc::new(PanickingWaker(AtomicBool::new(false)));
    let mut f = Box::pin(d.fetch_add_async(obj, 0, 1));
    let task_waker = Waker::from(Arc::clone(&waker));
    assert!(f
        .as_mut()
        .poll(&mut Context::from_waker(&task_waker))
        .is_pending());
    setup(ring);
    waker.0.store(true, Ordering::Relaxed);
    drop(hold);
    let caller = d.clone();
    let routed =
        std::thread::spawn(move || catch_unwind(AssertUnwindSafe(|| caller.fetch_add(obj, 8, 1))))
            .join()
            .unwrap();
    assert!(routed.is_err(), "the waker's panic reaches the caller");
    // The ring keeps routing: without a leader again, this would time out.
    let next = d.call_timeout(op::FetchAdd64::new(obj, 8, 1), Duration::from_secs(10));
    assert_eq!(next.unwrap().value(), after, "the panicking caller's add");
    waker.0.store(false, Ordering::Relaxed);
    assert!(matches!(poll_once(&mut f), Poll::Ready(Ok(0))));
    assert_eq!(ring.load(obj, 0).unwrap(), 1);
    drop(f);
    assert_eq!(d.stats().in_flight, 0, "{:?}", d.stats());
}

/// The caller routes while it waits for its own result: its add ran once, and its slot
/// comes back when the lead is given up on unwind.
#[test]
fn a_waker_that_panics_while_routed_leaves_the_ring_working() {
    waker_panics_in_a_caller(&ring(16, 32, 4096), |_| {}, 1);
}

/// The caller routes while it waits for room in a full submission ring: its request, never
/// published, gives its slot back.
#[test]
fn a_waker_that_panics_while_a_caller_waits_for_room_leaks_no_slot() {
    let fill = |ring: &sbpf_ring::Ring| {
        // Raw NOPs (their completions are forged to the dispatcher) fill the completion
        // ring behind the task's, then the submission ring, which the consumer cannot drain.
        let mut raw = ring.submitter_with(AcceptAll);
        let mut queued = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while queued < 3 + 4 {
            match raw.submit(op::Nop::new().user_data(u64::MAX).build()) {
                Ok(()) => queued += 1,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "{e:?}");
                    std::thread::yield_now();
                }
            }
        }
    };
    waker_panics_in_a_caller(&ring(4, 4, 4096), fill, 0);
}
