//! The path-sensitive pass: abstract interpretation of every path from the entry, one at a
//! time (depth first), with state pruning and a budget of work: instructions processed, plus
//! states copied (at branches and jump targets) and compared (at jump targets) weighted by
//! their size ([`State::cost`]), so that the worst case costs a bounded time whatever the
//! program.
//!
//! # Pruning and termination
//!
//! At every jump target the current state is compared with the states already seen there.
//! If one of them was *completely* explored (every path from it reached `exit` or was pruned
//! in turn) and admits every concrete state of the current one ([`State::within`]), the
//! current path is safe and stops. Only complete states prune: a state still being explored
//! is an ancestor of the current path (depth-first order), and pruning against it would be
//! assuming what is being proven. Meeting an unfinished ancestor that is *equal* to the
//! current state is a loop that makes no progress: rejected at once. Anything else runs
//! until it exits, is pruned, fails, or exhausts the budget ([`Policy::max_processed`]).
//!
//! Why an accepted program terminates: the exploration is a finite tree whose leaves are
//! exits or prunes; a concrete run follows a tree path, and at a pruned leaf continues in
//! the subtree of a state that was completed before that leaf was reached. Completion times
//! strictly decrease along a run's prune edges, so a run crosses finitely many, and it
//! executes no more instructions than the exploration processed ([`Verified::max_steps`]).

use std::cell::Cell;

use rbpf::ebpf;

use super::{
    decode,
    domain::Scalar,
    state::{Ptr, Region, Slot, State, Value, STACK_SIZE},
    structure::{self, Shape, PSEUDO_RODATA},
    transfer::{self, Cmp},
    Insn, Policy, Rule, VerifierLog, VerifyError,
};

/// Most states kept per jump target; past it the verifier explores without storing (slower,
/// never unsound).
const MAX_STATES_PER_INSN: usize = 32;

/// The largest variable offset a pointer may carry (the kernel's `BPF_MAX_VAR_OFF` is
/// 2^29): bounds checks then never overflow.
const MAX_VAR_OFF: i64 = 1 << 29;

/// Lines of log kept; a long exploration is summarized beyond.
const MAX_LOG_LINES: usize = 20_000;

/// A state stored for pruning (the state itself is in a vector of its own, at the same
/// index, so that storing one copies it once, straight into place).
struct Checkpoint {
    /// The next checkpoint stored at the same instruction, in the order they were stored.
    next: Option<usize>,
    parent: Option<usize>,
    /// Live paths whose latest checkpoint is this one, plus unfinished child checkpoints.
    branches: u32,
    complete: bool,
}

#[derive(Clone)]
struct Path {
    pc: usize,
    state: State,
    cp: Option<usize>,
}

enum Next {
    Go(usize),
    /// Both sides of a branch are possible: the taken side's state is the current one
    /// refined as [`Explorer::sides`] says, and so is the fall-through's. Not applied yet,
    /// so that the state is copied once, in place; and not carried here, so that every
    /// step's result stays a few words (it is moved on every instruction).
    Fork {
        fall: usize,
        taken: usize,
    },
    Exit,
}

/// What one side of a branch learned about its operands.
#[derive(Clone, Copy)]
struct Refined {
    dst: u8,
    /// The source register, for a comparison between registers.
    src: Option<u8>,
    /// The region both point into, for a comparison between pointers.
    region: Option<Region>,
    x: Scalar,
    y: Scalar,
}

impl Refined {
    fn apply(&self, st: &mut State) {
        let wrap = |s: Scalar| match self.region {
            Some(region) => Value::Ptr(Ptr { region, off: s }),
            None => Value::Scalar(s),
        };
        st.regs[self.dst as usize] = wrap(self.x);
        st.propagate(self.dst);
        if let Some(src) = self.src {
            st.regs[src as usize] = wrap(self.y);
            st.propagate(src);
        }
    }
}

