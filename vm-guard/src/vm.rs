//! Running verified programs on rbpf: the x86-64 JIT or the interpreter.
//!
//! This module owns the crate's only `unsafe` code: the call into JIT-compiled code, the
//! `Send` promise for rbpf's VM, and the read-only data mapping.
//!
//! # Ownership
//!
//! rbpf's VMs borrow their bytecode (`EbpfVmRaw<'a>` holds `&'a [u8]`). A [`Program`] owns its
//! bytecode in a `Box<[u8]>` and the VM that borrows it, side by side, through `self_cell`
//! (the VM type is covariant in `'a`, which `self_cell` checks at compile time). Cloning a
//! [`Program`] builds a new VM over a new copy of the bytecode and JIT-compiles it again, so
//! every producer handle owns its compiled guard outright and nothing is shared.
//!
//! # rbpf 0.4.1 traits this module works around
//!
//! - Its verifier is structural only; `set_verifier` takes a plain `fn` pointer that cannot
//!   carry a [`Policy`]. We run our verifier with the guard's policy before building the VM,
//!   then install a `fn` that re-runs the policy-independent rules, and only then set the
//!   program (the VM is built without one, so no check is skipped).
//! - Its JIT emits into one 4 KiB page and panics past it: programs whose code could exceed
//!   it ([`Verified::fits_jit`]) run under the interpreter.
//! - Its JIT calls helpers with the stack 8 bytes off the C ABI's 16-byte alignment (a
//!   helper that uses SSE on the stack crashes): programs that call helpers run under the
//!   interpreter ([`Verified::fits_jit`] is false for them).
//! - Its interpreter computes jump targets in `i16`: the verifier caps programs at
//!   [`verifier::RBPF_MAX_INSNS`] whatever the policy says.
//! - Its JIT page is mapped writable and executable at once, and handed back to the allocator
//!   with those permissions when the VM is dropped.
//! - Its interpreter allocates its 512-byte stack on every run, so only the JIT path is free
//!   of allocation.
//!
//! # Read-only data
//!
//! A program's `.rodata` lives in a mapping the [`Program`] owns next to its bytecode, at an
//! address that never changes while the VM exists: at the very end of pages made read-only,
//! followed by an inaccessible page, so a stray read past it or any write faults instead of
//! going unnoticed. Before rbpf sees the program, each `lddw` with source
//! [`verifier::PSEUDO_RODATA`] is rewritten into a plain `lddw` of that block's address plus
//! the offset; the verifier has already typed the register as a pointer into read-only data
//! and proven every load through it in bounds. The interpreter, which checks every access
//! against the context and its stack, is told the block is readable
//! (`register_allowed_memory`); the JIT checks nothing and relies on the proof.

use std::{fmt, io};

use rbpf::EbpfVmRaw;
use self_cell::self_cell;

use crate::verifier::{self, Policy, Verified, VerifyError, PSEUDO_RODATA};

/// How a program is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// rbpf's x86-64 JIT.
    Jit,
    /// rbpf's interpreter.
    Interpreter,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Jit => "jit",
            Engine::Interpreter => "interpreter",
        })
    }
}

/// A helper function a program may call, with its verifier description.
#[derive(Clone, Copy, Debug)]
pub struct Helper {
    /// Number and arity, as the verifier sees them.
    pub spec: verifier::HelperSpec,
    /// The function.
    pub func: rbpf::Helper,
}

/// Why a program could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Our verifier refused it (boxed: the error carries the failing path's state).
    #[error("verification failed: {0}")]
    Verify(Box<VerifyError>),
    /// rbpf refused it (its own checks, or the JIT).
    #[error("rbpf: {0}")]
    Vm(String),
}

impl From<VerifyError> for LoadError {
    fn from(e: VerifyError) -> Self {
        LoadError::Verify(Box::new(e))
    }
}

/// A run that did not return a value (only the interpreter reports these; a verified program
/// never causes one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("guard execution failed: {0}")]
pub struct ExecError(pub String);

type RawVm<'a> = EbpfVmRaw<'a>;

/// What the VM borrows: the bytecode as rbpf runs it (read-only data addresses written in)
/// and the read-only data those addresses point to.
struct Code {
    runnable: Box<[u8]>,
    rodata: ReadOnlyData,
}

self_cell!(
    struct VmCell {
        owner: Code,
        #[covariant]
        dependent: RawVm,
    }
);

/// A [`VmCell`] that may move to another thread.
struct SendVm(VmCell);

// SAFETY: `EbpfVmRaw` is `!Send` only because rbpf's `StackVerifier` can hold a user-supplied
// `Box<dyn Any>` for a stack-usage calculator; we never install one, so that field is `None`.
// Everything else it holds is plain data, `fn` pointers, `HashMap`s of those, the bytecode
// borrow (into the `Box` owned by the same cell) and the JIT page, which it owns exclusively
// through a `&mut [u8]`. The cell's owner adds the read-only data mapping, owned exclusively
// through a raw pointer and never written after it is made. Nothing is shared with another
// value, so moving the whole cell to another thread is sound. (It is not `Sync`, and we do
// not claim it is.)
unsafe impl Send for SendVm {}

