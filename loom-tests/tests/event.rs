//! `Event` on its own: a waiter announces itself, fences and re-checks before blocking; a
//! notifier fences after its progress and takes the lock only if someone waits. A lost
//! notification is a deadlock under loom.

#![cfg(loom)]

use loom::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    thread,
};
use loom_tests::model;
use sbpf_ring::protocol::Event;

/// One waiter for two steps of progress, each notified.
#[test]
fn wait_notify() {
    model(|| {
        let event = Arc::new(Event::new());
        let progress = Arc::new(AtomicU32::new(0));
        let notifier = {
            let (event, progress) = (Arc::clone(&event), Arc::clone(&progress));
            thread::spawn(move || {
                for _ in 0..2 {
                    // Relaxed: the event's fences alone must carry the progress to the
                    // waiter's re-check.
                    progress.fetch_add(1, Ordering::Relaxed);
                    event.notify();
                }
            })
        };
        let ready = || progress.load(Ordering::Relaxed) == 2;
        while !event.wait(ready, None) {}
        assert!(ready());
        notifier.join().unwrap();
    });
}
