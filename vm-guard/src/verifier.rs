//! Our verifier: accepts a class of eBPF programs that is safe to run on the guard context by
//! construction, in one linear pass.
//!
//! # The rules
//!
//! A program is accepted only if all of these hold (each has a [`Rule`] that names it in the
//! error and in the log):
//!
//! - **Shape.** Non-empty, a whole number of 8-byte instructions, at most
//!   [`Policy::max_insns`] of them. Every opcode is one we know and rbpf 0.4.1 runs the way
//!   the eBPF instruction set defines it; fields the opcode does not use are zero; registers
//!   are `r0`..`r10`.
//! - **Termination.** Jumps go forward only, land inside the program and never on the second
//!   slot of `lddw`; no instruction lets execution fall off the end; every instruction is
//!   reachable. So the program ends after at most `len` steps.
//! - **Memory.** The only memory access is a load (`ldx{b,h,w,dw}`) whose base is `r1`, the
//!   context pointer, at a constant offset with the whole access inside the context
//!   ([`Policy::context_size`] bytes). While `r1` holds the context pointer it is never used
//!   as a value (no arithmetic, no copy into another register, no comparison), so every
//!   address a program can form is `r1 + constant`. A program may overwrite `r1` once it is
//!   done with the context (clang does, for its last load); from then on `r1` is an ordinary
//!   register and no load may use it (tracked per path, like any register). No stores, no
//!   atomics, no legacy packet loads, no use of `r10`.
//! - **Calls.** None, except helpers in [`Policy::helpers`] (empty by default). No local
//!   (bpf-to-bpf) calls, no tail calls. A helper call reads `r1`..`r{arity}`, sets `r0` and
//!   leaves `r1`..`r5` unknown, as in the kernel.
//! - **Data flow.** Every register is written before it is read on every path, and `r0` is
//!   set on every path that reaches `exit`. Because jumps only go forward, one pass in program
//!   order sees every predecessor of an instruction before the instruction itself; the set of
//!   initialized registers at a join is the intersection of the incoming sets.
//! - **Arithmetic.** Shift immediates are below the operand width; division and modulo by
//!   the constant zero are refused (rbpf defines them — `x / 0 = 0`, `x % 0 = x` — but a guard
//!   that writes them is wrong).
//! - **rbpf agreement.** A few encodings that rbpf 0.4.1's JIT and interpreter execute
//!   differently are refused, so a verified guard gives the same answer under both:
//!   `mov32 reg, reg` (the JIT does not clear the upper half), `le16`/`le32` (the JIT does not
//!   truncate), and a negative immediate in a 64-bit `jeq`/`jne`/`jgt`/`jge`/`jlt`/`jle` (the
//!   interpreter zero-extends it, the JIT and the kernel sign-extend it). `neg64` too: rbpf's
//!   interpreter negates with `-(x as i64)`, which panics on `i64::MIN` in builds with
//!   overflow checks (debug builds, where it is a dependency of a test).

use std::fmt;

use rbpf::ebpf;

use crate::context::CONTEXT_SIZE;

/// Longest guard accepted by default, in instruction slots.
pub const DEFAULT_MAX_INSNS: usize = 512;

/// Bytes of x86-64 code rbpf 0.4.1's JIT has room for: one 4 KiB page, allocated once per
/// program; emitting past it panics inside rbpf, so we never ask it to.
pub const JIT_BUFFER_BYTES: usize = 4096;

/// What our JIT size estimate allows for rbpf's prologue and epilogue (about 50 bytes).
const JIT_FIXED_BYTES: usize = 96;

/// A helper a guard may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperSpec {
    /// The helper's number (the `imm` of `call`).
    pub id: u32,
    /// How many of `r1`..`r5` it reads; they must be initialized at the call.
    pub arity: u8,
}

/// What the verifier accepts beyond the fixed rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Most instruction slots (an `lddw` takes two).
    pub max_insns: usize,
    /// Bytes loadable from `r1`.
    pub context_size: usize,
    /// Helpers a program may call.
    pub helpers: Vec<HelperSpec>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_insns: DEFAULT_MAX_INSNS,
            context_size: CONTEXT_SIZE,
            helpers: Vec::new(),
        }
    }
}

