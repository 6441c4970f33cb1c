//! The structural pass: each instruction on its own (known opcode, unused fields zero, legal
//! registers, jump targets inside the program and not inside an `lddw`), then reachability
//! over the control-flow graph. The path-sensitive pass ([`super::explore`]) runs only on
//! programs that pass this one, so it may assume well-formed instructions.

use rbpf::ebpf;

use super::{decode, Insn, Policy, Rule};

/// An instruction's shape: where control may go after it, and its JIT size estimate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    pub jump: Option<usize>,
    pub falls_through: bool,
    pub is_lddw: bool,
    pub jit_bytes: usize,
}

const MOD_MEM: u8 = 0x60;

/// `lddw`'s source field for a pointer into the program's read-only data (libbpf's
/// `BPF_PSEUDO_MAP_VALUE`); `source::from_elf` writes it for `.rodata` relocations, with the
/// offset in the second slot's immediate.
pub const PSEUDO_RODATA: u8 = 2;

fn access_size(opc: u8) -> usize {
    match opc & 0x18 {
        ebpf::BPF_B => 1,
        ebpf::BPF_H => 2,
        ebpf::BPF_W => 4,
        _ => 8,
    }
}

pub fn size_of(insn: &Insn) -> usize {
    access_size(insn.opc)
}

/// Checks instruction `i` and returns its shape. `gate` is rbpf's verifier hook, which sees
/// the program after `lddw` of read-only data was rewritten to an absolute address, so it
/// refuses the pseudo form.
pub fn shape(
    insn: &Insn,
    i: usize,
    n: usize,
    prog: &[u8],
    policy: &Policy,
    gate: bool,
) -> Result<Shape, Rule> {
    let class = insn.opc & ebpf::BPF_CLS_MASK;
    let unknown = Err(Rule::UnknownOpcode { opcode: insn.opc });
    let reserved = |ok: bool, field: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(Rule::ReservedField { field })
        }
    };
    let writable = |r: u8| {
        if r == 10 {
            Err(Rule::FramePointerWrite)
        } else {
            Ok(())
        }
    };
    let mut s = Shape {
        falls_through: true,
        jit_bytes: 16,
        ..Shape::default()
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
                match insn.src {
                    0 => {}
                    PSEUDO_RODATA if !gate && insn.imm == 0 => {}
                    _ => return Err(Rule::LddwPseudo),
                }
                reserved(insn.off == 0, "lddw offset")?;
                writable(insn.dst)?;
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
            writable(insn.dst)?;
            Ok(s)
        }
        ebpf::BPF_ST => {
            if insn.opc & 0xe0 != MOD_MEM {
                return unknown;
            }
            reserved(insn.src == 0, "st source register")?;
            Ok(s)
        }
        ebpf::BPF_STX => match insn.opc & 0xe0 {
            MOD_MEM => {
                reserved(insn.imm == 0, "stx immediate")?;
                Ok(s)
            }
            ebpf::BPF_XADD => Err(Rule::Atomic),
            _ => unknown,
        },
        ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
            let is64 = class == ebpf::BPF_ALU64;
            let op = insn.opc & ebpf::BPF_ALU_OP_MASK;
            let is_reg = insn.opc & ebpf::BPF_X != 0;
            writable(insn.dst)?;
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
                            what:
                                "le16/le32 are a no-op in the JIT but truncate in the interpreter",
                        });
                    }
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
                    // neg64 is checked on values (it must not see i64::MIN).
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
                if op == ebpf::BPF_MOV && !is64 {
                    return Err(Rule::RbpfDivergence {
                        what: "mov32 reg, reg keeps the upper half in the JIT but clears it in the interpreter",
                    });
                }
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
            if matches!(op, ebpf::BPF_MUL | ebpf::BPF_DIV | ebpf::BPF_MOD) {
                s.jit_bytes = 64;
            }
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
                    s.falls_through = false;
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
                    if !gate && !policy.helpers.iter().any(|h| h.id as i32 == insn.imm) {
                        return Err(Rule::CallNotAllowed { id: insn.imm });
                    }
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
                    if is_reg {
                        reserved(insn.imm == 0, "jump immediate with a register source")?;
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
            let target = i as i64 + 1 + i64::from(insn.off);
            if target < 0 || target >= n as i64 {
                return Err(Rule::JumpOutOfRange { target });
            }
            s.jump = Some(target as usize);
            Ok(s)
        }
        _ => unknown,
    }
}

/// Which slots are the second half of an `lddw` (never an instruction): decoding from slot 0
/// fixes the instruction boundaries.
pub fn lddw_tails(prog: &[u8], n: usize) -> Vec<bool> {
    let mut tail = vec![false; n];
    let mut j = 0;
    while j < n {
        if prog[j * 8] == ebpf::LD_DW_IMM && j + 1 < n {
            tail[j + 1] = true;
            j += 2;
        } else {
            j += 1;
        }
    }
    tail
}

/// Shapes of every instruction, or the first rule broken with its index; then every
/// instruction must be reachable in the control-flow graph and none may fall off the end.
pub fn check_all(
    prog: &[u8],
    policy: &Policy,
    gate: bool,
) -> Result<Vec<Option<Shape>>, (usize, Rule)> {
    let n = prog.len() / 8;
    let tails = lddw_tails(prog, n);
    let mut shapes: Vec<Option<Shape>> = vec![None; n];
    let mut i = 0;
    while i < n {
        let insn = decode(prog, i);
        if insn.dst > 10 || insn.src > 10 {
            return Err((i, Rule::BadRegister));
        }
        let s = shape(&insn, i, n, prog, policy, gate).map_err(|r| (i, r))?;
        if let Some(t) = s.jump {
            if tails[t] {
                return Err((i, Rule::JumpIntoLddw { target: t }));
            }
        }
        let len = if s.is_lddw { 2 } else { 1 };
        if s.falls_through && i + len >= n {
            return Err((i, Rule::FallsOffEnd));
        }
        shapes[i] = Some(s);
        i += len;
    }
    // Reachability, in the graph (not per path: dead code behind a branch the values decide
    // is fine, as in the kernel).
    // A work list: linear in the instructions whatever the jumps (repeated forward sweeps
    // were quadratic on a chain of backward jumps).
    let mut seen = vec![false; n];
    let mut work = vec![0usize];
    seen[0] = true;
    while let Some(i) = work.pop() {
        let Some(s) = shapes[i] else { continue };
        let len = if s.is_lddw { 2 } else { 1 };
        let next = s.falls_through.then_some(i + len);
        for t in [s.jump, next].into_iter().flatten() {
            if !seen[t] {
                seen[t] = true;
                work.push(t);
            }
        }
    }
    if let Some(u) = (0..n).find(|&i| shapes[i].is_some() && !seen[i]) {
        return Err((u, Rule::Unreachable));
    }
    Ok(shapes)
}
