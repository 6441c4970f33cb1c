//! The abstract domain of a scalar: a tristate number (which bits are known, and their values)
//! and signed and unsigned 64-bit ranges, each refining the others (the kernel's `tnum` plus
//! `umin/umax/smin/smax`). 32-bit views are derived from the 64-bit facts when they are
//! exact and from the low 32 known bits otherwise, so they never claim more than the 64-bit
//! value implies.
//!
//! Every operation over-approximates: the concrete result of the operation on any pair of
//! concrete values inside the operands is inside the result. `None` from a refinement means
//! the set is empty (an infeasible branch).

use std::{
    fmt,
    ops::{Add, Mul, Sub},
};

/// Known bits: bit `i` is unknown when `mask` has it, else it equals bit `i` of `value`.
/// Invariant: `value & mask == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

impl Tnum {
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    pub const fn konst(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// The smallest tnum holding every value of `[min, max]`: the common prefix is known.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    fn plus(self, o: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(o.mask);
        let sv = self.value.wrapping_add(o.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | o.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    fn minus(self, o: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(o.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(o.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | o.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    pub fn and(self, o: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = o.value | o.mask;
        let v = self.value & o.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    pub fn or(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask | o.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    pub fn xor(self, o: Tnum) -> Tnum {
        let v = self.value ^ o.value;
        let mu = self.mask | o.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Multiplication by shift-and-add over the bits of `self`: exact when both are
    /// constants, and keeps the known low zero bits otherwise.
    fn times(self, o: Tnum) -> Tnum {
        if self.is_const() && o.is_const() {
            return Tnum::konst(self.value.wrapping_mul(o.value));
        }
        let mut a = self;
        let mut b = o;
        // The product of the known parts, plus every bit an unknown bit can reach.
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::konst(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.plus(Tnum {
                    value: 0,
                    mask: b.mask,
                });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.plus(Tnum {
                    value: 0,
                    mask: b.value | b.mask,
                });
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::konst(acc_v).plus(acc_m)
    }

    pub fn lshift(self, k: u32) -> Tnum {
        Tnum {
            value: self.value << k,
            mask: self.mask << k,
        }
    }

    pub fn rshift(self, k: u32) -> Tnum {
        Tnum {
            value: self.value >> k,
            mask: self.mask >> k,
        }
    }

    pub fn arshift(self, k: u32) -> Tnum {
        Tnum {
            value: ((self.value as i64) >> k) as u64,
            mask: ((self.mask as i64) >> k) as u64,
        }
    }

    /// The low 32 bits, zero-extended.
    pub fn low32(self) -> Tnum {
        Tnum {
            value: self.value & 0xffff_ffff,
            mask: self.mask & 0xffff_ffff,
        }
    }

    /// Values in both, or `None` when a bit known in both differs.
    pub fn intersect(self, o: Tnum) -> Option<Tnum> {
        if (self.value ^ o.value) & !(self.mask | o.mask) != 0 {
            return None;
        }
        let v = self.value | o.value;
        let mu = self.mask & o.mask;
        Some(Tnum {
            value: v & !mu,
            mask: mu,
        })
    }

    /// Every value of `o` is a value of `self`.
    #[inline]
    pub fn contains(self, o: Tnum) -> bool {
        o.mask & !self.mask == 0 && (o.value & !self.mask) == self.value
    }

    /// The smallest tnum holding both.
    pub fn union(self, o: Tnum) -> Tnum {
        let mu = self.mask | o.mask | (self.value ^ o.value);
        Tnum {
            value: self.value & !mu,
            mask: mu,
        }
    }
}

impl Add for Tnum {
    type Output = Tnum;
    fn add(self, o: Tnum) -> Tnum {
        self.plus(o)
    }
}

impl Sub for Tnum {
    type Output = Tnum;
    fn sub(self, o: Tnum) -> Tnum {
        self.minus(o)
    }
}

impl Mul for Tnum {
    type Output = Tnum;
    fn mul(self, o: Tnum) -> Tnum {
        self.times(o)
    }
}

/// A 64-bit value as the verifier knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scalar {
    pub t: Tnum,
    pub umin: u64,
    pub umax: u64,
    pub smin: i64,
    pub smax: i64,
}

const U32: u64 = u32::MAX as u64;

impl Scalar {
    pub const UNKNOWN: Scalar = Scalar {
        t: Tnum::UNKNOWN,
        umin: 0,
        umax: u64::MAX,
        smin: i64::MIN,
        smax: i64::MAX,
    };

    pub fn konst(v: u64) -> Scalar {
        Scalar {
            t: Tnum::konst(v),
            umin: v,
            umax: v,
            smin: v as i64,
            smax: v as i64,
        }
    }

    /// Any value in `[min, max]` (unsigned).
    pub fn urange(min: u64, max: u64) -> Scalar {
        Scalar {
            umin: min,
            umax: max,
            ..Scalar::UNKNOWN
        }
        .normalize()
        .unwrap_or(Scalar::UNKNOWN)
    }

    /// A zero-extended value of `bytes` bytes (what a load of that size gives).
    pub fn unknown_bytes(bytes: usize) -> Scalar {
        if bytes >= 8 {
            return Scalar::UNKNOWN;
        }
        // Already normalized: the low bytes unknown, the rest zero.
        let max = (1u64 << (bytes * 8)) - 1;
        Scalar {
            t: Tnum {
                value: 0,
                mask: max,
            },
            umin: 0,
            umax: max,
            smin: 0,
            smax: max as i64,
        }
    }

    pub fn as_const(&self) -> Option<u64> {
        self.t.is_const().then_some(self.t.value)
    }

    /// Tightens each fact with the others (tnum → ranges, signed ↔ unsigned, ranges →
    /// tnum), repeating while that changes something (at most three passes: each pass only
    /// narrows, and more would still be sound); `None` when no value remains.
    // Inlined: returned through memory, its result is reloaded wider than it was stored,
    // which stalls store forwarding at every call.
    #[inline(always)]
    pub fn normalize(mut self) -> Option<Scalar> {
        if self.t.is_const() {
            // Constants are most values; their ranges follow from the one value.
            let v = self.t.value;
            let fits =
                self.umin <= v && v <= self.umax && self.smin <= v as i64 && v as i64 <= self.smax;
            return fits.then(|| Scalar::konst(v));
        }
        for _ in 0..3 {
            let before = self;
            // Known bits bound the ranges.
            self.umin = self.umin.max(self.t.value);
            self.umax = self.umax.min(self.t.value | self.t.mask);
            const MSB: u64 = 1 << 63;
            let tsmin = (self.t.value | (self.t.mask & MSB)) as i64;
            let tsmax = (self.t.value | (self.t.mask & !MSB)) as i64;
            self.smin = self.smin.max(tsmin);
            self.smax = self.smax.min(tsmax);
            if self.umin > self.umax || self.smin > self.smax {
                return None;
            }
            // A signed range on one side of zero is also an unsigned range, and an unsigned
            // range that does not cross 2^63 is also a signed one.
            if self.smin >= 0 || self.smax < 0 {
                self.umin = self.umin.max(self.smin as u64);
                self.umax = self.umax.min(self.smax as u64);
            }
            if (self.umin as i64) <= (self.umax as i64) {
                self.smin = self.smin.max(self.umin as i64);
                self.smax = self.smax.min(self.umax as i64);
            }
            if self.umin > self.umax || self.smin > self.smax {
                return None;
            }
            self.t = self.t.intersect(Tnum::range(self.umin, self.umax))?;
            if self == before {
                break;
            }
        }
        Some(self)
    }

    /// Every value of `o` is a value of `self`.
    #[inline]
    pub fn contains(&self, o: &Scalar) -> bool {
        self.umin <= o.umin
            && o.umax <= self.umax
            && self.smin <= o.smin
            && o.smax <= self.smax
            && self.t.contains(o.t)
    }

    /// The smallest scalar holding both.
    pub fn union(&self, o: &Scalar) -> Scalar {
        Scalar {
            t: self.t.union(o.t),
            umin: self.umin.min(o.umin),
            umax: self.umax.max(o.umax),
            smin: self.smin.min(o.smin),
            smax: self.smax.max(o.smax),
        }
        .normalize()
        .unwrap_or(Scalar::UNKNOWN)
    }

    /// Known bits only, not yet normalized (the caller adds ranges, then normalizes).
    fn raw(t: Tnum) -> Scalar {
        Scalar {
            t,
            ..Scalar::UNKNOWN
        }
    }

    #[inline(always)]
    fn with_tnum(t: Tnum) -> Scalar {
        Scalar {
            t,
            ..Scalar::UNKNOWN
        }
        .normalize()
        .unwrap_or(Scalar::UNKNOWN)
    }

    #[inline(always)]
    fn with(self, f: impl FnOnce(&mut Scalar)) -> Scalar {
        let mut s = self;
        f(&mut s);
        s.normalize().unwrap_or(Scalar::UNKNOWN)
    }

    #[inline]
    pub fn add(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::raw(self.t + o.t);
        if let (Some(lo), Some(hi)) = (self.umin.checked_add(o.umin), self.umax.checked_add(o.umax))
        {
            r.umin = r.umin.max(lo);
            r.umax = r.umax.min(hi);
        }
        if let (Some(lo), Some(hi)) = (self.smin.checked_add(o.smin), self.smax.checked_add(o.smax))
        {
            r.smin = r.smin.max(lo);
            r.smax = r.smax.min(hi);
        }
        r.with(|_| {})
    }

    #[inline]
    pub fn sub(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::raw(self.t - o.t);
        if self.umin >= o.umax {
            r.umin = r.umin.max(self.umin - o.umax);
            r.umax = r.umax.min(self.umax - o.umin);
        }
        if let (Some(lo), Some(hi)) = (self.smin.checked_sub(o.smax), self.smax.checked_sub(o.smin))
        {
            r.smin = r.smin.max(lo);
            r.smax = r.smax.min(hi);
        }
        r.with(|_| {})
    }

    pub fn mul(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::raw(self.t * o.t);
        if let Some(hi) = self.umax.checked_mul(o.umax) {
            r.umin = r.umin.max(self.umin * o.umin);
            r.umax = r.umax.min(hi);
        }
        r.with(|_| {})
    }

    /// rbpf's unsigned division: `x / 0 = 0`.
    pub fn div(&self, o: &Scalar) -> Scalar {
        if let (Some(a), Some(b)) = (self.as_const(), o.as_const()) {
            return Scalar::konst(a.checked_div(b).unwrap_or(0));
        }
        let lo = if o.umin == 0 { 0 } else { self.umin / o.umax };
        Scalar::urange(lo, self.umax / o.umin.max(1))
    }

    /// rbpf's 64-bit unsigned modulo: `x % 0 = x`.
    pub fn rem(&self, o: &Scalar) -> Scalar {
        if let (Some(a), Some(b)) = (self.as_const(), o.as_const()) {
            return Scalar::konst(a.checked_rem(b).unwrap_or(a));
        }
        let hi = if o.umin == 0 {
            self.umax
        } else {
            self.umax.min(o.umax - 1)
        };
        Scalar::urange(0, hi)
    }

    #[inline]
    pub fn and(&self, o: &Scalar) -> Scalar {
        let t = self.t.and(o.t);
        Scalar {
            t,
            umin: t.value,
            umax: self.umax.min(o.umax),
            ..Scalar::UNKNOWN
        }
        .with(|_| {})
    }

    #[inline]
    pub fn or(&self, o: &Scalar) -> Scalar {
        let t = self.t.or(o.t);
        Scalar {
            t,
            umin: self.umin.max(o.umin),
            umax: t.value | t.mask,
            ..Scalar::UNKNOWN
        }
        .with(|_| {})
    }

    #[inline]
    pub fn xor(&self, o: &Scalar) -> Scalar {
        Scalar::with_tnum(self.t.xor(o.t))
    }

    #[inline]
    pub fn lsh(&self, k: u32) -> Scalar {
        let mut r = Scalar::raw(self.t.lshift(k));
        if k < 64 && self.umax.leading_zeros() >= k {
            r.umin = r.umin.max(self.umin << k);
            r.umax = r.umax.min(self.umax << k);
        }
        r.with(|_| {})
    }

    #[inline]
    pub fn rsh(&self, k: u32) -> Scalar {
        let mut r = Scalar::raw(self.t.rshift(k));
        r.umin = r.umin.max(self.umin >> k);
        r.umax = r.umax.min(self.umax >> k);
        r.with(|_| {})
    }

    #[inline]
    pub fn arsh(&self, k: u32) -> Scalar {
        let mut r = Scalar::raw(self.t.arshift(k));
        r.smin = r.smin.max(self.smin >> k);
        r.smax = r.smax.min(self.smax >> k);
        r.with(|_| {})
    }

    /// The low 32 bits, zero-extended: exact when the value already fits.
    #[inline]
    pub fn low32(&self) -> Scalar {
        if self.umax <= U32 {
            return *self;
        }
        if self.smin >= 0 && self.smax <= U32 as i64 {
            return Scalar::urange(self.smin as u64, self.smax as u64);
        }
        Scalar::with_tnum(self.t.low32())
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.as_const() {
            return write!(f, "{}", c as i64);
        }
        let mut parts = Vec::new();
        if self.umin != 0 {
            parts.push(format!("umin={}", self.umin));
        }
        if self.umax != u64::MAX {
            parts.push(format!("umax={}", self.umax));
        }
        if self.smin != i64::MIN && self.smin as u64 != self.umin {
            parts.push(format!("smin={}", self.smin));
        }
        if self.smax != i64::MAX && self.smax as u64 != self.umax {
            parts.push(format!("smax={}", self.smax));
        }
        if self.t.mask != u64::MAX && Tnum::range(self.umin, self.umax) != self.t {
            parts.push(format!("var_off=({:#x}; {:#x})", self.t.value, self.t.mask));
        }
        if parts.is_empty() {
            f.write_str("scalar")
        } else {
            write!(f, "scalar({})", parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive over small sets: every concrete result lies inside the abstract one.
    fn members(s: &Scalar, candidates: &[u64]) -> Vec<u64> {
        candidates
            .iter()
            .copied()
            .filter(|&v| {
                v >= s.umin
                    && v <= s.umax
                    && (v as i64) >= s.smin
                    && (v as i64) <= s.smax
                    && (v & !s.t.mask) == s.t.value
            })
            .collect()
    }

    fn candidates() -> Vec<u64> {
        let mut v: Vec<u64> = (0..40).collect();
        v.extend([
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            (1 << 63) - 1,
            0xffff_ffff,
            0x1_0000_0000,
            0x8000_0000,
            0x7fff_ffff,
            (-5i64) as u64,
            (-1i64 << 32) as u64,
        ]);
        v
    }

    fn samples() -> Vec<Scalar> {
        let mut v = vec![
            Scalar::UNKNOWN,
            Scalar::konst(0),
            Scalar::konst(7),
            Scalar::konst(u64::MAX),
            Scalar::konst(1 << 63),
            Scalar::urange(0, 8),
            Scalar::urange(3, 17),
            Scalar::urange(0, 0xffff_ffff),
            Scalar::urange(0xffff_fff0, 0x1_0000_0010),
            Scalar::unknown_bytes(1),
        ];
        let mut s = Scalar::UNKNOWN;
        s.smin = -4;
        s.smax = 3;
        v.push(s.normalize().unwrap());
        v
    }

    #[test]
    fn operations_over_approximate() {
        let cands = candidates();
        type Op = (
            &'static str,
            fn(&Scalar, &Scalar) -> Scalar,
            fn(u64, u64) -> u64,
        );
        let ops: [Op; 8] = [
            ("add", Scalar::add, u64::wrapping_add),
            ("sub", Scalar::sub, u64::wrapping_sub),
            ("mul", Scalar::mul, u64::wrapping_mul),
            ("div", Scalar::div, |a, b| a.checked_div(b).unwrap_or(0)),
            ("rem", Scalar::rem, |a, b| a.checked_rem(b).unwrap_or(a)),
            ("and", Scalar::and, |a, b| a & b),
            ("or", Scalar::or, |a, b| a | b),
            ("xor", Scalar::xor, |a, b| a ^ b),
        ];
        for a in samples() {
            for b in samples() {
                for (name, abs, conc) in &ops {
                    let r = abs(&a, &b);
                    for x in members(&a, &cands) {
                        for y in members(&b, &cands) {
                            let z = conc(x, y);
                            assert_eq!(
                                members(&r, &[z]).len(),
                                1,
                                "{name}: {x:#x} {y:#x} -> {z:#x} not in {r} ({a} {b})"
                            );
                        }
                    }
                }
                for k in [0u32, 1, 5, 31, 32, 63] {
                    for x in members(&a, &cands) {
                        assert_eq!(members(&a.lsh(k), &[x << k]).len(), 1, "lsh {x} {k}");
                        assert_eq!(members(&a.rsh(k), &[x >> k]).len(), 1, "rsh {x} {k}");
                        let ar = ((x as i64) >> k) as u64;
                        assert_eq!(members(&a.arsh(k), &[ar]).len(), 1, "arsh {x} {k}");
                    }
                }
                for x in members(&a, &cands) {
                    assert_eq!(
                        members(&a.low32(), &[x & 0xffff_ffff]).len(),
                        1,
                        "low32 {x}"
                    );
                }
            }
        }
    }

    #[test]
    fn tnum_range_and_normalize() {
        let s = Scalar::urange(16, 31);
        assert_eq!(
            s.t,
            Tnum {
                value: 16,
                mask: 15
            }
        );
        assert!(Scalar {
            umin: 5,
            umax: 4,
            ..Scalar::UNKNOWN
        }
        .normalize()
        .is_none());
        // Signed range on one side of zero gives the unsigned one.
        let mut n = Scalar::UNKNOWN;
        n.smin = 0;
        n.smax = 10;
        let n = n.normalize().unwrap();
        assert_eq!((n.umin, n.umax), (0, 10));
    }
}