/// A rule the program broke.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// No instructions.
    Empty,
    /// Length not a multiple of 8 bytes.
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// More instructions than the policy allows.
    TooLong {
        /// Instruction slots.
        insns: usize,
        /// The policy's limit.
        max: usize,
    },
    /// An opcode we do not know (or rbpf 0.4.1 does not implement).
    UnknownOpcode {
        /// The opcode byte.
        opcode: u8,
    },
    /// A register number above 10.
    BadRegister,
    /// A field the opcode does not use is not zero.
    ReservedField {
        /// Which field, and why it matters.
        field: &'static str,
    },
    /// `lddw` without a well-formed second slot.
    IncompleteLddw,
    /// `lddw` with a pseudo source (map or BTF reference) that needs a loader.
    LddwPseudo,
    /// A jump with a negative offset.
    BackwardJump,
    /// A jump that lands outside the program.
    JumpOutOfRange {
        /// Target index.
        target: i64,
    },
    /// A jump onto the second slot of an `lddw`.
    JumpIntoLddw {
        /// Target index.
        target: usize,
    },
    /// Execution can run past the last instruction.
    FallsOffEnd,
    /// No path reaches this instruction.
    Unreachable,
    /// A store (`st*`, `stx*`).
    Store,
    /// An atomic operation.
    Atomic,
    /// A legacy packet load (`ldabs*`, `ldind*`).
    LegacyPacketLoad,
    /// `r10`, the frame pointer: guards have no stack.
    StackPointer,
    /// A load through `r1` after `r1` was overwritten on some path.
    ContextOverwritten,
    /// `r1` used as a value: arithmetic, copy, or comparison.
    ContextAsValue,
    /// A load whose base is not `r1`.
    LoadBase {
        /// The base register.
        reg: u8,
    },
    /// A load that is not entirely inside the context.
    LoadOutOfContext {
        /// Offset from `r1`.
        off: i64,
        /// Access size.
        size: usize,
        /// Context size.
        limit: usize,
    },
    /// A register read before it is written on some path.
    Uninitialized {
        /// The register.
        reg: u8,
    },
    /// `exit` reachable with `r0` unset on some path.
    R0Unset,
    /// A helper call not on the allow-list.
    CallNotAllowed {
        /// Helper number.
        id: i32,
    },
    /// A bpf-to-bpf call.
    LocalCall,
    /// A tail call (`callx`/`tail_call` encoding).
    TailCall,
    /// A shift by an immediate at least the operand width (or negative).
    BadShift {
        /// The immediate.
        imm: i32,
        /// The operand width.
        width: u32,
    },
    /// Division or modulo by the constant zero.
    DivByZero,
    /// `le`/`be` with a width other than 16, 32 or 64.
    BadEndian,
    /// An encoding rbpf 0.4.1's JIT and interpreter execute differently.
    RbpfDivergence {
        /// What differs.
        what: &'static str,
    },
}

