//! Our verifier, of the Linux kernel verifier's class, sized for the guard's world.
//!
//! A program is accepted only if every path from its entry is proven safe by abstract
//! interpretation: each register has a type — a scalar (known bits, signed and unsigned
//! ranges: [`domain`]), or a pointer into the context, the stack or the program's read-only
//! data, with a fixed or bounded variable offset — and each of the 512 stack bytes has a
//! state (a spilled register, written bytes, or nothing). Branches refine ranges
//! ([`transfer`]); paths are explored one by one with pruning against states already proven
//! safe, and loops are allowed when exploration ends within a budget of processed
//! instructions (`explore.rs`). Rejections name the instruction, its disassembly, the rule
//! and the register state that failed.
//!
//! # The rules
//!
//! Each has a [`Rule`] that names it in the error and in the log.
//!
//! - **Shape** (checked first, per instruction: `structure.rs`). Non-empty, a whole number of
//!   8-byte instructions, at most [`Policy::max_insns`] of them and never more than
//!   [`RBPF_MAX_INSNS`] (rbpf's interpreter computes jump targets in `i16`). Every opcode
//!   is one rbpf 0.4.1 runs as the instruction set defines it; unused fields are zero;
//!   registers are `r0`..`r10` and `r10` is never written. Jumps land inside the program,
//!   never on the second slot of `lddw`; nothing falls off the end; every instruction is
//!   reachable in the control-flow graph.
//! - **Memory.** Loads and stores go through a pointer register, and every access is inside
//!   its region on every path, for every value of a variable offset: the context
//!   ([`Policy::context_size`] bytes, read-only), the read-only data (read-only), the stack
//!   (`r10 - 512 .. r10`, constant offsets only). Stores go to the stack only. A stack read
//!   needs every byte written before on that path. An aligned 8-byte store spills a register
//!   (a pointer may be spilled and read back whole); reading part of a spilled pointer, or
//!   overwriting part of it, is refused.
//! - **Pointers never leak.** A pointer never becomes a number the guard can see: only
//!   `ptr ± scalar` (the scalar bounded, the stack's offset constant) and the difference of
//!   two pointers into one region are allowed; a pointer is compared only with a pointer
//!   into the same region, both inside it; it is not returned, passed to a helper, or stored
//!   except as a whole spill.
//! - **Termination.** Backward jumps are allowed; exploration must finish within
//!   [`Policy::max_processed`] units of work (instructions processed, states copied and
//!   compared),
//!   and a path that comes back to an unfinished state equal to the current one is an
//!   infinite loop.
//! - **Calls.** None, except helpers in [`Policy::helpers`], with scalar arguments. A call
//!   sets `r0` to an unknown scalar and leaves `r1`..`r5` unreadable, as in the kernel. No
//!   local (bpf-to-bpf) calls, no tail calls.
//! - **Values.** Every register is written before it is read; `r0` is a scalar at every
//!   `exit`.
//! - **rbpf agreement.** Values are tracked with rbpf 0.4.1's semantics: `x / 0 = 0`; `x % 0`
//!   leaves the whole destination unchanged (the 32-bit form too, where the ISA zeroes the
//!   upper half); register shift amounts are masked to the width. Encodings its JIT and
//!   interpreter execute differently are refused, so a verified guard gives the same answer
//!   under both: `mov32 reg, reg` (the JIT does not clear the upper half), `le16`/`le32` (the
//!   JIT does not truncate), a negative immediate in a 64-bit `jeq`/`jne`/`jgt`/`jge`/`jlt`/
//!   `jle` (the interpreter zero-extends it, the JIT sign-extends it) and `neg64` (the
//!   interpreter's `-(x as i64)` panics on `i64::MIN` with overflow checks). Shift immediates
//!   at least the width, and division or modulo by the constant zero, are refused as
//!   mistakes.

use std::fmt;

use rbpf::ebpf;

use crate::context::CONTEXT_SIZE;

