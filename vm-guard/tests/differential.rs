//! Property tests: verified programs terminate within their length and never fault, the JIT
//! agrees with the interpreter (and with a small reference model), and the built-in guards
//! decide exactly as the native checks they mirror.

use proptest::prelude::*;
use rbpf::ebpf;
use sbpf_guard::{
    builtin::code,
    context::{ContextBuf, GuardContext, ALL_OPCODES, CONTEXT_SIZE},
    verifier::verify,
    Engine, Guard, Policy, Program, Stage, Verdict,
};
use sbpf_ring::{
    abi::{opcode, Sqe},
    validate::{check_entry, Limits, ObjectLimit, Validator},
};

// ---------------------------------------------------------------------------------------------
// A reference model of eBPF as rbpf runs it, written from the instruction-set definition with
// rbpf's choices where the definition leaves room (x / 0 = 0, x % 0 = x for the whole
// register, shift amounts masked). Its memory is its own: the context at a made-up address,
// a 512-byte stack below another, and any access outside them is a panic — an independent
// bounds check. Pointers are those made-up addresses, so a pointer that leaked into the
// result would make the model disagree with the engines. It counts steps.

const MODEL_CTX: u64 = 0x1000_0000;
const MODEL_FP: u64 = 0x2000_0000;

mod common;

use common::GuardedContext;