impl Rule {
    /// A short stable name, as used in the corpus files (`# expect: NAME`).
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Empty => "empty",
            Rule::Truncated { .. } => "truncated",
            Rule::TooLong { .. } => "too-long",
            Rule::UnknownOpcode { .. } => "unknown-opcode",
            Rule::BadRegister => "bad-register",
            Rule::ReservedField { .. } => "reserved-field",
            Rule::IncompleteLddw => "incomplete-lddw",
            Rule::LddwPseudo => "lddw-pseudo",
            Rule::BackwardJump => "backward-jump",
            Rule::JumpOutOfRange { .. } => "jump-out-of-range",
            Rule::JumpIntoLddw { .. } => "jump-into-lddw",
            Rule::FallsOffEnd => "falls-off-end",
            Rule::Unreachable => "unreachable",
            Rule::Store => "store",
            Rule::Atomic => "atomic",
            Rule::LegacyPacketLoad => "legacy-packet-load",
            Rule::StackPointer => "stack",
            Rule::ContextOverwritten => "r1-overwritten",
            Rule::ContextAsValue => "r1-as-value",
            Rule::LoadBase { .. } => "load-base",
            Rule::LoadOutOfContext { .. } => "load-out-of-context",
            Rule::Uninitialized { .. } => "uninitialized",
            Rule::R0Unset => "r0-unset",
            Rule::CallNotAllowed { .. } => "call-not-allowed",
            Rule::LocalCall => "local-call",
            Rule::TailCall => "tail-call",
            Rule::BadShift { .. } => "bad-shift",
            Rule::DivByZero => "div-by-zero",
            Rule::BadEndian => "bad-endian",
            Rule::RbpfDivergence { .. } => "rbpf-divergence",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Empty => write!(f, "program is empty"),
            Rule::Truncated { len } => {
                write!(f, "{len} bytes is not a whole number of instructions")
            }
            Rule::TooLong { insns, max } => write!(f, "{insns} instructions, limit {max}"),
            Rule::UnknownOpcode { opcode } => {
                write!(f, "unknown or unsupported opcode {opcode:#04x}")
            }
            Rule::BadRegister => write!(f, "register number above r10"),
            Rule::ReservedField { field } => write!(f, "reserved field not zero: {field}"),
            Rule::IncompleteLddw => write!(f, "lddw without a well-formed second slot"),
            Rule::LddwPseudo => write!(
                f,
                "lddw with a pseudo source (map or BTF reference) needs a loader"
            ),
            Rule::BackwardJump => write!(f, "backward jump (loops are not allowed)"),
            Rule::JumpOutOfRange { target } => write!(f, "jump to {target}, outside the program"),
            Rule::JumpIntoLddw { target } => write!(f, "jump to {target}, the middle of an lddw"),
            Rule::FallsOffEnd => write!(f, "execution falls off the end of the program"),
            Rule::Unreachable => write!(f, "unreachable instruction"),
            Rule::Store => write!(
                f,
                "stores are not allowed (the context is read-only, there is no stack)"
            ),
            Rule::Atomic => write!(f, "atomic operations are not allowed"),
            Rule::LegacyPacketLoad => write!(f, "legacy packet loads are not allowed"),
            Rule::StackPointer => write!(
                f,
                "r10 (frame pointer) is not allowed: guards have no stack"
            ),
            Rule::ContextOverwritten => write!(
                f,
                "load through r1, which no longer holds the context pointer on every path"
            ),
            Rule::ContextAsValue => write!(
                f,
                "r1 may hold the context pointer here, which may only be the base of a load (no arithmetic, copy or comparison)"
            ),
            Rule::LoadBase { reg } => write!(f, "load base r{reg} is not the context pointer r1"),
            Rule::LoadOutOfContext { off, size, limit } => write!(
                f,
                "load of {size} bytes at r1{off:+} is outside the {limit}-byte context"
            ),
            Rule::Uninitialized { reg } => {
                write!(f, "r{reg} is read before it is written on some path")
            }
            Rule::R0Unset => write!(f, "r0 is not set on every path to exit"),
            Rule::CallNotAllowed { id } => {
                write!(f, "call to helper {id} is not on the allow-list")
            }
            Rule::LocalCall => write!(f, "bpf-to-bpf calls are not allowed"),
            Rule::TailCall => write!(f, "tail calls are not allowed"),
            Rule::BadShift { imm, width } => write!(f, "shift by {imm} on a {width}-bit operand"),
            Rule::DivByZero => write!(f, "division or modulo by the constant zero"),
            Rule::BadEndian => write!(f, "byte swap width must be 16, 32 or 64"),
            Rule::RbpfDivergence { what } => write!(
                f,
                "refused because rbpf's JIT and interpreter disagree: {what}"
            ),
        }
    }
}

/// Why a program was rejected: the instruction, its disassembly and the rule, as the kernel
/// verifier reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct VerifyError {
    /// Index of the offending instruction, when the rule is about one.
    pub index: Option<usize>,
    /// Its disassembly.
    pub insn: String,
    /// The rule it breaks.
    pub rule: Rule,
}

impl VerifyError {
    fn render(&self) -> String {
        match self.index {
            Some(i) => format!(
                "insn {i}: `{}`: {} [{}]",
                self.insn,
                self.rule,
                self.rule.name()
            ),
            None => format!("{} [{}]", self.rule, self.rule.name()),
        }
    }
}

/// What the verifier learned about an accepted program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Instruction slots.
    pub insns: usize,
    /// Most instructions any run executes (jumps only go forward).
    pub max_steps: usize,
    /// An upper bound of the x86-64 code rbpf's JIT emits for it, in bytes.
    pub jit_bytes: usize,
}