pub(super) struct Outcome {
    pub processed: usize,
    pub states: usize,
}

pub(super) struct Explorer<'a> {
    prog: &'a [u8],
    shapes: &'a [Option<Shape>],
    policy: &'a Policy,
    rodata: &'a [u8],
    prune_point: Vec<bool>,
    /// Registers live on entry to each instruction (see [`liveness`]).
    live: Vec<u16>,
    log: Option<&'a mut VerifierLog>,
    /// The last link handed out (unique over the whole exploration).
    next_link: Cell<u32>,
    /// The rule the current path broke, set with [`Failed`].
    failure: Cell<Option<Rule>>,
    /// What the last [`Next::Fork`] learned on its taken and fall-through sides.
    sides: Cell<Option<(Refined, Refined)>>,
}

/// The current path broke the rule in [`Explorer::failure`].
struct Failed;

impl<'a> Explorer<'a> {
    pub fn new(
        prog: &'a [u8],
        shapes: &'a [Option<Shape>],
        policy: &'a Policy,
        rodata: &'a [u8],
        log: Option<&'a mut VerifierLog>,
    ) -> Self {
        let mut prune_point = vec![false; shapes.len()];
        for s in shapes.iter().flatten() {
            if let Some(t) = s.jump {
                prune_point[t] = true;
            }
        }
        Explorer {
            prog,
            shapes,
            policy,
            rodata,
            live: liveness(prog, shapes, policy),
            prune_point,
            log,
            next_link: Cell::new(0),
            failure: Cell::new(None),
            sides: Cell::new(None),
        }
    }

    /// Records why the current path fails; [`Explorer::run`] turns it into the error, with
    /// the path's state as it is then. Keeps the results of the transfer functions small:
    /// the error is built once, not moved through every step.
    #[cold]
    fn reject(&self, rule: Rule) -> Failed {
        self.failure.set(Some(rule));
        Failed
    }

    fn fail(&self, pc: usize, state: &State, rule: Rule) -> VerifyError {
        VerifyError {
            index: Some(pc),
            insn: super::disassemble_one(self.prog, pc),
            rule,
            state: state.describe(),
        }
    }

    fn log_line(&mut self, line: impl FnOnce() -> String) {
        if let Some(log) = self.log.as_deref_mut() {
            if log.lines.len() < MAX_LOG_LINES {
                log.lines.push(line());
            } else if log.lines.len() == MAX_LOG_LINES {
                log.lines.push(String::from("... (log truncated)"));
            }
        }
    }