fn model_run(prog: &[u8], ctx: &[u8]) -> (u64, usize) {
    let n = prog.len() / 8;
    let mut reg = [0u64; 11];
    let mut stack = [0u8; 512];
    reg[1] = MODEL_CTX;
    reg[10] = MODEL_FP;
    let mut pc = 0usize;
    let mut steps = 0usize;
    let region = |addr: u64, size: usize| -> (bool, usize) {
        let end = addr
            .checked_add(size as u64)
            .expect("model: address overflow");
        if addr >= MODEL_CTX && end <= MODEL_CTX + ctx.len() as u64 {
            (true, (addr - MODEL_CTX) as usize)
        } else if addr >= MODEL_FP - 512 && end <= MODEL_FP {
            (false, (addr - (MODEL_FP - 512)) as usize)
        } else {
            panic!("model: access of {size} bytes at {addr:#x} is out of bounds")
        }
    };
    loop {
        assert!(pc < n, "model: pc {pc} ran off a program of {n}");
        assert!(steps < 10_000_000, "model: no end in sight");
        steps += 1;
        let w = &prog[pc * 8..pc * 8 + 8];
        let (opc, dst, src) = (w[0], (w[1] & 15) as usize, (w[1] >> 4) as usize);
        let off = i16::from_le_bytes([w[2], w[3]]);
        let imm = i32::from_le_bytes([w[4], w[5], w[6], w[7]]);
        pc += 1;
        let class = opc & 7;
        let size = match opc & 0x18 {
            ebpf::BPF_B => 1,
            ebpf::BPF_H => 2,
            ebpf::BPF_W => 4,
            _ => 8,
        };
        match class {
            ebpf::BPF_LD => {
                let hi = i32::from_le_bytes(prog[pc * 8 + 4..pc * 8 + 8].try_into().unwrap());
                reg[dst] = (imm as u32 as u64) | ((hi as u32 as u64) << 32);
                pc += 1;
            }
            ebpf::BPF_LDX => {
                let addr = reg[src].wrapping_add(off as i64 as u64);
                let (is_ctx, at) = region(addr, size);
                let mem: &[u8] = if is_ctx { ctx } else { &stack };
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(&mem[at..at + size]);
                reg[dst] = u64::from_le_bytes(b);
            }
            ebpf::BPF_ST | ebpf::BPF_STX => {
                let addr = reg[dst].wrapping_add(off as i64 as u64);
                let (is_ctx, at) = region(addr, size);
                assert!(!is_ctx, "model: store into the context");
                let v = if class == ebpf::BPF_STX {
                    reg[src]
                } else {
                    imm as i64 as u64
                };
                stack[at..at + size].copy_from_slice(&v.to_le_bytes()[..size]);
            }
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
                let is64 = class == ebpf::BPF_ALU64;
                let op = opc & 0xf0;
                let x = reg[dst];
                let y = if opc & ebpf::BPF_X != 0 {
                    reg[src]
                } else {
                    imm as i64 as u64
                };
                if op == ebpf::BPF_END {
                    reg[dst] = match imm {
                        16 => (x as u16).swap_bytes() as u64,
                        32 => (x as u32).swap_bytes() as u64,
                        _ => x.swap_bytes(),
                    };
                    if opc & ebpf::BPF_X == 0 {
                        reg[dst] = x; // le64 (le16/32 are refused)
                    }
                    continue;
                }
                let r = if is64 {
                    match op {
                        ebpf::BPF_ADD => x.wrapping_add(y),
                        ebpf::BPF_SUB => x.wrapping_sub(y),
                        ebpf::BPF_MUL => x.wrapping_mul(y),
                        ebpf::BPF_DIV => x.checked_div(y).unwrap_or(0),
                        ebpf::BPF_MOD => x.checked_rem(y).unwrap_or(x),
                        ebpf::BPF_OR => x | y,
                        ebpf::BPF_AND => x & y,
                        ebpf::BPF_XOR => x ^ y,
                        ebpf::BPF_LSH => x << (y & 63),
                        ebpf::BPF_RSH => x >> (y & 63),
                        ebpf::BPF_ARSH => ((x as i64) >> (y & 63)) as u64,
                        ebpf::BPF_MOV => y,
                        ebpf::BPF_NEG => x.wrapping_neg(),
                        _ => unreachable!("model: alu64 op {op:#x}"),
                    }
                } else {
                    let (a, b) = (x as u32, y as u32);
                    match op {
                        ebpf::BPF_ADD => a.wrapping_add(b) as u64,
                        ebpf::BPF_SUB => a.wrapping_sub(b) as u64,
                        ebpf::BPF_MUL => a.wrapping_mul(b) as u64,
                        ebpf::BPF_DIV => a.checked_div(b).unwrap_or(0) as u64,
                        // rbpf leaves the whole register unchanged on x % 0.
                        ebpf::BPF_MOD => a.checked_rem(b).map_or(x, u64::from),
                        ebpf::BPF_OR => (a | b) as u64,
                        ebpf::BPF_AND => (a & b) as u64,
                        ebpf::BPF_XOR => (a ^ b) as u64,
                        ebpf::BPF_LSH => a.wrapping_shl(b) as u64,
                        ebpf::BPF_RSH => a.wrapping_shr(b) as u64,
                        ebpf::BPF_ARSH => (a as i32).wrapping_shr(b) as u32 as u64,
                        ebpf::BPF_MOV => b as u64,
                        ebpf::BPF_NEG => a.wrapping_neg() as u64,
                        _ => unreachable!("model: alu32 op {op:#x}"),
                    }
                };
                reg[dst] = r;
            }
            ebpf::BPF_JMP | ebpf::BPF_JMP32 => {
                let op = opc & 0xf0;
                if opc == ebpf::EXIT {
                    return (reg[0], steps);
                }
                let is32 = class == ebpf::BPF_JMP32;
                let (x, y) = {
                    let y = if opc & ebpf::BPF_X != 0 {
                        reg[src]
                    } else {
                        imm as i64 as u64
                    };
                    if is32 {
                        (reg[dst] as u32 as u64, y as u32 as u64)
                    } else {
                        (reg[dst], y)
                    }
                };
                let (sx, sy) = if is32 {
                    (x as u32 as i32 as i64, y as u32 as i32 as i64)
                } else {
                    (x as i64, y as i64)
                };
                let taken = match op {
                    ebpf::BPF_JA => true,
                    ebpf::BPF_JEQ => x == y,
                    ebpf::BPF_JNE => x != y,
                    ebpf::BPF_JGT => x > y,
                    ebpf::BPF_JGE => x >= y,
                    ebpf::BPF_JLT => x < y,
                    ebpf::BPF_JLE => x <= y,
                    ebpf::BPF_JSET => x & y != 0,
                    ebpf::BPF_JSGT => sx > sy,
                    ebpf::BPF_JSGE => sx >= sy,
                    ebpf::BPF_JSLT => sx < sy,
                    ebpf::BPF_JSLE => sx <= sy,
                    _ => unreachable!("model: jmp op {op:#x}"),
                };
                if taken {
                    pc = (pc as i64 + i64::from(off)) as usize;
                }
            }
            _ => unreachable!("model: class {class}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random programs, built to be accepted often (most registers initialized up front, loads in
// range most of the time, forward jumps, small counted loops, stack traffic, variable
// offsets), and filtered through the verifier.

#[derive(Clone, Debug)]
enum Op {
    Alu {
        op: u8,
        is64: bool,
        dst: u8,
        src: Option<u8>,
        imm: i32,
        wild: bool,
    },
    Neg {
        is64: bool,
        dst: u8,
    },
    Be {
        dst: u8,
        width: i32,
    },
    Load {
        size: u8,
        dst: u8,
        off: i16,
    },
    Lddw {
        dst: u8,
        imm: u64,
    },
    Jmp {
        op: u8,
        is32: bool,
        dst: u8,
        src: Option<u8>,
        imm: i32,
        skip: u8,
        wild: bool,
    },
    /// `*(size *)(r10 - 8 * (slot + 1) + at) = src or imm`, `at` aligned to `size`.
    StackStore {
        size: u8,
        slot: u8,
        at: u8,
        src: Option<u8>,
        imm: i32,
    },
    StackLoad {
        size: u8,
        dst: u8,
        slot: u8,
        at: u8,
    },
    /// `dst = r1 + (idx & mask); dst = *(size *)(dst + off)`.
    VarLoad {
        size: u8,
        dst: u8,
        idx: u8,
        mask: i32,
        off: i16,
    },
    /// `mov ctr, 0; again: body; add ctr, 1; jlt ctr, count, again`.
    Loop {
        ctr: u8,
        count: i32,
        body: Vec<Op>,
    },
    Exit,
}

fn reg() -> impl Strategy<Value = u8> {
    prop_oneof![30 => prop_oneof![Just(0u8), 2u8..10], 1 => 0u8..11]
}

fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![-4i32..70, any::<i32>(), Just(i32::MIN), Just(-1)]
}

fn size() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![ebpf::BPF_B, ebpf::BPF_H, ebpf::BPF_W, ebpf::BPF_DW])
}