impl Verified {
    /// Whether rbpf's JIT has room for it (else it runs under the interpreter).
    pub fn fits_jit(&self) -> bool {
        self.jit_bytes <= JIT_BUFFER_BYTES
    }
}

/// The verifier's log: one line per instruction it examined, with the registers known to be
/// initialized on entry, then the verdict. Like the kernel's `log_level=1` output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierLog {
    /// The lines.
    pub lines: Vec<String>,
}

impl fmt::Display for VerifierLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// One decoded instruction slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Insn {
    pub opc: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

pub(crate) fn decode(prog: &[u8], i: usize) -> Insn {
    let b = &prog[i * 8..i * 8 + 8];
    Insn {
        opc: b[0],
        dst: b[1] & 0x0f,
        src: b[1] >> 4,
        off: i16::from_le_bytes([b[2], b[3]]),
        imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    }
}

/// Verifies `prog` under `policy`.
pub fn verify(prog: &[u8], policy: &Policy) -> Result<Verified, VerifyError> {
    check(prog, policy, None, false)
}

/// The rules that do not depend on a policy: any length, any context size, any helper
/// number. What we hand rbpf as its verifier hook, after the full check has passed.
pub fn verify_policy_free(prog: &[u8]) -> Result<Verified, VerifyError> {
    let policy = Policy {
        max_insns: usize::MAX,
        context_size: usize::MAX,
        helpers: Vec::new(),
    };
    check(prog, &policy, None, true)
}

/// Verifies `prog` and returns the log alongside the verdict.
pub fn verify_with_log(
    prog: &[u8],
    policy: &Policy,
) -> (Result<Verified, VerifyError>, VerifierLog) {
    let mut log = VerifierLog::default();
    let r = check(prog, policy, Some(&mut log), false);
    match &r {
        Ok(v) => log.lines.push(format!(
            "accepted: {} instructions, at most {} steps, JIT code <= {} bytes ({})",
            v.insns,
            v.max_steps,
            v.jit_bytes,
            if v.fits_jit() {
                "JIT"
            } else {
                "interpreter: too long for rbpf's JIT buffer"
            }
        )),
        Err(e) => log.lines.push(format!("rejected: {e}")),
    }
    (r, log)
}

/// Registers as a bit set.
type Regs = u16;

const fn bit(r: u8) -> Regs {
    1 << r
}

/// Not a register: "r1 still holds the context pointer" (on every path, after the meet).
/// `bit(1)` means "r1 holds an ordinary value"; at entry only `CTX` is set, so r1 can be a
/// load base but not a value. Writing r1 (clang reuses it once done with the context) clears
/// `CTX` and sets `bit(1)`; a join of both kinds of path keeps neither.
const CTX: Regs = 1 << 11;

fn regs_str(set: Regs) -> String {
    let mut v: Vec<String> = (0..=10u8)
        .filter(|r| set & bit(*r) != 0)
        .map(|r| format!("r{r}"))
        .collect();
    if set & CTX != 0 {
        v.insert(0, "r1=ctx".into());
    }
    v.join(",")
}

fn fail(prog: &[u8], index: usize, rule: Rule) -> VerifyError {
    VerifyError {
        index: Some(index),
        insn: disassemble_one(prog, index),
        rule,
    }
}