pub mod domain;
mod explore;
pub mod state;
mod structure;
pub mod transfer;

pub use state::Region;

/// Longest guard accepted by default, in instruction slots.
pub const DEFAULT_MAX_INSNS: usize = 512;

/// Longest guard accepted under any policy: rbpf 0.4.1's interpreter computes a jump's
/// target as `(pc as i16 + off) as usize`, which wraps (or panics) past `i16::MAX`.
pub const RBPF_MAX_INSNS: usize = i16::MAX as usize;

/// Work the exploration may do by default, over all paths: instructions processed plus
/// states copied and compared, weighted by their size. The kernel allows one million instructions for
/// programs of up to a million; guards are at most a few hundred instructions and loop over
/// at most eight objects (the loop over them costs about 350), and this bound keeps the
/// worst case, a program built to exhaust it, within a few milliseconds.
pub const DEFAULT_MAX_PROCESSED: usize = 50_000;

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
    /// How many of `r1`..`r5` it reads; they must be initialized scalars at the call.
    pub arity: u8,
}

/// What the verifier accepts beyond the fixed rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Most instruction slots (an `lddw` takes two); capped at [`RBPF_MAX_INSNS`].
    pub max_insns: usize,
    /// Bytes loadable from the context pointer.
    pub context_size: usize,
    /// Helpers a program may call.
    pub helpers: Vec<HelperSpec>,
    /// Most work the exploration may do over all paths: instructions processed plus states
    /// copied and compared, weighted by their size.
    pub max_processed: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_insns: DEFAULT_MAX_INSNS,
            context_size: CONTEXT_SIZE,
            helpers: Vec::new(),
            max_processed: DEFAULT_MAX_PROCESSED,
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
    /// More instructions than the policy (or rbpf) allows.
    TooLong {
        /// Instruction slots.
        insns: usize,
        /// The limit.
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
    /// `lddw` with a pseudo source we cannot resolve (a map, BTF, or read-only data the
    /// program does not have or points past).
    LddwPseudo,
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
    /// No path in the control-flow graph reaches this instruction.
    Unreachable,
    /// A store outside the stack.
    Store {
        /// Where it would write.
        region: Region,
    },
    /// An atomic operation.
    Atomic,
    /// A legacy packet load (`ldabs*`, `ldind*`).
    LegacyPacketLoad,
    /// A write to `r10`, the frame pointer.
    FramePointerWrite,
    /// A load or store through a register that holds a number, not a pointer.
    NotAPointer {
        /// The base register.
        reg: u8,
    },
    /// An access not entirely inside its region on some path.
    OutOfBounds {
        /// The region.
        region: Region,
        /// The base register.
        reg: u8,
        /// Smallest offset of the access from the region's start (`r10` for the stack).
        min: i64,
        /// Largest offset.
        max: i64,
        /// Access size.
        size: usize,
        /// The region's size.
        limit: usize,
    },
    /// A stack access through a pointer whose offset is not a constant.
    StackVariableOffset {
        /// The register.
        reg: u8,
    },
    /// A stack read of bytes not written on some path.
    StackUninitialized {
        /// Offset from `r10`.
        off: i64,
        /// Access size.
        size: usize,
    },
    /// Part of a spilled pointer read or overwritten.
    SpilledPointerPartial {
        /// Offset from `r10` of the access.
        off: i64,
    },
    /// A register read before it is written on some path.
    Uninitialized {
        /// The register.
        reg: u8,
    },
    /// `exit` reachable with `r0` unset on some path.
    R0Unset,
    /// `exit` reachable with a pointer in `r0`.
    PointerReturned,
    /// A pointer compared with a number or with a pointer into another region.
    PointerComparison {
        /// The pointer register.
        reg: u8,
    },
    /// Arithmetic that would turn a pointer into something other than a pointer.
    PointerArithmetic {
        /// The register.
        reg: u8,
        /// What was attempted.
        what: &'static str,
    },
    /// A pointer offset by a scalar whose range is not bounded (or too wide).
    UnboundedPointerOffset {
        /// The register.
        reg: u8,
        /// Smallest (signed) value.
        min: i64,
        /// Largest (signed) value.
        max: i64,
    },
    /// A pointer made visible outside a register or a whole spill.
    PointerLeak {
        /// The register.
        reg: u8,
        /// How.
        what: &'static str,
    },
    /// The exploration did more work (instructions processed, states copied and compared)
    /// than the budget allows.
    Budget {
        /// The budget.
        max: usize,
    },
    /// A path returns to an unfinished state equal to the current one.
    InfiniteLoop,
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
            Rule::JumpOutOfRange { .. } => "jump-out-of-range",
            Rule::JumpIntoLddw { .. } => "jump-into-lddw",
            Rule::FallsOffEnd => "falls-off-end",
            Rule::Unreachable => "unreachable",
            Rule::Store { .. } => "store",
            Rule::Atomic => "atomic",
            Rule::LegacyPacketLoad => "legacy-packet-load",
            Rule::FramePointerWrite => "fp-write",
            Rule::NotAPointer { .. } => "not-a-pointer",
            Rule::OutOfBounds { .. } => "out-of-bounds",
            Rule::StackVariableOffset { .. } => "stack-var-off",
            Rule::StackUninitialized { .. } => "stack-uninit",
            Rule::SpilledPointerPartial { .. } => "spill-partial",
            Rule::Uninitialized { .. } => "uninitialized",
            Rule::R0Unset => "r0-unset",
            Rule::PointerReturned => "pointer-returned",
            Rule::PointerComparison { .. } => "pointer-compare",
            Rule::PointerArithmetic { .. } => "pointer-arith",
            Rule::UnboundedPointerOffset { .. } => "pointer-unbounded",
            Rule::PointerLeak { .. } => "pointer-leak",
            Rule::Budget { .. } => "budget",
            Rule::InfiniteLoop => "infinite-loop",
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
                "lddw with a pseudo source (map, BTF or data) the guard does not have"
            ),
            Rule::JumpOutOfRange { target } => write!(f, "jump to {target}, outside the program"),
            Rule::JumpIntoLddw { target } => write!(f, "jump to {target}, the middle of an lddw"),
            Rule::FallsOffEnd => write!(f, "execution falls off the end of the program"),
            Rule::Unreachable => write!(f, "unreachable instruction"),
            Rule::Store { region } => write!(
                f,
                "store into the {region}: only the stack is writable"
            ),
            Rule::Atomic => write!(f, "atomic operations are not allowed"),
            Rule::LegacyPacketLoad => write!(f, "legacy packet loads are not allowed"),
            Rule::FramePointerWrite => write!(f, "r10 (the frame pointer) is read-only"),
            Rule::NotAPointer { reg } => {
                write!(f, "memory access through r{reg}, which holds a number, not a pointer")
            }
            Rule::OutOfBounds {
                region,
                reg,
                min,
                max,
                size,
                limit,
            } => {
                let base = if *region == Region::Stack { "r10" } else { "start" };
                if min == max {
                    write!(
                        f,
                        "access of {size} bytes through r{reg} at {base}{min:+} is outside the {limit}-byte {region}"
                    )
                } else {
                    write!(
                        f,
                        "access of {size} bytes through r{reg} at {base}{min:+}..={base}{max:+} (variable offset) may leave the {limit}-byte {region}"
                    )
                }
            }
            Rule::StackVariableOffset { reg } => write!(
                f,
                "r{reg} points into the stack at a variable offset: stack offsets must be constants"
            ),
            Rule::StackUninitialized { off, size } => {
                write!(f, "read of {size} bytes at r10{off:+}, not all written on this path")
            }
            Rule::SpilledPointerPartial { off } => write!(
                f,
                "access at r10{off:+} touches part of a spilled pointer (only whole 8-byte fills)"
            ),
            Rule::Uninitialized { reg } => {
                write!(f, "r{reg} is read before it is written on some path")
            }
            Rule::R0Unset => write!(f, "r0 is not set on every path to exit"),
            Rule::PointerReturned => write!(f, "r0 holds a pointer at exit: it would leak an address"),
            Rule::PointerComparison { reg } => write!(
                f,
                "r{reg} is a pointer compared with a number or with a pointer into another region"
            ),
            Rule::PointerArithmetic { reg, what } => {
                write!(f, "pointer arithmetic on r{reg} refused: {what}")
            }
            Rule::UnboundedPointerOffset { reg, min, max } => write!(
                f,
                "pointer r{reg} offset by a value in {min}..={max}: offsets must stay within ±{MAX}",
                MAX = 1i64 << 29
            ),
            Rule::PointerLeak { reg, what } => write!(f, "r{reg} would leak a pointer: {what}"),
            Rule::Budget { max } => write!(
                f,
                "exploration exceeded its budget of {max} (instructions processed, states copied and compared): a loop is not proven to end, or there are too many distinct paths"
            ),
            Rule::InfiniteLoop => write!(
                f,
                "infinite loop: this path reaches the same state again without progress"
            ),
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

