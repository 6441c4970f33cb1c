//! Transfer functions on scalars: what each ALU operation and each conditional jump does to
//! what the verifier knows, with rbpf 0.4.1's semantics where the instruction set leaves
//! room (division by zero gives 0; modulo by zero leaves the whole destination unchanged,
//! for the 32-bit form too; register shift amounts are masked to the operand width).

use rbpf::ebpf;

use super::domain::Scalar;

const U32: u64 = u32::MAX as u64;

/// `dst op= src` on scalars; `is64` selects the ALU64 or ALU32 form. `None` for an opcode
/// that is not a binary scalar operation.
#[inline]
pub fn alu(op: u8, is64: bool, dst: &Scalar, src: &Scalar) -> Option<Scalar> {
    if is64 {
        return Some(match op {
            ebpf::BPF_ADD => dst.add(src),
            ebpf::BPF_SUB => dst.sub(src),
            ebpf::BPF_MUL => dst.mul(src),
            ebpf::BPF_DIV => dst.div(src),
            ebpf::BPF_MOD => dst.rem(src),
            ebpf::BPF_OR => dst.or(src),
            ebpf::BPF_AND => dst.and(src),
            ebpf::BPF_XOR => dst.xor(src),
            ebpf::BPF_LSH => shift_by(src, 63).map_or(Scalar::UNKNOWN, |k| dst.lsh(k)),
            ebpf::BPF_RSH => shift_by(src, 63).map_or(Scalar::UNKNOWN, |k| dst.rsh(k)),
            ebpf::BPF_ARSH => shift_by(src, 63).map_or(Scalar::UNKNOWN, |k| dst.arsh(k)),
            ebpf::BPF_MOV => *src,
            _ => return None,
        });
    }
    let a = dst.low32();
    let b = src.low32();
    let any32 = Scalar::urange(0, U32);
    Some(match op {
        ebpf::BPF_ADD => a.add(&b).low32(),
        ebpf::BPF_SUB => a.sub(&b).low32(),
        ebpf::BPF_MUL => a.mul(&b).low32(),
        // rbpf zeroes the whole register on x / 0, as the instruction set says.
        ebpf::BPF_DIV => a.div(&b),
        // rbpf leaves the whole 64-bit destination unchanged on x % 0 (the instruction set
        // would zero its upper half): the result is that or a 32-bit remainder.
        ebpf::BPF_MOD => {
            if b.umin > 0 {
                a.rem(&b)
            } else if b.as_const() == Some(0) {
                *dst
            } else {
                a.rem(&b).union(dst)
            }
        }
        ebpf::BPF_OR => a.or(&b),
        ebpf::BPF_AND => a.and(&b),
        ebpf::BPF_XOR => a.xor(&b),
        ebpf::BPF_LSH => shift_by(&b, 31).map_or(any32, |k| a.lsh(k).low32()),
        ebpf::BPF_RSH => shift_by(&b, 31).map_or(any32, |k| a.rsh(k)),
        ebpf::BPF_ARSH => shift_by(&b, 31).map_or(any32, |k| sign_extend32(&a).arsh(k).low32()),
        ebpf::BPF_MOV => b,
        _ => return None,
    })
}

/// A known shift amount, masked as both engines mask it; `None` when unknown.
fn shift_by(s: &Scalar, mask: u64) -> Option<u32> {
    s.as_const().map(|k| (k & mask) as u32)
}

/// A 32-bit value (`umax <= u32::MAX`) sign-extended from bit 31.
fn sign_extend32(a: &Scalar) -> Scalar {
    if a.umax <= i32::MAX as u64 {
        *a
    } else if a.umin > i32::MAX as u64 {
        a.or(&Scalar::konst(0xffff_ffff_0000_0000))
    } else {
        Scalar::UNKNOWN
    }
}

/// `neg32`: the low 32 bits of `0 - x`.
pub fn neg32(x: &Scalar) -> Scalar {
    Scalar::konst(0).sub(&x.low32()).low32()
}

/// `be16/be32/be64` (and `le64`, a no-op on the little-endian hosts rbpf's JIT targets).
pub fn byte_swap(x: &Scalar, width: i32, to_be: bool) -> Scalar {
    if !to_be {
        return *x;
    }
    match (x.as_const(), width) {
        (Some(c), 16) => Scalar::konst(u64::from((c as u16).swap_bytes())),
        (Some(c), 32) => Scalar::konst(u64::from((c as u32).swap_bytes())),
        (Some(c), _) => Scalar::konst(c.swap_bytes()),
        (None, 16) => Scalar::unknown_bytes(2),
        (None, 32) => Scalar::unknown_bytes(4),
        (None, _) => Scalar::UNKNOWN,
    }
}