fn check(
    prog: &[u8],
    policy: &Policy,
    mut log: Option<&mut VerifierLog>,
    any_helper: bool,
) -> Result<Verified, VerifyError> {
    let whole = |rule| VerifyError {
        index: None,
        insn: String::new(),
        rule,
    };
    if prog.is_empty() {
        return Err(whole(Rule::Empty));
    }
    if prog.len() % ebpf::INSN_SIZE != 0 {
        return Err(whole(Rule::Truncated { len: prog.len() }));
    }
    let n = prog.len() / ebpf::INSN_SIZE;
    if n > policy.max_insns {
        return Err(whole(Rule::TooLong {
            insns: n,
            max: policy.max_insns,
        }));
    }

    // Registers initialized on entry to each instruction, intersected over its predecessors;
    // `None` until some predecessor reaches it. Only forward edges exist, so every predecessor
    // of `i` is below `i` and has been processed when `i` is.
    let mut state: Vec<Option<Regs>> = vec![None; n];
    // Instruction boundaries are fixed by decoding from slot 0: the slot after an lddw is its
    // immediate, never an instruction, so no jump may land there.
    let mut is_lddw_tail = vec![false; n];
    let mut j = 0;
    while j < n {
        if prog[j * 8] == ebpf::LD_DW_IMM && j + 1 < n {
            is_lddw_tail[j + 1] = true;
            j += 2;
        } else {
            j += 1;
        }
    }
    state[0] = Some(CTX);
    let mut jit_bytes = JIT_FIXED_BYTES;

    let mut i = 0;
    while i < n {
        let Some(init) = state[i] else {
            return Err(fail(prog, i, Rule::Unreachable));
        };
        if let Some(log) = log.as_deref_mut() {
            log.lines.push(format!(
                "{i}: ({:02x}) {:<28} ; init: {}",
                prog[i * 8],
                disassemble_one(prog, i),
                regs_str(init)
            ));
        }
        let insn = decode(prog, i);
        let e = |rule| fail(prog, i, rule);
        if insn.dst > 10 || insn.src > 10 {
            return Err(e(Rule::BadRegister));
        }
        let step = Step::of(&insn, i, n, prog, policy, any_helper).map_err(e)?;
        if step.needs_ctx && init & CTX == 0 {
            return Err(e(Rule::ContextOverwritten));
        }
        if step.reads & !init != 0 {
            let reg = (0..=10u8)
                .find(|r| step.reads & !init & bit(*r) != 0)
                .unwrap_or(0);
            let rule = if step.is_exit {
                Rule::R0Unset
            } else if reg == 1 && init & CTX != 0 {
                Rule::ContextAsValue
            } else {
                Rule::Uninitialized { reg }
            };
            return Err(e(rule));
        }
        jit_bytes += step.jit_bytes;
        let mut out = (init & !step.clobbers) | step.writes;
        if step.writes & bit(1) != 0 {
            out &= !CTX;
        }
        let len = if step.is_lddw { 2 } else { 1 };
        if let Some(target) = step.jump {
            if is_lddw_tail[target] {
                return Err(e(Rule::JumpIntoLddw { target }));
            }
            state[target] = Some(state[target].map_or(out, |s| s & out));
        }
        if step.falls_through {
            let next = i + len;
            if next >= n {
                return Err(e(Rule::FallsOffEnd));
            }
            state[next] = Some(state[next].map_or(out, |s| s & out));
        }
        i += len;
    }
    Ok(Verified {
        insns: n,
        max_steps: n,
        jit_bytes,
    })
}

/// The effect of one instruction on the analysis.
#[derive(Default)]
struct Step {
    reads: Regs,
    writes: Regs,
    clobbers: Regs,
    jump: Option<usize>,
    falls_through: bool,
    is_lddw: bool,
    is_exit: bool,
    /// A load: r1 must hold the context pointer.
    needs_ctx: bool,
    jit_bytes: usize,
}

const MOD_MEM: u8 = 0x60;