/// rbpf's verifier hook: the rules of ours that do not depend on the policy, as a second gate
/// inside rbpf (the full check with the guard's policy has already passed).
fn policy_free_gate(prog: &[u8]) -> Result<(), io::Error> {
    verifier::verify_policy_free(prog)
        .map(|_| ())
        .map_err(|e| io::Error::other(e.to_string()))
}

/// A verified program and the rbpf VM that runs it.
pub struct Program {
    vm: SendVm,
    /// The bytecode as verified (pseudo `lddw`s, not addresses).
    bytecode: Box<[u8]>,
    engine: Engine,
    verified: Verified,
    context_size: usize,
    helpers: Vec<Helper>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("engine", &self.engine)
            .field("verified", &self.verified)
            .field("context_size", &self.context_size)
            .finish_non_exhaustive()
    }
}

const JIT_AVAILABLE: bool = cfg!(all(target_arch = "x86_64", unix));

impl Program {
    /// Verifies `bytecode` under `policy` and loads it; `engine` is a preference: the JIT is
    /// used only where it exists and the program fits its buffer.
    pub fn load(
        bytecode: &[u8],
        policy: &Policy,
        helpers: &[Helper],
        engine: Engine,
    ) -> Result<Program, LoadError> {
        Self::load_with_rodata(bytecode, &[], policy, helpers, engine)
    }

    /// [`load`](Self::load) for a program with read-only data (`lddw` with source
    /// [`PSEUDO_RODATA`] points into `rodata`), as [`crate::source::from_elf_with_rodata`]
    /// produces it.
    pub fn load_with_rodata(
        bytecode: &[u8],
        rodata: &[u8],
        policy: &Policy,
        helpers: &[Helper],
        engine: Engine,
    ) -> Result<Program, LoadError> {
        let policy = Policy {
            helpers: helpers.iter().map(|h| h.spec).collect(),
            ..policy.clone()
        };
        let verified = verifier::verify_with_rodata(bytecode, rodata, &policy)?;
        let engine = if engine == Engine::Jit && JIT_AVAILABLE && verified.fits_jit() {
            Engine::Jit
        } else {
            Engine::Interpreter
        };
        Self::build(
            bytecode.into(),
            rodata.into(),
            verified,
            policy.context_size,
            helpers,
            engine,
        )
    }

    fn build(
        bytecode: Box<[u8]>,
        rodata: Box<[u8]>,
        verified: Verified,
        context_size: usize,
        helpers: &[Helper],
        engine: Engine,
    ) -> Result<Program, LoadError> {
        let rodata = ReadOnlyData::new(&rodata)
            .map_err(|e| LoadError::Vm(format!("mapping the read-only data: {e}")))?;
        let code = Code {
            runnable: resolve_rodata(&bytecode, rodata.as_slice()),
            rodata,
        };
        let cell = VmCell::try_new(code, |code| -> Result<RawVm<'_>, LoadError> {
            let vm_err = |e: io::Error| LoadError::Vm(e.to_string());
            let mut vm = EbpfVmRaw::new(None).map_err(vm_err)?;
            vm.set_verifier(policy_free_gate).map_err(vm_err)?;
            for h in helpers {
                vm.register_helper(h.spec.id, h.func).map_err(vm_err)?;
            }
            let data = code.rodata.as_slice();
            if !data.is_empty() {
                let start = data.as_ptr() as u64;
                vm.register_allowed_memory(start..start + data.len() as u64);
            }
            vm.set_program(&code.runnable).map_err(vm_err)?;
            if engine == Engine::Jit {
                vm.jit_compile().map_err(vm_err)?;
            }
            Ok(vm)
        })?;
        Ok(Program {
            vm: SendVm(cell),
            bytecode,
            engine,
            verified,
            context_size,
            helpers: helpers.to_vec(),
        })
    }

    /// The engine [`run`](Self::run) uses.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// What the verifier established.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The bytecode, as verified.
    pub fn bytecode(&self) -> &[u8] {
        &self.bytecode
    }

    /// The read-only data.
    pub fn rodata(&self) -> &[u8] {
        self.vm.0.borrow_owner().rodata.as_slice()
    }

    /// Runs on `ctx` (which `r1` points to) with the program's engine.
    #[inline]
    pub fn run(&self, ctx: &mut [u8]) -> Result<u64, ExecError> {
        self.run_with(self.engine, ctx)
    }

    /// Runs on `ctx` with the given engine; asking for the JIT of a program that was not
    /// compiled runs the interpreter.
    #[inline]
    pub fn run_with(&self, engine: Engine, ctx: &mut [u8]) -> Result<u64, ExecError> {
        if ctx.len() < self.context_size {
            return Err(ExecError(format!(
                "context of {} bytes, the program was verified for {}",
                ctx.len(),
                self.context_size
            )));
        }
        let vm = self.vm.0.borrow_dependent();
        if engine == Engine::Jit && self.engine == Engine::Jit {
            // SAFETY: rbpf's JIT code has no memory checks, so what it may touch is what our
            // verifier proved, and `load_with_rodata` ran it with this program's policy and
            // read-only data. On every path every access is inside one of three regions:
            // loads from the context (`[r1, r1 + context_size)` at entry, and
            // `ctx.len() >= context_size` was checked above), loads from the read-only data
            // (the `ReadOnlyData` mapping owned by the same cell as the VM, alive and unmoved
            // while it runs; its address was written into the code by `resolve_rodata`), and loads
            // and stores in `[r10 - 512, r10)`, the 512 bytes rbpf's prologue reserves below
            // its frame. No store goes anywhere else, no pointer becomes a value, exploration
            // proved that every run ends (within `Verified::max_steps` instructions), and a
            // program that calls a helper never reaches the JIT (`fits_jit`). The code fits
            // rbpf's JIT page (`fits_jit`), checked before compiling.
            unsafe { vm.execute_program_jit(ctx) }.map_err(|e| ExecError(e.to_string()))
        } else {
            vm.execute_program(ctx)
                .map_err(|e| ExecError(e.to_string()))
        }
    }
}

