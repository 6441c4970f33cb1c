//! The local backend's completion wake-up for reactors: an eventfd the poller writes only
//! when a waiter armed it (a NEED_WAKEUP-style flag), so that a busy ring costs no system
//! call per completion.
//!
//! Ordering (Dekker, as [`Event`](crate::protocol::Event)): the waiter stores `armed`,
//! issues a full fence (W1) and then looks at the completion ring once more before it
//! sleeps on the eventfd; the poller publishes completions, issues a full fence (W2) and
//! then reads `armed`. By W1 and W2, either the waiter's second look sees the completions
//! or the poller sees the flag and writes the eventfd.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::OnceLock,
};

use crate::sync::{fence, AtomicBool, Ordering};

/// An eventfd made on first use, and the flag that asks the poller to write it.
#[derive(Debug, Default)]
pub(crate) struct CqWakeup {
    fd: OnceLock<OwnedFd>,
    armed: AtomicBool,
}

impl CqWakeup {
    /// The eventfd (non-blocking), made on first call.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn fd(&self) -> io::Result<&OwnedFd> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd);
        }
        // SAFETY: eventfd takes no pointer; a non-negative result is a new descriptor we own.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor no one else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // A racing caller may have set one first; ours is closed then.
        let _ = self.fd.set(fd);
        Ok(self.fd.get().expect("just set"))
    }

    /// Waiter, before it sleeps: asks for a write, then the full fence W1. The caller must
    /// look at the completion ring after this.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn arm(&self) {
        self.armed.store(true, Ordering::Relaxed);
        // SeqCst fence W1 pairs with W2 in `after_publish`.
        fence(Ordering::SeqCst);
    }

    /// Waiter, awake: no write needed until it arms again; empties the eventfd.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
        if let Some(fd) = self.fd.get() {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into `count`; a non-blocking eventfd that is empty
            // answers EAGAIN, which is fine.
            let _ = unsafe { libc::read(fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
        }
    }

    /// Poller, after publishing completions: the full fence W2, then a write if armed.
    /// Costs one load when no eventfd was ever made.
    #[inline]
    pub(crate) fn after_publish(&self) {
        if self.fd.get().is_none() {
            return;
        }
        // SeqCst fence W2 pairs with W1 in `arm`.
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) {
            self.armed.store(false, Ordering::Relaxed);
            self.signal();
        }
    }

    /// Writes the eventfd (if made), waking a waiter whatever `armed` says.
    pub(crate) fn signal(&self) {
        if let Some(fd) = self.fd.get() {
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one`; a full counter (EAGAIN) is already a wake-up.
            let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
}
