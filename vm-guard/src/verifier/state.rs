//! What the verifier knows at one instruction on one path: the type and value of each
//! register and the state of each stack slot, with the order used for pruning.

use std::{fmt, rc::Rc};

use super::domain::Scalar;

/// Bytes of the guard's stack (rbpf's `STACK_SIZE`, the kernel's `MAX_BPF_STACK`).
pub const STACK_SIZE: usize = 512;

/// A memory region a pointer may point into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// The read-only guard context (`r1` at entry).
    Context,
    /// The 512-byte stack; offsets are relative to `r10`, so they are negative.
    Stack,
    /// The program's read-only data (`.rodata` of the ELF object).
    Rodata,
}

impl Region {
    pub fn name(self) -> &'static str {
        match self {
            Region::Context => "ctx",
            Region::Stack => "fp",
            Region::Rodata => "rodata",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Region::Context => "context",
            Region::Stack => "stack",
            Region::Rodata => "read-only data",
        })
    }
}

/// A pointer: the region's start plus an offset the verifier tracks as a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ptr {
    pub region: Region,
    pub off: Scalar,
}

/// A register's (or a spilled slot's) contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// Never written on this path: reading it is an error.
    Uninit,
    Scalar(Scalar),
    Ptr(Ptr),
}

impl Value {
    /// `self` (of a state already proven safe) admits every concrete value of `cur`.
    /// An uninitialized register in a safe state was never read after this point, so it
    /// admits anything.
    #[inline]
    fn admits(&self, cur: &Value) -> bool {
        match (self, cur) {
            (Value::Uninit, _) => true,
            (Value::Scalar(a), Value::Scalar(b)) => a.contains(b),
            (Value::Ptr(a), Value::Ptr(b)) => a.region == b.region && a.off.contains(&b.off),
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Uninit => f.write_str("uninit"),
            Value::Scalar(s) => write!(f, "{s}"),
            Value::Ptr(p) => match p.off.as_const() {
                Some(0) => write!(f, "{}", p.region.name()),
                Some(c) => write!(f, "{}{:+}", p.region.name(), c as i64),
                None => write!(
                    f,
                    "{}(off={}..={})",
                    p.region.name(),
                    p.off.smin,
                    p.off.smax
                ),
            },
        }
    }
}

/// One 8-byte stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// A whole register stored by an aligned 8-byte store: reading it back whole gives the
    /// value back (clang's spills and fills).
    pub spill: Option<Value>,
    /// Bit `i`: byte `i` of the slot was written (always all of them with a spill).
    pub init: u8,
    /// The spilled scalar's link (see [`State::links`]), 0 for none.
    pub link: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        spill: None,
        init: 0,
        link: 0,
    };

    #[inline]
    fn admits(&self, cur: &Slot) -> bool {
        // Bytes the safe state may read must be written here too.
        if self.init & !cur.init != 0 {
            return false;
        }
        match (&self.spill, &cur.spill) {
            (Some(a), Some(b)) => a.admits(b),
            (Some(_), None) => false,
            // A pointer where the safe state had plain bytes could be read as a number.
            (None, Some(Value::Ptr(_))) => self.init == 0,
            (None, _) => true,
        }
    }
}

/// Registers and stack on one path at one instruction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub regs: [Value; 11],
    /// Registers with the same non-zero link hold the same scalar (a `mov` copied one into
    /// the other and neither changed since), so a branch that refines one refines all: clang
    /// often compares a copy and then uses the original.
    pub links: [u32; 11],
    /// Slots from the top of the stack (`[0]` is `r10-8 .. r10`) down to the deepest one
    /// written on this path; deeper ones are empty. Most guards touch a few slots, and
    /// states are copied at every branch and compared at every jump target: shared between
    /// copies until one of them writes the stack (most copies never do), so that copying a
    /// state never allocates and equal stacks compare in one step.
    stack: Rc<Vec<Slot>>,
}

impl State {
    /// At entry: `r1` points to the context, `r10` to the top of the stack, nothing else is
    /// initialized.
    pub fn entry() -> State {
        let mut regs = [Value::Uninit; 11];
        let zero = Scalar::konst(0);
        regs[1] = Value::Ptr(Ptr {
            region: Region::Context,
            off: zero,
        });
        regs[10] = Value::Ptr(Ptr {
            region: Region::Stack,
            off: zero,
        });
        State {
            regs,
            links: [0; 11],
            stack: Rc::default(),
        }
    }