    pub fn run(&mut self) -> Result<Outcome, VerifyError> {
        let n = self.shapes.len();
        let mut cps: Vec<Checkpoint> = Vec::with_capacity(64);
        let mut cp_states: Vec<State> = Vec::with_capacity(64);
        // The checkpoints stored at each instruction, as a list through `Checkpoint::next`
        // (first, last, how many): no allocation per instruction.
        let mut seen: Vec<(Option<usize>, usize, usize)> = vec![(None, 0, 0); n];
        // At each instruction, the register or stack slot whose comparison failed last there:
        // compared first next time (see `State::within`).
        let mut hint = vec![0u8; n];
        // Depth first: the last path is the one being explored, the others wait for it. A
        // fork copies the state once, in place, and the copy is explored first.
        let mut paths = Vec::with_capacity(16);
        paths.push(Path {
            pc: 0,
            state: State::entry(),
            cp: None,
        });
        let mut processed = 0usize;
        // Instructions processed plus states copied and compared: what the budget bounds.
        let mut work = 0usize;
        let finish = |cps: &mut Vec<Checkpoint>, mut cp: Option<usize>| {
            while let Some(id) = cp {
                cps[id].branches -= 1;
                if cps[id].branches > 0 {
                    break;
                }
                cps[id].complete = true;
                cp = cps[id].parent;
            }
        };
        while let Some(path) = paths.last_mut() {
            let fork = loop {
                let pc = path.pc;
                if self.prune_point[pc] {
                    // A dead register is never read again before it is written: forget it,
                    // so that states differing only in dead values prune each other.
                    for r in 0..10u8 {
                        if self.live[pc] & (1 << r) == 0 {
                            path.state.set(r, Value::Uninit);
                        }
                    }
                    let mut pruned = false;
                    let mut at = seen[pc].0;
                    while let Some(id) = at {
                        let cp = &cps[id];
                        let cp_state = &cp_states[id];
                        at = cp.next;
                        work += cp_state.cost();
                        if cp.complete {
                            if path.state.within(cp_state, &mut hint[pc]) {
                                pruned = true;
                                break;
                            }
                        } else if path.state.equals(cp_state, &mut hint[pc]) {
                            return Err(self.fail(pc, &path.state, Rule::InfiniteLoop));
                        }
                    }
                    if pruned {
                        self.log_line(|| format!("{pc}: safe (pruned)"));
                        break None;
                    }
                    if seen[pc].2 < MAX_STATES_PER_INSN {
                        work += path.state.cost();
                        let id = cps.len();
                        cp_states.extend_from_slice(std::slice::from_ref(&path.state));
                        cps.push(Checkpoint {
                            next: None,
                            parent: path.cp,
                            branches: 1,
                            complete: false,
                        });
                        let (first, last, count) = &mut seen[pc];
                        match first {
                            Some(_) => cps[*last].next = Some(id),
                            None => *first = Some(id),
                        }
                        *last = id;
                        *count += 1;
                        path.cp = Some(id);
                    }
                }
                processed += 1;
                work += 1;
                if work > self.policy.max_processed {
                    return Err(self.fail(
                        pc,
                        &path.state,
                        Rule::Budget {
                            max: self.policy.max_processed,
                        },
                    ));
                }
                if self.log.is_some() {
                    let line = format!(
                        "{pc}: ({:02x}) {:<28} ; {}",
                        self.prog[pc * 8],
                        super::disassemble_one(self.prog, pc),
                        path.state.describe()
                    );
                    self.log_line(|| line);
                }
                let next = self.step(pc, &mut path.state).map_err(|Failed| {
                    let rule = self.failure.take().expect("a failed step records its rule");
                    self.fail(pc, &path.state, rule)
                })?;
                match next {
                    Next::Go(next) => path.pc = next,
                    Next::Exit => break None,
                    Next::Fork { fall, taken } => {
                        if let Some(id) = path.cp {
                            cps[id].branches += 1;
                        }
                        work += path.state.cost();
                        break Some((fall, taken));
                    }
                }
            };
            match fork {
                // The path exited or was pruned.
                None => {
                    let cp = path.cp;
                    // Dropped in place: popping would copy it out first.
                    paths.truncate(paths.len() - 1);
                    finish(&mut cps, cp);
                }
                // The current path waits with the taken side; its copy goes on with the
                // fall-through.
                Some((fall, taken)) => {
                    let (taken_side, fall_side) = self
                        .sides
                        .take()
                        .expect("a fork records what each side learned");
                    let top = paths.len() - 1;
                    paths.extend_from_within(top..);
                    if let [.., waiting, current] = &mut paths[..] {
                        waiting.pc = taken;
                        taken_side.apply(&mut waiting.state);
                        current.pc = fall;
                        fall_side.apply(&mut current.state);
                    }
                }
            }
        }
        Ok(Outcome {
            processed,
            states: cps.len(),
        })
    }

    /// Reads register `r` as an operand: it must be initialized.
    fn read(&self, st: &State, r: u8) -> Result<Value, Failed> {
        match st.regs[r as usize] {
            Value::Uninit => Err(self.reject(Rule::Uninitialized { reg: r })),
            v => Ok(v),
        }
    }