/// A conditional jump's comparison, on 64-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sgt,
    Sge,
    Slt,
    Sle,
    Set,
    /// Not a jump opcode: the fall-through side of `jset`.
    NotSet,
}

impl Cmp {
    pub fn of(op: u8) -> Option<Cmp> {
        Some(match op {
            ebpf::BPF_JEQ => Cmp::Eq,
            ebpf::BPF_JNE => Cmp::Ne,
            ebpf::BPF_JGT => Cmp::Gt,
            ebpf::BPF_JGE => Cmp::Ge,
            ebpf::BPF_JLT => Cmp::Lt,
            ebpf::BPF_JLE => Cmp::Le,
            ebpf::BPF_JSGT => Cmp::Sgt,
            ebpf::BPF_JSGE => Cmp::Sge,
            ebpf::BPF_JSLT => Cmp::Slt,
            ebpf::BPF_JSLE => Cmp::Sle,
            ebpf::BPF_JSET => Cmp::Set,
            _ => return None,
        })
    }

    pub fn negate(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Gt => Cmp::Le,
            Cmp::Le => Cmp::Gt,
            Cmp::Ge => Cmp::Lt,
            Cmp::Lt => Cmp::Ge,
            Cmp::Sgt => Cmp::Sle,
            Cmp::Sle => Cmp::Sgt,
            Cmp::Sge => Cmp::Slt,
            Cmp::Slt => Cmp::Sge,
            Cmp::Set => Cmp::NotSet,
            Cmp::NotSet => Cmp::Set,
        }
    }

    pub fn is_signed(self) -> bool {
        matches!(self, Cmp::Sgt | Cmp::Sge | Cmp::Slt | Cmp::Sle)
    }

    /// The unsigned comparison that decides the same as this signed one when both sides are
    /// known to be non-negative.
    pub fn as_unsigned(self) -> Cmp {
        match self {
            Cmp::Sgt => Cmp::Gt,
            Cmp::Sge => Cmp::Ge,
            Cmp::Slt => Cmp::Lt,
            Cmp::Sle => Cmp::Le,
            c => c,
        }
    }

    /// The concrete comparison on 64-bit values.
    pub fn holds(self, a: u64, b: u64) -> bool {
        let (sa, sb) = (a as i64, b as i64);
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Sgt => sa > sb,
            Cmp::Sge => sa >= sb,
            Cmp::Slt => sa < sb,
            Cmp::Sle => sa <= sb,
            Cmp::Set => a & b != 0,
            Cmp::NotSet => a & b == 0,
        }
    }
}