    /// `old` (proven safe from this instruction) admits every concrete state of `self`.
    ///
    /// What `*first` names (a register, `0..11`, or the stack slot `*first - 11`) is
    /// compared first, and whatever does not admit is left in `*first`: the caller keeps it
    /// per instruction, because states compared at one instruction tend to differ in the
    /// same place (a loop counter), and a comparison that fails is then one value long.
    /// Only the order of the conjunction changes, never its value.
    pub fn within(&self, old: &State, first: &mut u8) -> bool {
        let f = usize::from(*first);
        let admits = match f.checked_sub(11) {
            None => old.regs[f].admits(&self.regs[f]),
            Some(i) => old.slot(i).admits(&self.slot(i)),
        };
        if !admits {
            return false;
        }
        for i in 0..11 {
            if !old.regs[i].admits(&self.regs[i]) {
                *first = i as u8;
                return false;
            }
        }
        // A shared stack admits itself (`Slot::admits` is reflexive).
        if !Rc::ptr_eq(&self.stack, &old.stack) {
            let (cur, old) = (&self.stack[..], &old.stack[..]);
            let common = cur.len().min(old.len());
            // Past the deeper of the two, both are empty; past `old`'s deepest, its empty
            // slots admit anything.
            let bad = (0..common)
                .find(|&i| !old[i].admits(&cur[i]))
                .or_else(|| (common..old.len()).find(|&i| !old[i].admits(&Slot::EMPTY)));
            if let Some(i) = bad {
                *first = (11 + i) as u8;
                return false;
            }
        }
        self.links_within(old)
    }

    /// `self == old`, with what `*first` names compared first, as in [`State::within`].
    pub fn equals(&self, old: &State, first: &mut u8) -> bool {
        let f = usize::from(*first);
        let equal = match f.checked_sub(11) {
            None => self.regs[f] == old.regs[f],
            Some(i) => self.slot(i) == old.slot(i),
        };
        if !equal {
            return false;
        }
        if let Some(i) = (0..11).find(|&i| self.regs[i] != old.regs[i]) {
            *first = i as u8;
            return false;
        }
        self == old
    }

    /// The stack slots from the top down to the deepest one written.
    pub fn stack(&self) -> &[Slot] {
        &self.stack
    }

    /// Every equality the safe state relied on holds here too: registers (and spills) that
    /// share a link there share one here.
    fn links_within(&self, old: &State) -> bool {
        // Old link to current link, for each link met so far: at most one per register and
        // spill, kept on the stack (this runs at every comparison).
        let mut map = [(0u32, 0u32); 11 + STACK_SIZE / 8];
        let mut len = 0;
        let mut consistent = |o: u32, c: u32| {
            if o == 0 {
                return true;
            }
            if c == 0 {
                return false;
            }
            match map[..len].iter().find(|(k, _)| *k == o) {
                Some(&(_, v)) => v == c,
                None => {
                    map[len] = (o, c);
                    len += 1;
                    true
                }
            }
        };
        for i in 0..11 {
            if old.regs[i] != Value::Uninit && !consistent(old.links[i], self.links[i]) {
                return false;
            }
        }
        for (i, o) in old.stack.iter().enumerate() {
            if o.spill.is_some() && !consistent(o.link, self.slot(i).link) {
                return false;
            }
        }
        true
    }

    /// Writes register `r`, which is linked to nothing afterwards.
    pub fn set(&mut self, r: u8, v: Value) {
        self.regs[r as usize] = v;
        self.links[r as usize] = 0;
    }

    /// After a branch refined register `r`: every register and spill linked to it learns
    /// the same.
    #[inline]
    pub fn propagate(&mut self, r: u8) {
        let link = self.links[r as usize];
        if link == 0 {
            return;
        }
        let v = self.regs[r as usize];
        for i in 0..11 {
            if self.links[i] == link {
                self.regs[i] = v;
            }
        }
        let linked = |s: &Slot| s.link == link && s.spill.is_some();
        // Copy a shared stack only when a spill changes.
        if self.stack.iter().any(linked) {
            for s in Rc::make_mut(&mut self.stack).iter_mut() {
                if linked(s) {
                    s.spill = Some(v);
                }
            }
        }
    }

    /// What copying or comparing this state counts against the exploration's budget: one
    /// unit, plus one per 32 bytes of stack in use (a whole stack costs as much as 17
    /// instructions: about what copying or comparing it takes next to interpreting one).
    pub fn cost(&self) -> usize {
        1 + self.stack.len() / 4
    }

    /// The slot index (from the top) and byte within it of stack offset `off` (`-512..0`).
    pub fn slot_of(off: i64) -> (usize, usize) {
        debug_assert!((-(STACK_SIZE as i64)..0).contains(&off));
        let slot = ((-off - 1) / 8) as usize;
        (slot, (off + 8 * (slot as i64 + 1)) as usize)
    }

    /// Slot `i` from the top.
    pub fn slot(&self, i: usize) -> Slot {
        self.stack.get(i).copied().unwrap_or(Slot::EMPTY)
    }

    /// Slot `i` from the top, for writing.
    pub fn slot_mut(&mut self, i: usize) -> &mut Slot {
        let stack = Rc::make_mut(&mut self.stack);
        if stack.len() <= i {
            stack.resize(i + 1, Slot::EMPTY);
        }
        &mut stack[i]
    }

    /// The registers and written stack slots, kernel-log style.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        for (i, r) in self.regs.iter().enumerate() {
            if *r != Value::Uninit {
                out.push(format!("R{i}={r}"));
            }
        }
        for (i, s) in self.stack.iter().enumerate() {
            let off = -8 * (i as i64 + 1);
            match (s.spill, s.init) {
                (Some(v), _) => out.push(format!("fp{off}={v}")),
                (None, 0) => {}
                (None, m) => out.push(format!("fp{off}=bytes{m:08b}")),
            }
        }
        out.join(" ")
    }
}