/// Why a program was rejected: the instruction, its disassembly, the rule and the register
/// state on the failing path, as the kernel verifier reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct VerifyError {
    /// Index of the offending instruction, when the rule is about one.
    pub index: Option<usize>,
    /// Its disassembly.
    pub insn: String,
    /// The rule it breaks.
    pub rule: Rule,
    /// Registers and stack on the failing path before the instruction (kernel-log style,
    /// `R3=ctx(off=96..=208) R4=scalar(umax=7)`); empty for rules about the whole program
    /// or a single instruction's encoding.
    pub state: String,
}

impl VerifyError {
    fn render(&self) -> String {
        let mut s = match self.index {
            Some(i) => format!(
                "insn {i}: `{}`: {} [{}]",
                self.insn,
                self.rule,
                self.rule.name()
            ),
            None => format!("{} [{}]", self.rule, self.rule.name()),
        };
        if !self.state.is_empty() {
            s.push_str("; state: ");
            s.push_str(&self.state);
        }
        s
    }
}

/// What the verifier learned about an accepted program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Instruction slots.
    pub insns: usize,
    /// Most instructions any run executes: the instructions the exploration processed.
    pub max_steps: usize,
    /// An upper bound of the x86-64 code rbpf's JIT emits for it, in bytes.
    pub jit_bytes: usize,
    /// States stored for pruning.
    pub states: usize,
    /// Whether the program calls a helper (rbpf 0.4.1's JIT calls helpers with the stack
    /// misaligned for the C ABI, so such programs run under the interpreter).
    pub calls_helpers: bool,
}