fn straight_op() -> impl Strategy<Value = Op> {
    let alu_ops = prop::sample::select(vec![
        0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
    ]);
    prop_oneof![
        6 => (alu_ops, any::<bool>(), reg(), prop::option::weighted(0.4, reg()), imm(), prop::bool::weighted(0.05))
            .prop_map(|(op, is64, dst, src, imm, wild)| Op::Alu { op, is64, dst, src, imm, wild }),
        1 => (any::<bool>(), reg()).prop_map(|(is64, dst)| Op::Neg { is64, dst }),
        1 => (reg(), prop::sample::select(vec![16, 32, 64])).prop_map(|(dst, width)| Op::Be { dst, width }),
        3 => (size(), reg(), 0i16..(CONTEXT_SIZE as i16 + 4))
            .prop_map(|(size, dst, off)| Op::Load { size, dst, off }),
        1 => (reg(), any::<u64>()).prop_map(|(dst, imm)| Op::Lddw { dst, imm }),
        2 => (size(), 0u8..4, 0u8..8, prop::option::weighted(0.7, reg()), imm())
            .prop_map(|(size, slot, at, src, imm)| Op::StackStore { size, slot, at, src, imm }),
        2 => (size(), reg(), 0u8..4, 0u8..8)
            .prop_map(|(size, dst, slot, at)| Op::StackLoad { size, dst, slot, at }),
        2 => (size(), reg(), reg(), prop::sample::select(vec![7, 15, 63, 127]), 0i16..(CONTEXT_SIZE as i16 - 120))
            .prop_map(|(size, dst, idx, mask, off)| Op::VarLoad { size, dst, idx, mask, off }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let jmp_ops = prop::sample::select(vec![
        0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
    ]);
    prop_oneof![
        20 => straight_op(),
        3 => (jmp_ops, any::<bool>(), reg(), prop::option::weighted(0.4, reg()), imm(), 0u8..6, prop::bool::weighted(0.05))
            .prop_map(|(op, is32, dst, src, imm, skip, wild)| Op::Jmp { op, is32, dst, src, imm, skip, wild }),
        1 => (prop_oneof![Just(0u8), 2u8..10], 1i32..12, prop::collection::vec(straight_op(), 1..5))
            .prop_map(|(ctr, count, body)| Op::Loop { ctr, count, body }),
    ]
}

fn word(opc: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut w = [0u8; 8];
    w[0] = opc;
    w[1] = (src << 4) | (dst & 15);
    w[2..4].copy_from_slice(&off.to_le_bytes());
    w[4..8].copy_from_slice(&imm.to_le_bytes());
    w
}

fn bytes_of(size: u8) -> u8 {
    match size {
        ebpf::BPF_B => 1,
        ebpf::BPF_H => 2,
        ebpf::BPF_W => 4,
        _ => 8,
    }
}

/// The words of one op; jumps get their offset from `target`, the slot index of the op they
/// skip to, given the op's own slot `here`.
fn lower_op(o: &Op, here: usize, target: usize, words: &mut Vec<[u8; 8]>) {
    match *o {
        Op::Alu {
            op,
            is64,
            dst,
            src,
            mut imm,
            wild,
        } => {
            // Most operations are tamed into the accepted class; `wild` ones keep what the
            // verifier must refuse (shift out of range, x / 0, mov32 reg).
            let mut is64 = is64;
            if !wild {
                let width = if is64 { 64 } else { 32 };
                if matches!(op, ebpf::BPF_LSH | ebpf::BPF_RSH | ebpf::BPF_ARSH) {
                    imm = imm.rem_euclid(width);
                }
                if matches!(op, ebpf::BPF_DIV | ebpf::BPF_MOD) && imm == 0 {
                    imm = 7;
                }
                if op == ebpf::BPF_MOV && src.is_some() {
                    is64 = true;
                }
            }
            let cls = if is64 { ebpf::BPF_ALU64 } else { ebpf::BPF_ALU };
            words.push(match src {
                Some(s) => word(cls | op | ebpf::BPF_X, dst, s, 0, 0),
                None => word(cls | op, dst, 0, 0, imm),
            });
        }
        Op::Neg { is64, dst } => {
            let cls = if is64 { ebpf::BPF_ALU64 } else { ebpf::BPF_ALU };
            words.push(word(cls | ebpf::BPF_NEG, dst, 0, 0, 0));
        }
        Op::Be { dst, width } => words.push(word(ebpf::BE, dst, 0, 0, width)),
        Op::Load { size, dst, off } => {
            words.push(word(ebpf::BPF_LDX | 0x60 | size, dst, 1, off, 0))
        }
        Op::Lddw { dst, imm } => {
            words.push(word(ebpf::LD_DW_IMM, dst, 0, 0, imm as u32 as i32));
            words.push(word(0, 0, 0, 0, (imm >> 32) as u32 as i32));
        }
        Op::StackStore {
            size,
            slot,
            at,
            src,
            imm,
        } => {
            let b = bytes_of(size);
            let off = -8 * (i16::from(slot) + 1) + i16::from(at / b * b);
            words.push(match src {
                Some(s) => word(ebpf::BPF_STX | 0x60 | size, 10, s, off, 0),
                None => word(ebpf::BPF_ST | 0x60 | size, 10, 0, off, imm),
            });
        }
        Op::StackLoad {
            size,
            dst,
            slot,
            at,
        } => {
            let b = bytes_of(size);
            let off = -8 * (i16::from(slot) + 1) + i16::from(at / b * b);
            words.push(word(ebpf::BPF_LDX | 0x60 | size, dst, 10, off, 0));
        }
        Op::VarLoad {
            size,
            dst,
            idx,
            mask,
            off,
        } => {
            words.push(word(ebpf::MOV64_REG, dst, idx, 0, 0));
            words.push(word(ebpf::AND64_IMM, dst, 0, 0, mask));
            words.push(word(ebpf::ADD64_REG, dst, 1, 0, 0));
            words.push(word(ebpf::BPF_LDX | 0x60 | size, dst, dst, off, 0));
        }
        Op::Loop {
            ctr,
            count,
            ref body,
        } => {
            let base = words.len();
            words.push(word(ebpf::MOV64_IMM, ctr, 0, 0, 0));
            let start = here + 1;
            for b in body {
                // A body op writing the counter would make the loop unbounded: the verifier
                // then refuses it (budget), which is fine too.
                let at = here + (words.len() - base);
                lower_op(b, at, at + 1, words);
            }
            words.push(word(ebpf::ADD64_IMM, ctr, 0, 0, 1));
            let jlt_slot = here + op_len(o) - 1;
            let back = start as i64 - (jlt_slot as i64 + 1);
            words.push(word(ebpf::JLT_IMM, ctr, 0, back as i16, count));
        }
        Op::Jmp {
            op,
            is32,
            dst,
            src,
            mut imm,
            wild,
            ..
        } => {
            if !wild && !is32 && imm < 0 {
                imm = imm.wrapping_neg().max(0);
            }
            let off = (target - here - 1) as i16;
            let cls = if is32 && op != 0 {
                ebpf::BPF_JMP32
            } else {
                ebpf::BPF_JMP
            };
            words.push(match (op, src) {
                (0, _) => word(ebpf::JA, 0, 0, off, 0),
                (_, Some(s)) => word(cls | op | ebpf::BPF_X, dst, s, off, 0),
                (_, None) => word(cls | op, dst, 0, off, imm),
            });
        }
        Op::Exit => words.push(word(ebpf::EXIT, 0, 0, 0, 0)),
    }
}

/// Instruction slots an op lowers to.
fn op_len(o: &Op) -> usize {
    match o {
        Op::Lddw { .. } => 2,
        Op::VarLoad { .. } => 4,
        Op::Loop { body, .. } => 3 + body.iter().map(op_len).sum::<usize>(),
        _ => 1,
    }
}

fn lower(init: &[(u8, i32)], ops: &[Op]) -> Vec<u8> {
    let mut words: Vec<[u8; 8]> = Vec::new();
    for &(r, v) in init {
        words.push(word(ebpf::MOV64_IMM, r, 0, 0, v));
    }
    // The four stack slots the ops use start written, most of the time.
    if init.len() == 9 {
        for slot in 0..4i16 {
            words.push(word(
                ebpf::ST_DW_IMM,
                10,
                0,
                -8 * (slot + 1),
                i32::from(slot),
            ));
        }
    }
    // Slot index of each op, to turn `skip` (in ops) into an offset (in slots).
    let mut starts = Vec::new();
    let mut slot = words.len();
    for o in ops {
        starts.push(slot);
        slot += op_len(o);
    }
    let exit_slot = slot;
    for (k, o) in ops.iter().enumerate() {
        let skip = match o {
            Op::Jmp { skip, .. } => *skip as usize,
            _ => 0,
        };
        let target = starts.get(k + 1 + skip).copied().unwrap_or(exit_slot);
        let before = words.len();
        lower_op(o, starts[k], target, &mut words);
        assert_eq!(words.len() - before, op_len(o));
    }
    words.push(word(ebpf::EXIT, 0, 0, 0, 0));
    words.concat()
}

fn program() -> impl Strategy<Value = Vec<u8>> {
    // Usually every register but r1 starts initialized; sometimes only some, so that the
    // data-flow rule is exercised too.
    let all = prop::collection::vec(any::<i32>(), 9).prop_map(|v| {
        v.into_iter()
            .zip([0u8, 2, 3, 4, 5, 6, 7, 8, 9])
            .map(|(x, r)| (r, x))
            .collect::<Vec<_>>()
    });
    let some = prop::collection::vec((prop_oneof![Just(0u8), 2u8..10], any::<i32>()), 0..10);
    let init = prop_oneof![9 => all, 1 => some];
    let ops = prop::collection::vec(prop_oneof![150 => op(), 1 => Just(Op::Exit)], 1..40);
    (init, ops).prop_map(|(init, ops)| lower(&init, &ops))
}

fn contexts() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), CONTEXT_SIZE), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Any program the verifier accepts ends within the steps its exploration processed and
    /// never faults on random contexts placed against an inaccessible page, and the
    /// interpreter, the JIT and the model agree.
    #[test]
    fn accepted_programs_terminate_and_engines_agree(prog in program(), ctxs in contexts()) {
        let Ok(v) = verify(&prog, &Policy::default()) else { return Ok(()) };
        let p = Program::load(&prog, &Policy::default(), &[], Engine::Jit).unwrap();
        prop_assert_eq!(p.engine(), Engine::Jit);
        let mut page = GuardedContext::new(CONTEXT_SIZE);
        for ctx in ctxs {
            let (want, steps) = model_run(&prog, &ctx);
            prop_assert!(steps <= v.max_steps, "{} steps, verifier bound {}", steps, v.max_steps);
            page.bytes().copy_from_slice(&ctx);
            let interp = p.run_with(Engine::Interpreter, page.bytes());
            prop_assert!(interp.is_ok(), "interpreter faulted: {:?}", interp);
            prop_assert_eq!(page.bytes(), &ctx[..]);
            let jit = p.run_with(Engine::Jit, page.bytes()).unwrap();
            prop_assert_eq!(interp.unwrap(), want, "interpreter vs model");
            prop_assert_eq!(jit, want, "JIT vs model");
            prop_assert_eq!(page.bytes(), &ctx[..]);
        }
    }

    /// Arbitrary bytes never panic the verifier; whatever it accepts runs cleanly.
    #[test]
    fn random_bytes_never_panic_the_verifier(words in prop::collection::vec(any::<u64>(), 0..24), ctx in prop::collection::vec(any::<u8>(), CONTEXT_SIZE)) {
        let prog: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        if verify(&prog, &Policy::default()).is_ok() {
            let p = Program::load(&prog, &Policy::default(), &[], Engine::Jit).unwrap();
            let mut page = GuardedContext::new(CONTEXT_SIZE);
            page.bytes().copy_from_slice(&ctx);
            let x = p.run_with(Engine::Interpreter, page.bytes()).unwrap();
            prop_assert_eq!(x, p.run_with(Engine::Jit, page.bytes()).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Built-in guards against the native checks they mirror.

/// Zeroes what `check_entry` requires zero for the opcode, so the comparison reaches the
/// object, length, bounds and alignment rows that the bounds guard implements.
fn normalize(mut s: Sqe) -> Sqe {
    s.flags = 0;
    s.resv0 = 0;
    s.resv1 = 0;
    s.resv2 = 0;
    match s.opcode {
        opcode::NOP => {
            s = Sqe {
                opcode: opcode::NOP,
                user_data: s.user_data,
                seq: s.seq,
                ..Sqe::default()
            };
        }
        opcode::READ | opcode::WRITE => {
            s.val = 0;
            s.cmp = 0;
        }
        opcode::LOAD64 => {
            s.arena_off = 0;
            s.len = 0;
            s.val = 0;
            s.cmp = 0;
        }
        opcode::STORE64 | opcode::FETCH_ADD64 => {
            s.arena_off = 0;
            s.len = 0;
            s.cmp = 0;
        }
        opcode::MAP_UPDATE => {
            s.obj_off = 0;
            s.cmp = 0;
            s.val %= 3;
        }
        opcode::MAP_LOOKUP | opcode::MAP_DELETE => {
            s.obj_off = 0;
            s.val = 0;
            s.cmp = 0;
        }
        _ => {
            s.arena_off = 0;
            s.len = 0;
        }
    }
    s
}

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..5000,
        Just(u64::MAX),
        (u64::MAX - 16)..=u64::MAX,
        any::<u64>(),
        (0u64..600).prop_map(|x| x * 8)
    ]
}

fn edge_len() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..5000, Just(1 << 20), Just((1 << 20) + 1), any::<u32>()]
}