impl Clone for Program {
    /// A new VM over a new copy of the bytecode, compiled again: clones share nothing.
    fn clone(&self) -> Self {
        Self::build(
            self.bytecode.clone(),
            self.rodata().into(),
            self.verified,
            self.context_size,
            &self.helpers,
            self.engine,
        )
        .unwrap_or_else(|e| panic!("rebuilding a program that loaded before failed: {e}"))
    }
}

/// The bytecode rbpf runs: each `lddw` of read-only data becomes an `lddw` of its absolute
/// address in `rodata` (which the verifier proved it is within, or one past).
fn resolve_rodata(bytecode: &[u8], rodata: &[u8]) -> Box<[u8]> {
    let mut code: Box<[u8]> = bytecode.into();
    let n = code.len() / 8;
    let mut i = 0;
    while i < n {
        let w = &mut code[i * 8..];
        if w[0] == rbpf::ebpf::LD_DW_IMM && i + 1 < n {
            if w[1] >> 4 == PSEUDO_RODATA {
                let off = u64::from(u32::from_le_bytes(w[12..16].try_into().unwrap()));
                let addr = rodata.as_ptr() as u64 + off;
                w[1] &= 0x0f;
                w[4..8].copy_from_slice(&(addr as u32).to_le_bytes());
                w[12..16].copy_from_slice(&((addr >> 32) as u32).to_le_bytes());
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    code
}

/// A program's read-only data in a mapping of its own: the bytes end exactly where an
/// inaccessible page begins, and their pages are read-only, so that a JIT access the verifier
/// should have refused faults rather than reading a neighbour's memory or writing anything.
struct ReadOnlyData {
    /// The mapping (null when there is no data).
    map: *mut u8,
    map_len: usize,
    /// Where the data starts in the mapping, and its length.
    start: usize,
    len: usize,
}

impl ReadOnlyData {
    fn new(data: &[u8]) -> io::Result<ReadOnlyData> {
        if data.is_empty() {
            return Ok(ReadOnlyData {
                map: std::ptr::null_mut(),
                map_len: 0,
                start: 0,
                len: 0,
            });
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))?;
        let readable = data.len().div_ceil(page) * page;
        let map_len = readable + page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected, and the
        // result is checked before use.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let block = ReadOnlyData {
            map: map.cast(),
            map_len,
            start: readable - data.len(),
            len: data.len(),
        };
        // SAFETY: `[start, start + len)` lies inside the readable part of the new mapping,
        // which nothing else references yet; then both protections apply to pages of that
        // mapping (from its start, and the last page).
        let ok = unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), block.map.add(block.start), block.len);
            libc::mprotect(map, readable, libc::PROT_READ) == 0
                && libc::mprotect(block.map.add(readable).cast(), page, libc::PROT_NONE) == 0
        };
        if ok {
            Ok(block)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `[start, start + len)` of the mapping holds the data, readable for as long
        // as `self` lives (it is unmapped only in `drop`) and never written after `new`.
        unsafe { std::slice::from_raw_parts(self.map.add(self.start), self.len) }
    }
}

impl Drop for ReadOnlyData {
    fn drop(&mut self) {
        if !self.map.is_null() {
            // SAFETY: unmaps exactly the mapping made in `new`; the only references into it
            // borrow `self` (`as_slice`) or are the addresses written into the code of the VM
            // that owns `self` and is dropped with it.
            unsafe { libc::munmap(self.map.cast(), self.map_len) };
        }
    }
}