impl Verified {
    /// Whether rbpf's JIT can run it: its code fits the JIT's buffer and it calls no helper.
    pub fn fits_jit(&self) -> bool {
        self.jit_bytes <= JIT_BUFFER_BYTES && !self.calls_helpers
    }
}

/// The verifier's log: one line per instruction processed, with the register and stack state
/// before it, then the verdict. Like the kernel's `log_level=2` output.
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

/// Verifies `prog` (no read-only data) under `policy`.
pub fn verify(prog: &[u8], policy: &Policy) -> Result<Verified, VerifyError> {
    check(prog, &[], policy, None, false)
}

/// Verifies `prog` with its read-only data: `lddw` with source [`PSEUDO_RODATA`] loads a
/// pointer to `rodata` plus the offset in its second slot.
pub fn verify_with_rodata(
    prog: &[u8],
    rodata: &[u8],
    policy: &Policy,
) -> Result<Verified, VerifyError> {
    check(prog, rodata, policy, None, false)
}

pub use structure::PSEUDO_RODATA;

/// The structural rules alone, for any length up to [`RBPF_MAX_INSNS`], any helper number
/// and no pseudo `lddw`: what we hand rbpf as its verifier hook, which sees the program after
/// read-only data addresses were written into it, once the full check has passed.
pub fn verify_policy_free(prog: &[u8]) -> Result<Verified, VerifyError> {
    let policy = Policy {
        max_insns: RBPF_MAX_INSNS,
        context_size: usize::MAX,
        helpers: Vec::new(),
        max_processed: 0,
    };
    let (n, shapes) = shape_check(prog, &policy, true)?;
    Ok(Verified {
        insns: n,
        max_steps: 0,
        jit_bytes: jit_bytes(&shapes),
        states: 0,
        calls_helpers: false,
    })
}