fn sqe() -> impl Strategy<Value = Sqe> {
    (
        0u8..12,
        0u32..6,
        edge_u64(),
        edge_u64(),
        edge_len(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(opcode, obj_id, obj_off, arena_off, len, user_data, val, cmp)| {
                normalize(Sqe {
                    opcode,
                    obj_id,
                    obj_off,
                    arena_off,
                    len,
                    user_data,
                    val,
                    cmp,
                    ..Sqe::default()
                })
            },
        )
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        edge_u64(),
        prop::collection::vec((0u32..6, edge_u64()), 0..=8),
    )
        .prop_map(|(arena, objs)| {
            let mut l = Limits::new(arena);
            // Size 0 is a hash map (only MAP_* address it); id 0 is never an object (the
            // context says "no object" with id 0).
            for (id, size) in objs {
                l.push(ObjectLimit::new(
                    id.max(1),
                    if size % 7 == 3 { 0 } else { size },
                ));
            }
            l
        })
}

fn expected_bounds(s: &Sqe, l: &Limits) -> u64 {
    match check_entry(s, l.arena_size, |id| l.object_size(id)) {
        Ok(_) => 0,
        Err(f) => f as u64,
    }
}

fn both_engines(stage: impl Fn(Engine) -> Stage, s: &Sqe, l: &Limits) -> u64 {
    let mut jit = Guard::new([stage(Engine::Jit)]);
    let mut int = Guard::new([stage(Engine::Interpreter)]);
    assert_eq!(jit.stages()[0].program().engine(), Engine::Jit);
    let code = |v| match v {
        Verdict::Accept => 0,
        Verdict::Reject { code, .. } => code,
    };
    let a = code(jit.evaluate(s, l));
    let b = code(int.evaluate(s, l));
    assert_eq!(a, b, "JIT and interpreter disagree on {s:?}");
    a
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn bounds_guard_decides_as_check_entry(s in sqe(), l in limits()) {
        prop_assert_eq!(both_engines(Stage::bounds, &s, &l), expected_bounds(&s, &l));
    }

    #[test]
    fn opcode_allowlist_follows_its_mask(s in sqe(), l in limits(), mask in any::<u64>()) {
        let want = if s.opcode < 64 && mask & (1 << s.opcode) != 0 { 0 } else { code::OPCODE_NOT_ALLOWED };
        prop_assert_eq!(both_engines(|e| Stage::opcode_allowlist(mask, e), &s, &l), want);
    }

    #[test]
    fn read_only_guard(s in sqe(), l in limits()) {
        let want = if matches!(s.opcode, opcode::NOP | opcode::READ | opcode::LOAD64) { 0 } else { code::NOT_READ_ONLY };
        prop_assert_eq!(both_engines(Stage::read_only, &s, &l), want);
    }

    #[test]
    fn object_allowlist_guard(s in sqe(), l in limits(), ids in prop::collection::vec(prop_oneof![0u32..6, any::<u32>()], 0..5)) {
        let want = if s.opcode == opcode::NOP || ids.contains(&s.obj_id) { 0 } else { code::OBJECT_NOT_ALLOWED };
        prop_assert_eq!(both_engines(|e| Stage::object_allowlist(&ids, e), &s, &l), want);
    }

    /// A chain stops at its first rejecting stage and names it.
    #[test]
    fn chain_first_rejection_wins(s in sqe(), l in limits()) {
        let mut g = Guard::new([Stage::bounds(Engine::Jit), Stage::read_only(Engine::Jit)]);
        let b = expected_bounds(&s, &l);
        let r = g.validate(&s, &l);
        if b != 0 {
            let e = r.unwrap_err();
            prop_assert_eq!(e.code, b);
            prop_assert!(e.reason.contains("`bounds`"));
        } else if !matches!(s.opcode, opcode::NOP | opcode::READ | opcode::LOAD64) {
            let e = r.unwrap_err();
            prop_assert_eq!(e.code, code::NOT_READ_ONLY);
            prop_assert!(e.reason.contains("`read-only`"));
        } else {
            prop_assert!(r.is_ok());
        }
    }

    /// Every built-in guard: JIT and interpreter agree on contexts of random bytes (fields
    /// no valid ring would produce: nobjects > 8, garbage versions).
    #[test]
    fn builtins_agree_on_random_contexts(ctx in prop::collection::vec(any::<u8>(), CONTEXT_SIZE)) {
        for text in [sbpf_guard::builtin::bounds(), sbpf_guard::builtin::opcode_allowlist(), sbpf_guard::builtin::read_only(), sbpf_guard::builtin::object_allowlist(&[1, 2, u32::MAX])] {
            let code = sbpf_guard::source::assemble(&text).unwrap();
            let p = Program::load(&code, &Policy::default(), &[], Engine::Jit).unwrap();
            let mut a = ctx.clone();
            let mut b = ctx.clone();
            let x = p.run_with(Engine::Interpreter, &mut a).unwrap();
            prop_assert_eq!(x, p.run_with(Engine::Jit, &mut b).unwrap());
            prop_assert_eq!(x, model_run(&code, &ctx).0);
        }
    }
}

