//! The baseline of one system call per request: `pread`/`pwrite` of 64 bytes on a memfd.
//! Throughput over the time budget; latency = each call timed alone.

use std::{
    fs::File,
    io,
    os::fd::{AsRawFd, FromRawFd},
    time::Instant,
};

use crate::{result, Budget, CaseResult, Deadline, Samples};

/// Size of the memfd the baselines read and write (as the ring cases' object).
pub const MEMFD_SIZE: u64 = 4096;

/// A memfd of [`MEMFD_SIZE`] bytes, filled with a pattern.
pub fn memfd() -> io::Result<File> {
    // SAFETY: the name is a NUL-terminated string; flags 0.
    let fd = unsafe { libc::memfd_create(c"sbpf-bench".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    let pattern: Vec<u8> = (0..MEMFD_SIZE).map(|i| i as u8).collect();
    std::os::unix::fs::FileExt::write_all_at(&file, &pattern, 0)?;
    Ok(file)
}

/// Whether a case reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `pread64`.
    Read,
    /// `pwrite64`.
    Write,
}

#[inline]
fn one_call(fd: i32, dir: Direction, buf: &mut [u8; 64], i: u64) -> isize {
    let off = ((i % 64) * 64) as libc::off_t;
    match dir {
        // SAFETY: `buf` is valid for 64 bytes for the whole call.
        Direction::Read => unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), 64, off) },
        // SAFETY: as above.
        Direction::Write => unsafe { libc::pwrite(fd, buf.as_ptr().cast(), 64, off) },
    }
}

/// `syscall/pread64` or `syscall/pwrite64`.
pub fn syscall_case(dir: Direction, budget: &Budget) -> CaseResult {
    let name = match dir {
        Direction::Read => "syscall/pread64",
        Direction::Write => "syscall/pwrite64",
    };
    let file = match memfd() {
        Ok(f) => f,
        Err(e) => return CaseResult::unavailable(name, 1, format!("memfd_create: {e}")),
    };
    let fd = file.as_raw_fd();
    let mut buf = [7u8; 64];
    let run = |deadline: &mut Deadline, buf: &mut [u8; 64]| {
        let mut i = 0u64;
        while !deadline.passed() {
            let r = one_call(fd, dir, buf, i);
            assert_eq!(r, 64, "{name}: {}", io::Error::last_os_error());
            i += 1;
        }
        i
    };
    run(&mut Deadline::after(budget.warmup), &mut buf);
    let start = Instant::now();
    let ops = run(&mut Deadline::after(budget.measure), &mut buf);
    let elapsed = start.elapsed();

    let mut samples = Samples::with_capacity(budget.latency_samples);
    let until = Instant::now() + budget.latency_time;
    let mut i = 0;
    while !samples.is_full() && Instant::now() < until {
        let t0 = Instant::now();
        let r = one_call(fd, dir, &mut buf, i);
        samples.record(t0.elapsed());
        assert_eq!(r, 64);
        i += 1;
    }
    std::hint::black_box(&buf);
    let note = "one call per 64-byte request on a memfd; latency = one call".to_owned();
    result(name, 1, ops, elapsed, samples, note)
}