/// What `a cmp b` being true tells about `a` and `b`; `None` when it cannot be true.
pub fn assume(cmp: Cmp, a: &Scalar, b: &Scalar) -> Option<(Scalar, Scalar)> {
    let (mut a, mut b) = (*a, *b);
    if let (Some(x), Some(y)) = (a.as_const(), b.as_const()) {
        return cmp.holds(x, y).then_some((a, b));
    }
    match cmp {
        Cmp::Eq => {
            let t = a.t.intersect(b.t)?;
            let both = Scalar {
                t,
                umin: a.umin.max(b.umin),
                umax: a.umax.min(b.umax),
                smin: a.smin.max(b.smin),
                smax: a.smax.min(b.smax),
            }
            .normalize()?;
            return Some((both, both));
        }
        Cmp::Ne => {
            // Only an endpoint equal to the other side's constant can move.
            fn exclude(s: &mut Scalar, c: u64) {
                if s.umin == c {
                    s.umin = c.wrapping_add(1);
                }
                if s.umax == c {
                    s.umax = c.wrapping_sub(1);
                }
                if s.smin == c as i64 {
                    s.smin = (c as i64).wrapping_add(1);
                }
                if s.smax == c as i64 {
                    s.smax = (c as i64).wrapping_sub(1);
                }
            }
            // A wrapped endpoint (umin = MAX + 1) means the range was {c}: impossible.
            if let Some(c) = b.as_const() {
                if a.umin == c && c == u64::MAX || a.umax == c && c == 0 {
                    return None;
                }
                exclude(&mut a, c);
            }
            if let Some(c) = a.as_const() {
                if b.umin == c && c == u64::MAX || b.umax == c && c == 0 {
                    return None;
                }
                exclude(&mut b, c);
            }
        }
        Cmp::Gt | Cmp::Lt => {
            let (hi, lo) = if cmp == Cmp::Gt {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            hi.umin = hi.umin.max(lo.umin.checked_add(1)?);
            lo.umax = lo.umax.min(hi.umax.checked_sub(1)?);
        }
        Cmp::Ge | Cmp::Le => {
            let (hi, lo) = if cmp == Cmp::Ge {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            hi.umin = hi.umin.max(lo.umin);
            lo.umax = lo.umax.min(hi.umax);
        }
        Cmp::Sgt | Cmp::Slt => {
            let (hi, lo) = if cmp == Cmp::Sgt {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            hi.smin = hi.smin.max(lo.smin.checked_add(1)?);
            lo.smax = lo.smax.min(hi.smax.checked_sub(1)?);
        }
        Cmp::Sge | Cmp::Sle => {
            let (hi, lo) = if cmp == Cmp::Sge {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            hi.smin = hi.smin.max(lo.smin);
            lo.smax = lo.smax.min(hi.smax);
        }
        Cmp::Set => {
            let may_a = a.t.value | a.t.mask;
            let may_b = b.t.value | b.t.mask;
            if may_a & may_b == 0 {
                return None;
            }
        }
        Cmp::NotSet => {
            if a.t.value & b.t.value != 0 {
                return None;
            }
            // With a constant mask, its bits are known clear in the other side.
            if let Some(c) = b.as_const() {
                a.t.mask &= !c;
            }
            if let Some(c) = a.as_const() {
                b.t.mask &= !c;
            }
        }
    }
    Some((a.normalize()?, b.normalize()?))
}

/// `jmp32`: decides on the low 32 bits. Refines only when both sides are known to fit in
/// the comparison's domain (so the 32-bit and 64-bit comparisons agree); otherwise both
/// outcomes stay possible and nothing is learned, except between constants.
pub fn assume32(cmp: Cmp, a: &Scalar, b: &Scalar) -> Option<(Scalar, Scalar)> {
    if let (Some(x), Some(y)) = (a.as_const(), b.as_const()) {
        let (x32, y32) = (x as u32, y as u32);
        let holds = if cmp.is_signed() {
            cmp.holds(x32 as i32 as i64 as u64, y32 as i32 as i64 as u64)
        } else {
            cmp.holds(u64::from(x32), u64::from(y32))
        };
        return holds.then_some((*a, *b));
    }
    let limit = if cmp.is_signed() {
        i32::MAX as u64
    } else {
        U32
    };
    if a.umax <= limit && b.umax <= limit {
        assume(cmp.as_unsigned(), a, b)
    } else {
        Some((*a, *b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(s: &Scalar, v: u64) -> bool {
        v >= s.umin
            && v <= s.umax
            && (v as i64) >= s.smin
            && (v as i64) <= s.smax
            && (v & !s.t.mask) == s.t.value
    }

    /// Every concrete pair for which the comparison holds survives the refinement.
    #[test]
    fn refinement_keeps_every_pair_that_satisfies_the_comparison() {
        let vals: Vec<u64> = (0..12)
            .chain([u64::MAX, u64::MAX - 3, 1 << 63, (1 << 63) - 1, 0xffff_ffff])
            .collect();
        let sets = [
            Scalar::UNKNOWN,
            Scalar::urange(0, 8),
            Scalar::urange(3, 9),
            Scalar::konst(5),
            Scalar::konst(u64::MAX),
            Scalar::konst(0),
            Scalar::urange(0, 0xffff_ffff),
        ];
        let cmps = [
            Cmp::Eq,
            Cmp::Ne,
            Cmp::Gt,
            Cmp::Ge,
            Cmp::Lt,
            Cmp::Le,
            Cmp::Sgt,
            Cmp::Sge,
            Cmp::Slt,
            Cmp::Sle,
            Cmp::Set,
            Cmp::NotSet,
        ];
        for a in &sets {
            for b in &sets {
                for &c in &cmps {
                    let r = assume(c, a, b);
                    for &x in vals.iter().filter(|&&x| has(a, x)) {
                        for &y in vals.iter().filter(|&&y| has(b, y)) {
                            if c.holds(x, y) {
                                let (ra, rb) = r.unwrap_or_else(|| {
                                    panic!("{c:?} {x} {y} holds but refuted ({a} {b})")
                                });
                                assert!(has(&ra, x) && has(&rb, y), "{c:?} {x} {y}: {ra} {rb}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mod32_by_a_possible_zero_keeps_the_upper_half_possible() {
        let dst = Scalar::konst(0x1_0000_0005);
        let r = alu(ebpf::BPF_MOD, false, &dst, &Scalar::urange(0, 3)).unwrap();
        assert!(has(&r, 0x1_0000_0005), "x % 0 leaves x: {r}");
        assert!(has(&r, 1));
        let r = alu(ebpf::BPF_DIV, false, &dst, &Scalar::urange(0, 3)).unwrap();
        assert!(has(&r, 0) && has(&r, 5) && !has(&r, 0x1_0000_0005));
    }
}