/// The generator is worth something only if the verifier accepts a good share of what it
/// makes.
#[test]
fn random_programs_are_often_accepted() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    let strategy = program();
    let total = 2000;
    let mut why = std::collections::BTreeMap::<&str, usize>::new();
    // Accepted programs with a loop, a stack store, a load through a variable offset.
    let (mut loops, mut stores, mut var_loads) = (0, 0, 0);
    let accepted = (0..total)
        .filter(|_| {
            let p = strategy.new_tree(&mut runner).unwrap().current();
            let r = verify(&p, &Policy::default());
            match &r {
                Err(e) => *why.entry(e.rule.name()).or_default() += 1,
                Ok(_) => {
                    let words: Vec<&[u8]> = p.chunks(8).collect();
                    let back = |w: &&[u8]| {
                        w[0] & 7 == ebpf::BPF_JMP && i16::from_le_bytes([w[2], w[3]]) < 0
                    };
                    loops += usize::from(words.iter().any(back));
                    stores += usize::from(words.iter().any(|w| w[0] == 0x7b && w[1] & 15 == 10));
                    var_loads +=
                        usize::from(words.iter().any(|w| {
                            w[0] & 7 == ebpf::BPF_LDX && w[1] >> 4 != 1 && w[1] >> 4 != 10
                        }));
                }
            }
            r.is_ok()
        })
        .count();
    println!(
        "{accepted} of {total} random programs accepted ({loops} with loops, {stores} with spills, {var_loads} with variable-offset loads); rejected: {why:?}"
    );
    for (what, n) in [
        ("loops", loops),
        ("spills", stores),
        ("variable offsets", var_loads),
    ] {
        assert!(
            n * 10 >= accepted,
            "only {n} of {accepted} accepted programs have {what}"
        );
    }
    assert!(accepted * 5 >= total, "only {accepted} of {total} accepted");
}