impl Step {
    fn of(
        insn: &Insn,
        i: usize,
        n: usize,
        prog: &[u8],
        policy: &Policy,
        any_helper: bool,
    ) -> Result<Step, Rule> {
        let class = insn.opc & ebpf::BPF_CLS_MASK;
        let unknown = Err(Rule::UnknownOpcode { opcode: insn.opc });
        let reserved = |ok: bool, field: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(Rule::ReservedField { field })
            }
        };
        let no_r10 = |r: u8| {
            if r == 10 {
                Err(Rule::StackPointer)
            } else {
                Ok(())
            }
        };
        let mut s = Step {
            falls_through: true,
            jit_bytes: 16,
            ..Step::default()
        };
        match class {
            ebpf::BPF_LD => {
                if insn.opc == ebpf::LD_DW_IMM {
                    if i + 1 >= n {
                        return Err(Rule::IncompleteLddw);
                    }
                    let tail = decode(prog, i + 1);
                    if tail.opc != 0 || tail.dst != 0 || tail.src != 0 || tail.off != 0 {
                        return Err(Rule::IncompleteLddw);
                    }
                    if insn.src != 0 {
                        return Err(Rule::LddwPseudo);
                    }
                    reserved(insn.off == 0, "lddw offset")?;
                    no_r10(insn.dst)?;
                    s.writes = bit(insn.dst);
                    s.is_lddw = true;
                    return Ok(s);
                }
                let mode = insn.opc & 0xe0;
                if mode == ebpf::BPF_ABS || mode == ebpf::BPF_IND {
                    return Err(Rule::LegacyPacketLoad);
                }
                unknown
            }
            ebpf::BPF_LDX => {
                if insn.opc & 0xe0 != MOD_MEM {
                    return unknown;
                }
                reserved(insn.imm == 0, "ldx immediate")?;
                no_r10(insn.src)?;
                no_r10(insn.dst)?;
                if insn.src != 1 {
                    return Err(Rule::LoadBase { reg: insn.src });
                }
                s.needs_ctx = true;
                let size = match insn.opc & 0x18 {
                    ebpf::BPF_B => 1,
                    ebpf::BPF_H => 2,
                    ebpf::BPF_W => 4,
                    _ => 8,
                };
                let off = i64::from(insn.off);
                if off < 0 || off as usize + size > policy.context_size {
                    return Err(Rule::LoadOutOfContext {
                        off,
                        size,
                        limit: policy.context_size,
                    });
                }
                s.writes = bit(insn.dst);
                Ok(s)
            }
            ebpf::BPF_ST => {
                if insn.opc & 0xe0 == MOD_MEM {
                    Err(Rule::Store)
                } else {
                    unknown
                }
            }
            ebpf::BPF_STX => match insn.opc & 0xe0 {
                MOD_MEM => Err(Rule::Store),
                ebpf::BPF_XADD => Err(Rule::Atomic),
                _ => unknown,
            },
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
                let is64 = class == ebpf::BPF_ALU64;
                let op = insn.opc & ebpf::BPF_ALU_OP_MASK;
                let is_reg = insn.opc & ebpf::BPF_X != 0;
                no_r10(insn.dst)?;
                match op {
                    ebpf::BPF_END => {
                        if is64 {
                            // BPF_ALU64 | BPF_END is the unconditional bswap of the v4 ISA.
                            return unknown;
                        }
                        reserved(insn.src == 0, "byte swap source register")?;
                        reserved(insn.off == 0, "byte swap offset")?;
                        if !matches!(insn.imm, 16 | 32 | 64) {
                            return Err(Rule::BadEndian);
                        }
                        if !is_reg && insn.imm != 64 {
                            return Err(Rule::RbpfDivergence {
                                what: "le16/le32 are a no-op in the JIT but truncate in the interpreter",
                            });
                        }
                        s.reads = bit(insn.dst);
                        s.writes = bit(insn.dst);
                        return Ok(s);
                    }
                    ebpf::BPF_NEG => {
                        if is_reg {
                            return unknown;
                        }
                        reserved(
                            insn.src == 0 && insn.imm == 0 && insn.off == 0,
                            "neg operands",
                        )?;
                        if is64 {
                            return Err(Rule::RbpfDivergence {
                                what: "neg64 of i64::MIN panics in rbpf's interpreter when built with overflow checks (write `mul rX, -1`)",
                            });
                        }
                        s.reads = bit(insn.dst);
                        s.writes = bit(insn.dst);
                        return Ok(s);
                    }
                    ebpf::BPF_ADD
                    | ebpf::BPF_SUB
                    | ebpf::BPF_MUL
                    | ebpf::BPF_DIV
                    | ebpf::BPF_OR
                    | ebpf::BPF_AND
                    | ebpf::BPF_LSH
                    | ebpf::BPF_RSH
                    | ebpf::BPF_MOD
                    | ebpf::BPF_XOR
                    | ebpf::BPF_MOV
                    | ebpf::BPF_ARSH => {}
                    _ => return unknown,
                }
                reserved(
                    insn.off == 0,
                    "ALU offset (signed div/mod and movsx of the v4 ISA; rbpf 0.4.1 would run the unsigned form)",
                )?;
                if is_reg {
                    reserved(insn.imm == 0, "ALU immediate with a register source")?;
                    no_r10(insn.src)?;
                    if op == ebpf::BPF_MOV && !is64 {
                        return Err(Rule::RbpfDivergence {
                            what: "mov32 reg, reg keeps the upper half in the JIT but clears it in the interpreter",
                        });
                    }
                    s.reads |= bit(insn.src);
                } else {
                    reserved(insn.src == 0, "ALU source register with an immediate")?;
                    let width = if is64 { 64 } else { 32 };
                    if matches!(op, ebpf::BPF_LSH | ebpf::BPF_RSH | ebpf::BPF_ARSH)
                        && !(0..width).contains(&insn.imm)
                    {
                        return Err(Rule::BadShift {
                            imm: insn.imm,
                            width: width as u32,
                        });
                    }
                    if matches!(op, ebpf::BPF_DIV | ebpf::BPF_MOD) && insn.imm == 0 {
                        return Err(Rule::DivByZero);
                    }
                }
                if op != ebpf::BPF_MOV {
                    s.reads |= bit(insn.dst);
                }
                if matches!(op, ebpf::BPF_MUL | ebpf::BPF_DIV | ebpf::BPF_MOD) {
                    s.jit_bytes = 64;
                }
                s.writes = bit(insn.dst);
                Ok(s)
            }
            ebpf::BPF_JMP | ebpf::BPF_JMP32 => {
                let is32 = class == ebpf::BPF_JMP32;
                let op = insn.opc & ebpf::BPF_ALU_OP_MASK;
                let is_reg = insn.opc & ebpf::BPF_X != 0;
                match op {
                    ebpf::BPF_EXIT if !is32 => {
                        if is_reg {
                            return unknown;
                        }
                        reserved(
                            insn.dst == 0 && insn.src == 0 && insn.off == 0 && insn.imm == 0,
                            "exit operands",
                        )?;
                        s.reads = bit(0);
                        s.falls_through = false;
                        s.is_exit = true;
                        return Ok(s);
                    }
                    ebpf::BPF_CALL if !is32 => {
                        if is_reg {
                            return Err(Rule::TailCall);
                        }
                        match insn.src {
                            0 => {}
                            1 => return Err(Rule::LocalCall),
                            _ => return Err(Rule::CallNotAllowed { id: insn.imm }),
                        }
                        reserved(insn.dst == 0 && insn.off == 0, "call operands")?;
                        let arity = match policy.helpers.iter().find(|h| h.id as i32 == insn.imm) {
                            Some(h) => h.arity.min(5),
                            None if any_helper => 0,
                            None => return Err(Rule::CallNotAllowed { id: insn.imm }),
                        };
                        s.reads = (1..=arity).fold(0, |acc, r| acc | bit(r));
                        s.writes = bit(0);
                        s.clobbers = CTX | bit(1) | bit(2) | bit(3) | bit(4) | bit(5);
                        s.jit_bytes = 32;
                        return Ok(s);
                    }
                    ebpf::BPF_JA if !is32 => {
                        if is_reg {
                            return unknown;
                        }
                        reserved(
                            insn.dst == 0 && insn.src == 0 && insn.imm == 0,
                            "ja operands",
                        )?;
                        s.falls_through = false;
                    }
                    ebpf::BPF_JEQ
                    | ebpf::BPF_JGT
                    | ebpf::BPF_JGE
                    | ebpf::BPF_JSET
                    | ebpf::BPF_JNE
                    | ebpf::BPF_JSGT
                    | ebpf::BPF_JSGE
                    | ebpf::BPF_JLT
                    | ebpf::BPF_JLE
                    | ebpf::BPF_JSLT
                    | ebpf::BPF_JSLE => {
                        no_r10(insn.dst)?;
                        s.reads = bit(insn.dst);
                        if is_reg {
                            reserved(insn.imm == 0, "jump immediate with a register source")?;
                            no_r10(insn.src)?;
                            s.reads |= bit(insn.src);
                        } else {
                            reserved(insn.src == 0, "jump source register with an immediate")?;
                            let unsigned = matches!(
                                op,
                                ebpf::BPF_JEQ
                                    | ebpf::BPF_JGT
                                    | ebpf::BPF_JGE
                                    | ebpf::BPF_JLT
                                    | ebpf::BPF_JLE
                                    | ebpf::BPF_JNE
                            );
                            if !is32 && unsigned && insn.imm < 0 {
                                return Err(Rule::RbpfDivergence {
                                    what: "a negative immediate in a 64-bit unsigned compare is zero-extended by the interpreter and sign-extended by the JIT (load it with lddw instead)",
                                });
                            }
                        }
                    }
                    _ => return unknown,
                }
                // A jump: forward, in range, not into an lddw.
                if insn.off < 0 {
                    return Err(Rule::BackwardJump);
                }
                let target = i as i64 + 1 + i64::from(insn.off);
                if target >= n as i64 {
                    return Err(Rule::JumpOutOfRange { target });
                }
                s.jump = Some(target as usize);
                Ok(s)
            }
            _ => unknown,
        }
    }
}