    fn step(&self, pc: usize, st: &mut State) -> Result<Next, Failed> {
        let insn = decode(self.prog, pc);
        let shape = self.shapes[pc].expect("the structural pass shaped every instruction");
        let next = pc + if shape.is_lddw { 2 } else { 1 };
        let class = insn.opc & ebpf::BPF_CLS_MASK;
        match class {
            ebpf::BPF_LD => {
                let hi = decode(self.prog, pc + 1).imm;
                let v = if insn.src == PSEUDO_RODATA {
                    let off = u64::from(hi as u32);
                    if self.rodata.is_empty() || off > self.rodata.len() as u64 {
                        return Err(self.reject(Rule::LddwPseudo));
                    }
                    Value::Ptr(Ptr {
                        region: Region::Rodata,
                        off: Scalar::konst(off),
                    })
                } else {
                    let imm = u64::from(insn.imm as u32) | (u64::from(hi as u32) << 32);
                    Value::Scalar(Scalar::konst(imm))
                };
                st.set(insn.dst, v);
                Ok(Next::Go(next))
            }
            ebpf::BPF_LDX => {
                let base = self.read(st, insn.src)?;
                let (v, link) = self.load(st, insn.src, base, &insn)?;
                st.set(insn.dst, v);
                st.links[insn.dst as usize] = link;
                Ok(Next::Go(next))
            }
            ebpf::BPF_ST | ebpf::BPF_STX => {
                let base = self.read(st, insn.dst)?;
                let (v, link) = if class == ebpf::BPF_STX {
                    let v = self.read(st, insn.src)?;
                    // A spilled scalar stays linked to its register, so that a branch on
                    // the register also bounds what a later fill reads back.
                    let r = insn.src as usize;
                    if matches!(v, Value::Scalar(_)) && st.links[r] == 0 {
                        st.links[r] = self.fresh_link();
                    }
                    (v, st.links[r])
                } else {
                    (Value::Scalar(Scalar::konst(insn.imm as i64 as u64)), 0)
                };
                self.store(st, insn.dst, base, v, link, &insn)?;
                Ok(Next::Go(next))
            }
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
                self.alu(st, &insn, class == ebpf::BPF_ALU64)?;
                Ok(Next::Go(next))
            }
            _ => self.jump(st, &insn, shape, next),
        }
    }

    /// Every offset of `p` is inside its region or one past its end.
    fn in_region(&self, p: &Ptr) -> bool {
        let (lo, hi) = match p.region {
            Region::Context => (0, self.policy.context_size as i64),
            Region::Rodata => (0, self.rodata.len() as i64),
            Region::Stack => (-(STACK_SIZE as i64), 0),
        };
        p.off.smin >= lo && p.off.smax <= hi
    }

    /// Where an access of `size` bytes at `base + insn.off` lands, checked against its
    /// region; returns the region and the smallest and largest offsets.
    fn check_access(
        &self,
        reg: u8,
        base: Value,
        insn: &Insn,
    ) -> Result<(Region, i64, i64), Failed> {
        let size = structure::size_of(insn) as i64;
        let p = match base {
            Value::Ptr(p) => p,
            _ => return Err(self.reject(Rule::NotAPointer { reg })),
        };
        // Pointer offsets stay within ±MAX_VAR_OFF (checked where they are formed), so these
        // sums cannot overflow.
        let lo = p.off.smin + i64::from(insn.off);
        let hi = p.off.smax + i64::from(insn.off);
        let (start, end) = match p.region {
            Region::Context => (0, self.policy.context_size as i64),
            Region::Rodata => (0, self.rodata.len() as i64),
            Region::Stack => {
                if p.off.as_const().is_none() {
                    return Err(self.reject(Rule::StackVariableOffset { reg }));
                }
                (-(STACK_SIZE as i64), 0)
            }
        };
        if lo < start || hi + size > end {
            return Err(self.reject(Rule::OutOfBounds {
                region: p.region,
                reg,
                min: lo,
                max: hi,
                size: size as usize,
                limit: (end - start) as usize,
            }));
        }
        Ok((p.region, lo, hi))
    }

    fn load(&self, st: &State, reg: u8, base: Value, insn: &Insn) -> Result<(Value, u32), Failed> {
        let size = structure::size_of(insn);
        let (region, lo, hi) = self.check_access(reg, base, insn)?;
        let v = match region {
            Region::Context => Value::Scalar(Scalar::unknown_bytes(size)),
            Region::Rodata => {
                if lo == hi {
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(&self.rodata[lo as usize..lo as usize + size]);
                    Value::Scalar(Scalar::konst(u64::from_le_bytes(b)))
                } else {
                    Value::Scalar(Scalar::unknown_bytes(size))
                }
            }
            Region::Stack => {
                let (slot, byte) = State::slot_of(lo);
                let s = st.slot(slot);
                if size == 8 && byte == 0 {
                    if let Some(v) = s.spill {
                        return Ok((v, s.link));
                    }
                }
                for o in lo..lo + size as i64 {
                    let (slot, byte) = State::slot_of(o);
                    let s = st.slot(slot);
                    if matches!(s.spill, Some(Value::Ptr(_))) {
                        return Err(self.reject(Rule::SpilledPointerPartial { off: lo }));
                    }
                    if s.init & (1 << byte) == 0 {
                        return Err(self.reject(Rule::StackUninitialized { off: lo, size }));
                    }
                }
                Value::Scalar(Scalar::unknown_bytes(size))
            }
        };
        Ok((v, 0))
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        st: &mut State,
        reg: u8,
        base: Value,
        v: Value,
        link: u32,
        insn: &Insn,
    ) -> Result<(), Failed> {
        let size = structure::size_of(insn);
        if let Value::Ptr(p) = base {
            if p.region != Region::Stack {
                return Err(self.reject(Rule::Store { region: p.region }));
            }
        }
        let (_, lo, _) = self.check_access(reg, base, insn)?;
        let (slot, byte) = State::slot_of(lo);
        if size == 8 && byte == 0 {
            *st.slot_mut(slot) = Slot {
                spill: Some(v),
                init: 0xff,
                link,
            };
            return Ok(());
        }
        if matches!(v, Value::Ptr(_)) {
            return Err(self.reject(Rule::PointerLeak {
                reg: insn.src,
                what: "a partial or misaligned store of a pointer",
            }));
        }
        for o in lo..lo + size as i64 {
            let (slot, byte) = State::slot_of(o);
            let s = st.slot_mut(slot);
            match s.spill {
                Some(Value::Ptr(_)) => {
                    return Err(self.reject(Rule::SpilledPointerPartial { off: lo }));
                }
                // What is left of a spilled number is plain written bytes.
                Some(_) => {
                    s.spill = None;
                    s.link = 0;
                }
                None => {}
            }
            st.slot_mut(slot).init |= 1 << byte;
        }
        Ok(())
    }

    fn alu(&self, st: &mut State, insn: &Insn, is64: bool) -> Result<(), Failed> {
        let op = insn.opc & ebpf::BPF_ALU_OP_MASK;
        let is_reg = insn.opc & ebpf::BPF_X != 0;
        let d = insn.dst as usize;
        match op {
            ebpf::BPF_END => {
                let x = self.scalar_operand(st, insn.dst, "a byte swap")?;
                st.set(
                    insn.dst,
                    Value::Scalar(transfer::byte_swap(&x, insn.imm, is_reg)),
                );
                return Ok(());
            }
            ebpf::BPF_NEG => {
                let x = self.scalar_operand(st, insn.dst, "a negation")?;
                let v = if is64 {
                    // rbpf's interpreter negates with `-(x as i64)`, which panics on
                    // i64::MIN in builds with overflow checks (clang emits neg64 for
                    // `x & 1 ? c : 0`, on values far from it).
                    if x.smin == i64::MIN {
                        return Err(self.reject(Rule::RbpfDivergence {
                                what: "neg64 of a value that may be i64::MIN panics in rbpf's interpreter when built with overflow checks",
                            },
                        ));
                    }
                    Scalar::konst(0).sub(&x)
                } else {
                    transfer::neg32(&x)
                };
                st.set(insn.dst, Value::Scalar(v));
                return Ok(());
            }
            _ => {}
        }
        let src = if is_reg {
            self.read(st, insn.src)?
        } else if is64 {
            Value::Scalar(Scalar::konst(insn.imm as i64 as u64))
        } else {
            Value::Scalar(Scalar::konst(u64::from(insn.imm as u32)))
        };
        if op == ebpf::BPF_MOV {
            // mov32 reg is refused by the structural pass; mov64 copies pointers too.
            st.set(insn.dst, src);
            if is_reg && matches!(src, Value::Scalar(_)) {
                let s = insn.src as usize;
                if st.links[s] == 0 {
                    st.links[s] = self.fresh_link();
                }
                st.links[d] = st.links[s];
            }
            return Ok(());
        }
        let dst = self.read(st, insn.dst)?;
        let v = match (dst, src) {
            (Value::Scalar(a), Value::Scalar(b)) => {
                Value::Scalar(transfer::alu(op, is64, &a, &b).expect("a binary ALU operation"))
            }
            _ => self.pointer_alu(insn, op, is64, dst, src)?,
        };
        st.set(insn.dst, v);
        Ok(())
    }

    fn fresh_link(&self) -> u32 {
        let l = self.next_link.get() + 1;
        self.next_link.set(l);
        l
    }

    fn scalar_operand(&self, st: &State, r: u8, what: &'static str) -> Result<Scalar, Failed> {
        match self.read(st, r)? {
            Value::Scalar(s) => Ok(s),
            _ => Err(self.reject(Rule::PointerArithmetic { reg: r, what })),
        }
    }

    /// Arithmetic with a pointer operand: only `ptr ± bounded scalar` and the difference of
    /// two pointers into the same region (a plain offset) exist; everything else would turn
    /// an address into a number.
    #[allow(clippy::too_many_arguments)]
    fn pointer_alu(
        &self,
        insn: &Insn,
        op: u8,
        is64: bool,
        dst: Value,
        src: Value,
    ) -> Result<Value, Failed> {
        let reg = if matches!(dst, Value::Ptr(_)) {
            insn.dst
        } else {
            insn.src
        };
        let bad = |what| Err(self.reject(Rule::PointerArithmetic { reg, what }));
        if !is64 {
            return bad("32-bit arithmetic on a pointer");
        }
        let offset = |p: Ptr, delta: Scalar, sub: bool| -> Result<Value, Failed> {
            if delta.smin < -MAX_VAR_OFF || delta.smax > MAX_VAR_OFF {
                return Err(self.reject(Rule::UnboundedPointerOffset {
                    reg,
                    min: delta.smin,
                    max: delta.smax,
                }));
            }
            let off = if sub {
                p.off.sub(&delta)
            } else {
                p.off.add(&delta)
            };
            if off.smin < -MAX_VAR_OFF || off.smax > MAX_VAR_OFF {
                return Err(self.reject(Rule::UnboundedPointerOffset {
                    reg,
                    min: off.smin,
                    max: off.smax,
                }));
            }
            if p.region == Region::Stack && off.as_const().is_none() {
                return Err(self.reject(Rule::StackVariableOffset { reg }));
            }
            Ok(Value::Ptr(Ptr {
                region: p.region,
                off,
            }))
        };
        match (op, dst, src) {
            (ebpf::BPF_ADD, Value::Ptr(p), Value::Scalar(s))
            | (ebpf::BPF_ADD, Value::Scalar(s), Value::Ptr(p)) => offset(p, s, false),
            (ebpf::BPF_SUB, Value::Ptr(p), Value::Scalar(s)) => offset(p, s, true),
            (ebpf::BPF_SUB, Value::Ptr(a), Value::Ptr(b)) if a.region == b.region => {
                Ok(Value::Scalar(a.off.sub(&b.off)))
            }
            (ebpf::BPF_SUB, Value::Ptr(_), Value::Ptr(_)) => {
                bad("subtracting pointers into different regions")
            }
            (ebpf::BPF_ADD, Value::Ptr(_), Value::Ptr(_)) => bad("adding two pointers"),
            (ebpf::BPF_SUB, _, _) => bad("subtracting a pointer from a number"),
            _ => bad("an operation other than adding or subtracting a number"),
        }
    }

    fn jump(&self, st: &mut State, insn: &Insn, shape: Shape, next: usize) -> Result<Next, Failed> {
        let class = insn.opc & ebpf::BPF_CLS_MASK;
        let op = insn.opc & ebpf::BPF_ALU_OP_MASK;
        match op {
            ebpf::BPF_EXIT => {
                return match st.regs[0] {
                    Value::Uninit => Err(self.reject(Rule::R0Unset)),
                    Value::Ptr(_) => Err(self.reject(Rule::PointerReturned)),
                    Value::Scalar(_) => Ok(Next::Exit),
                };
            }
            ebpf::BPF_CALL => {
                let arity = self
                    .policy
                    .helpers
                    .iter()
                    .find(|h| h.id as i32 == insn.imm)
                    .map_or(0, |h| h.arity.min(5));
                for r in 1..=arity {
                    if let Value::Ptr(_) = self.read(st, r)? {
                        return Err(self.reject(Rule::PointerLeak {
                            reg: r,
                            what: "a pointer passed to a helper",
                        }));
                    }
                }
                st.set(0, Value::Scalar(Scalar::UNKNOWN));
                for r in 1..=5 {
                    st.set(r, Value::Uninit);
                }
                return Ok(Next::Go(next));
            }
            ebpf::BPF_JA => {
                return Ok(Next::Go(shape.jump.expect("ja has a target")));
            }
            _ => {}
        }
        let taken = shape.jump.expect("a conditional jump has a target");
        let cmp = Cmp::of(op).expect("the structural pass admits only known jumps");
        let is32 = class == ebpf::BPF_JMP32;
        let is_reg = insn.opc & ebpf::BPF_X != 0;
        let a = self.read(st, insn.dst)?;
        let b = if is_reg {
            self.read(st, insn.src)?
        } else if is32 && !cmp.is_signed() {
            Value::Scalar(Scalar::konst(u64::from(insn.imm as u32)))
        } else {
            Value::Scalar(Scalar::konst(insn.imm as i64 as u64))
        };
        // Two pointers into the same region, both within it (or one past its end), are two
        // addresses inside one real allocation: their unsigned order is the signed order of
        // their offsets, which reveals no address. Outside the region an address may wrap
        // around zero (a base below the offset), so the order of offsets would say nothing.
        // Any other pointer comparison would turn address bits into control flow.
        let (sa, sb, ptrs, cmp) = match (a, b) {
            (Value::Scalar(x), Value::Scalar(y)) => (x, y, None, cmp),
            (Value::Ptr(p), Value::Ptr(q))
                if p.region == q.region
                    && !is32
                    && self.in_region(&p)
                    && self.in_region(&q)
                    && matches!(
                        cmp,
                        Cmp::Eq | Cmp::Ne | Cmp::Gt | Cmp::Ge | Cmp::Lt | Cmp::Le
                    ) =>
            {
                let signed = match cmp {
                    Cmp::Gt => Cmp::Sgt,
                    Cmp::Ge => Cmp::Sge,
                    Cmp::Lt => Cmp::Slt,
                    Cmp::Le => Cmp::Sle,
                    c => c,
                };
                (p.off, q.off, Some(p.region), signed)
            }
            _ => {
                let reg = if matches!(a, Value::Ptr(_)) {
                    insn.dst
                } else {
                    insn.src
                };
                return Err(self.reject(Rule::PointerComparison { reg }));
            }
        };
        let assume = |c: Cmp| {
            if is32 {
                transfer::assume32(c, &sa, &sb)
            } else {
                transfer::assume(c, &sa, &sb)
            }
        };
        let side = |(x, y): (Scalar, Scalar)| Refined {
            dst: insn.dst,
            src: is_reg.then_some(insn.src),
            region: ptrs,
            x,
            y,
        };
        match (assume(cmp), assume(cmp.negate())) {
            (Some(t), Some(f)) => {
                self.sides.set(Some((side(t), side(f))));
                Ok(Next::Fork { fall: next, taken })
            }
            (Some(t), None) => {
                side(t).apply(st);
                Ok(Next::Go(taken))
            }
            (None, Some(f)) => {
                side(f).apply(st);
                Ok(Next::Go(next))
            }
            // Both impossible: the state itself is empty (an over-approximation of no run).
            (None, None) => Ok(Next::Exit),
        }
    }
}