/// Verifies `prog` and returns the log alongside the verdict.
pub fn verify_with_log(
    prog: &[u8],
    policy: &Policy,
) -> (Result<Verified, VerifyError>, VerifierLog) {
    verify_with_rodata_and_log(prog, &[], policy)
}

/// [`verify_with_rodata`], with the log.
pub fn verify_with_rodata_and_log(
    prog: &[u8],
    rodata: &[u8],
    policy: &Policy,
) -> (Result<Verified, VerifyError>, VerifierLog) {
    let mut log = VerifierLog::default();
    let r = check(prog, rodata, policy, Some(&mut log), false);
    match &r {
        Ok(v) => log.lines.push(format!(
            "accepted: {} instructions, {} processed, {} states stored, JIT code <= {} bytes ({})",
            v.insns,
            v.max_steps,
            v.states,
            v.jit_bytes,
            if v.fits_jit() {
                "JIT"
            } else if v.calls_helpers {
                "interpreter: calls helpers"
            } else {
                "interpreter: too long for rbpf's JIT buffer"
            }
        )),
        Err(e) => log.lines.push(format!("rejected: {e}")),
    }
    (r, log)
}

fn jit_bytes(shapes: &[Option<structure::Shape>]) -> usize {
    JIT_FIXED_BYTES + shapes.iter().flatten().map(|s| s.jit_bytes).sum::<usize>()
}

fn shape_check(
    prog: &[u8],
    policy: &Policy,
    gate: bool,
) -> Result<(usize, Vec<Option<structure::Shape>>), VerifyError> {
    let whole = |rule| VerifyError {
        index: None,
        insn: String::new(),
        rule,
        state: String::new(),
    };
    if prog.is_empty() {
        return Err(whole(Rule::Empty));
    }
    if prog.len() % ebpf::INSN_SIZE != 0 {
        return Err(whole(Rule::Truncated { len: prog.len() }));
    }
    let n = prog.len() / ebpf::INSN_SIZE;
    let max = policy.max_insns.min(RBPF_MAX_INSNS);
    if n > max {
        return Err(whole(Rule::TooLong { insns: n, max }));
    }
    let shapes = structure::check_all(prog, policy, gate).map_err(|(i, rule)| VerifyError {
        index: Some(i),
        insn: disassemble_one(prog, i),
        rule,
        state: String::new(),
    })?;
    Ok((n, shapes))
}

fn check(
    prog: &[u8],
    rodata: &[u8],
    policy: &Policy,
    log: Option<&mut VerifierLog>,
    gate: bool,
) -> Result<Verified, VerifyError> {
    let (n, shapes) = shape_check(prog, policy, gate)?;
    let out = explore::Explorer::new(prog, &shapes, policy, rodata, log).run()?;
    let calls_helpers = (0..n).any(|i| shapes[i].is_some() && prog[i * 8] == ebpf::CALL);
    Ok(Verified {
        insns: n,
        max_steps: out.processed,
        jit_bytes: jit_bytes(&shapes),
        states: out.states,
        calls_helpers,
    })
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
        assert!(matches!(e.rule, Rule::JumpOutOfRange { .. }), "{e}");
        assert_eq!(e.insn, "ja -0x8000");
        let crash = [0x05, 0, 0, 0x80, 0x7c, 0, 0x3f, 0x80];
        assert!(verify(&crash, &Policy::default()).is_err());
    }
}
