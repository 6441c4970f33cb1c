//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sbpf_guard::source;

/// A corpus file: its bytecode and the rule it expects (`# expect: NAME`).
pub struct CorpusProgram {
    pub path: PathBuf,
    pub bytecode: Vec<u8>,
    pub expect: Option<String>,
}

/// Reads a corpus `.s` file. A program that rbpf's assembly cannot express is given as
/// `# raw: 0x<word> ...` lines of little-endian 64-bit instruction words instead.
pub fn corpus_program(path: &Path) -> CorpusProgram {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expect = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# expect:"))
        .map(|s| s.trim().to_string());
    let raw: Vec<u64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# raw:"))
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .map(|w| {
            u64::from_str_radix(w.trim_start_matches("0x"), 16)
                .unwrap_or_else(|e| panic!("{}: bad raw word {w}: {e}", path.display()))
        })
        .collect();
    let bytecode = if raw.is_empty() {
        source::assemble(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    } else {
        raw.iter().flat_map(|w| w.to_le_bytes()).collect()
    };
    CorpusProgram {
        path: path.to_path_buf(),
        bytecode,
        expect,
    }
}

/// Files with extension `ext` in `dir`, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small deterministic generator (xorshift64*), for tests that need many inputs without
/// proptest's shrinking.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let w = self.next().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// A context buffer whose last byte is the last byte of a readable page, followed by a page
/// mapped `PROT_NONE`: any access one byte past the context faults, under the JIT as well as
/// the interpreter.
pub struct GuardedContext {
    base: *mut u8,
    len: usize,
}

const PAGE: usize = 4096;

impl GuardedContext {
    pub fn new(len: usize) -> GuardedContext {
        assert!(len <= PAGE);
        // SAFETY: an anonymous private mapping of two fresh pages; no existing memory is
        // touched, and the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        // SAFETY: the second page belongs to the mapping made above.
        let rc =
            unsafe { libc::mprotect(base.cast::<u8>().add(PAGE).cast(), PAGE, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect");
        GuardedContext {
            base: base.cast(),
            len,
        }
    }

    /// The context: `len` bytes ending exactly at the inaccessible page.
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `[PAGE - len, PAGE)` of the first page is mapped readable and writable for
        // the life of `self`, and `&mut self` makes this the only reference to it.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(PAGE - self.len), self.len) }
    }
}

impl Drop for GuardedContext {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference into it outlives
        // `self` (`bytes` borrows `self`).
        unsafe { libc::munmap(self.base.cast(), 2 * PAGE) };
    }
}