#[test]
fn counters_count_per_code_and_stage_and_clones_start_fresh() {
    let mut l = Limits::new(4096);
    l.push(ObjectLimit::new(1, 64));
    let mut g = Guard::new([Stage::bounds(Engine::Jit), Stage::read_only(Engine::Jit)]);
    let ok = Sqe {
        opcode: opcode::LOAD64,
        obj_id: 1,
        ..Sqe::default()
    };
    let store = Sqe {
        opcode: opcode::STORE64,
        obj_id: 1,
        ..Sqe::default()
    };
    let missing = Sqe {
        opcode: opcode::LOAD64,
        obj_id: 2,
        ..Sqe::default()
    };
    g.validate(&ok, &l).unwrap();
    g.validate(&store, &l).unwrap_err();
    g.validate(&store, &l).unwrap_err();
    g.validate(&missing, &l).unwrap_err();
    let c = g.counters();
    assert_eq!(c.accepted(), 1);
    assert_eq!(c.rejected(code::NOT_READ_ONLY), 2);
    assert_eq!(c.rejected(3), 1);
    assert_eq!(c.rejected_total(), 3);
    assert_eq!(c.by_stage(), &[1, 2]);
    let mut copy = g.clone_box();
    assert_eq!(copy.name(), "guard[bounds,read-only]");
    copy.validate(&store, &l).unwrap_err();
    assert_eq!(
        g.counters().rejected_total(),
        3,
        "clones count on their own"
    );
    // The context a guard sees is the documented layout.
    let ctx = GuardContext::new(&ok, &l, ALL_OPCODES);
    assert_eq!(ContextBuf::from_context(&ctx).to_context(), ctx);
}

/// Sending a guard to another thread (each producer handle may live on its own).
#[test]
fn guards_move_between_threads() {
    let mut g: Box<dyn Validator> = Box::new(Guard::new([Stage::bounds(Engine::Jit)]));
    let l = Limits::new(4096);
    let h = std::thread::spawn(move || g.validate(&Sqe::default(), &l).is_ok());
    assert!(h.join().unwrap());
}