/// Opcodes rbpf 0.4.1's disassembler knows (it panics on any other).
fn rbpf_disassembles(opc: u8) -> bool {
    use rbpf::ebpf::*;
    let class = opc & BPF_CLS_MASK;
    match class {
        BPF_LD => matches!(
            opc,
            LD_ABS_B
                | LD_ABS_H
                | LD_ABS_W
                | LD_ABS_DW
                | LD_IND_B
                | LD_IND_H
                | LD_IND_W
                | LD_IND_DW
                | LD_DW_IMM
        ),
        BPF_LDX => matches!(opc, LD_B_REG | LD_H_REG | LD_W_REG | LD_DW_REG),
        BPF_ST => matches!(opc, ST_B_IMM | ST_H_IMM | ST_W_IMM | ST_DW_IMM),
        BPF_STX => matches!(
            opc,
            ST_B_REG | ST_H_REG | ST_W_REG | ST_DW_REG | ST_W_XADD | ST_DW_XADD
        ),
        BPF_ALU | BPF_ALU64 => {
            let op = opc & BPF_ALU_OP_MASK;
            match op {
                BPF_NEG => opc & BPF_X == 0,
                BPF_END => class == BPF_ALU,
                0xe0 | 0xf0 => false,
                _ => true,
            }
        }
        BPF_JMP => {
            let op = opc & BPF_ALU_OP_MASK;
            match op {
                BPF_JA | BPF_EXIT => opc & BPF_X == 0,
                BPF_CALL => true,
                0xe0 | 0xf0 => false,
                _ => true,
            }
        }
        BPF_JMP32 => {
            let op = opc & BPF_ALU_OP_MASK;
            !matches!(op, BPF_JA | BPF_CALL | BPF_EXIT | 0xe0 | 0xf0)
        }
        _ => false,
    }
}

