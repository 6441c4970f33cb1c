//! The one place the protocol takes its atomics, cells and blocking primitives from.
//!
//! Normal builds use `std` types, laid over the mapped pages; `--cfg loom` swaps in loom's,
//! in ordinary heap memory, so the very same protocol functions are model-checked. Nothing
//! else in the protocol imports atomics directly.

#[cfg(not(loom))]
mod imp {
    pub use std::{
        hint::spin_loop,
        sync::{
            atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
            Condvar, Mutex,
        },
    };

    /// Parking, as the dispatcher's followers do it.
    pub mod thread {
        pub use std::thread::{current, Thread};

        /// Parks the current thread until unparked, or `timeout` passes (never: `None`).
        pub fn park_timeout(timeout: Option<std::time::Duration>) {
            match timeout {
                None => std::thread::park(),
                Some(t) => std::thread::park_timeout(t),
            }
        }
    }

    /// `std::cell::UnsafeCell` with loom's `with`/`with_mut` interface, so callers read the
    /// same under both configurations. `repr(transparent)`: it lies over mapped bytes.
    #[derive(Debug)]
    #[repr(transparent)]
    pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// A cell holding `value`.
        pub const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a pointer for reading.
        #[inline(always)]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a pointer for writing.
        #[inline(always)]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub use loom::{
        cell::UnsafeCell,
        sync::{
            atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
            Condvar, Mutex,
        },
    };

    /// Parking, as the dispatcher's followers do it.
    pub mod thread {
        pub use loom::thread::{current, Thread};

        /// Under loom a park has no timeout: a model must end by an unpark.
        pub fn park_timeout(_timeout: Option<std::time::Duration>) {
            loom::thread::park();
        }
    }

    /// Under loom a spin is a yield, so the model explores the other threads.
    pub fn spin_loop() {
        loom::thread::yield_now();
    }
}

pub use imp::*;
