//! Pinning threads to cores, so the producer and the consumer (poller, SQPOLL thread,
//! SPSC consumer) run on different cores as the design's targets assume.

/// Number of CPUs online (not the calling thread's mask, which pinning narrows).
pub fn cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Pins the calling thread to `cpu`; returns whether it worked. A thread spawned afterwards
/// inherits the mask.
pub fn pin_current(cpu: usize) -> bool {
    // SAFETY: `cpu_set_t` is plain data for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE for any machine this runs on (checked by the caller
    // against `cpus()`), and `set` is a valid set.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is initialised and its size is passed.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// Lets the calling thread run on every CPU again.
pub fn unpin_current() {
    // SAFETY: as in `pin_current`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in 0..cpus().min(libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu < CPU_SETSIZE`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: as in `pin_current`.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

/// The producer's and the consumer's cores, if there are two to choose from.
pub fn producer_consumer() -> Option<(usize, usize)> {
    (cpus() >= 2).then_some((0, 1))
}