/// The disassembly of instruction `i` (rbpf's syntax), or its raw fields when rbpf's
/// disassembler does not know it.
pub fn disassemble_one(prog: &[u8], i: usize) -> String {
    if (i + 1) * 8 > prog.len() {
        return String::from("<out of range>");
    }
    let insn = decode(prog, i);
    let raw = || {
        format!(
            "<opcode {:#04x} dst r{} src r{} off {} imm {}>",
            insn.opc, insn.dst, insn.src, insn.off, insn.imm
        )
    };
    if !rbpf_disassembles(insn.opc) || (insn.opc == ebpf::CALL && insn.src > 1) {
        return raw();
    }
    if insn.opc == ebpf::JA && insn.off == i16::MIN {
        // rbpf's disassembler computes `-insn.off` in i16 for `ja`: an overflow (found by
        // fuzzing).
        return String::from("ja -0x8000");
    }
    let end = if insn.opc == ebpf::LD_DW_IMM {
        i + 2
    } else {
        i + 1
    };
    if end * 8 > prog.len() {
        return raw();
    }
    rbpf::disassembler::to_insn_vec(&prog[i * 8..end * 8])
        .into_iter()
        .next()
        .map_or_else(raw, |h| h.desc)
}

/// The whole program, one instruction per line with its index.
pub fn disassemble(prog: &[u8]) -> String {
    let mut out = String::new();
    let n = prog.len() / 8;
    let mut i = 0;
    while i < n {
        let opc = prog[i * 8];
        out.push_str(&format!("{i:4}: {}\n", disassemble_one(prog, i)));
        i += if opc == ebpf::LD_DW_IMM { 2 } else { 1 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/run.sh`: rbpf's disassembler negates a `ja` offset of `i16::MIN`.
    #[test]
    fn ja_with_the_most_negative_offset_is_reported_not_a_panic() {
        let prog = [0x05, 0, 0x00, 0x80, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        let e = verify(&prog, &Policy::default()).unwrap_err();
        assert_eq!(e.rule, Rule::BackwardJump);
        assert_eq!(e.insn, "ja -0x8000");
        let crash = [0x05, 0, 0, 0x80, 0x7c, 0, 0x3f, 0x80];
        assert!(verify(&crash, &Policy::default()).is_err());
    }
}