/// Registers each instruction may read (`uses`) and surely writes (`defs`).
fn uses_defs(insn: &Insn, policy: &Policy) -> (u16, u16) {
    let bit = |r: u8| 1u16 << r;
    let class = insn.opc & ebpf::BPF_CLS_MASK;
    let is_reg = insn.opc & ebpf::BPF_X != 0;
    match class {
        ebpf::BPF_LD => (0, bit(insn.dst)),
        ebpf::BPF_LDX => (bit(insn.src), bit(insn.dst)),
        ebpf::BPF_ST => (bit(insn.dst), 0),
        ebpf::BPF_STX => (bit(insn.dst) | bit(insn.src), 0),
        ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
            let op = insn.opc & ebpf::BPF_ALU_OP_MASK;
            let src = if is_reg && op != ebpf::BPF_END {
                bit(insn.src)
            } else {
                0
            };
            let dst = if op == ebpf::BPF_MOV {
                0
            } else {
                bit(insn.dst)
            };
            (src | dst, bit(insn.dst))
        }
        _ => match insn.opc & ebpf::BPF_ALU_OP_MASK {
            ebpf::BPF_JA => (0, 0),
            ebpf::BPF_EXIT => (bit(0), 0),
            ebpf::BPF_CALL => {
                let arity = policy
                    .helpers
                    .iter()
                    .find(|h| h.id as i32 == insn.imm)
                    .map_or(0, |h| h.arity.min(5));
                let args = (1..=arity).fold(0, |m, r| m | bit(r));
                (args, 0b11_1111)
            }
            _ => (bit(insn.dst) | if is_reg { bit(insn.src) } else { 0 }, 0),
        },
    }
}

/// Registers live on entry to each instruction: read on some path before being written.
/// The usual backward data flow over the control-flow graph, to a fixed point (loops).
fn liveness(prog: &[u8], shapes: &[Option<Shape>], policy: &Policy) -> Vec<u16> {
    let n = shapes.len();
    let mut ud = vec![(0u16, 0u16); n];
    // Without a backward jump every successor comes later, so one pass from the end is the
    // fixed point already (the loop below would only confirm it).
    let mut backward = false;
    for (i, s) in shapes.iter().enumerate() {
        if let Some(s) = s {
            ud[i] = uses_defs(&decode(prog, i), policy);
            backward |= s.jump.is_some_and(|t| t <= i);
        }
    }
    let mut live = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            let Some(s) = shapes[i] else { continue };
            let len = if s.is_lddw { 2 } else { 1 };
            let mut out = 0;
            if s.falls_through {
                out |= live[i + len];
            }
            if let Some(t) = s.jump {
                out |= live[t];
            }
            let (uses, defs) = ud[i];
            let inn = uses | (out & !defs);
            if inn != live[i] {
                live[i] = inn;
                changed = backward;
            }
        }
    }
    live
}
