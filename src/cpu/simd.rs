//! The CPU path's fast inner loop: blocks of interleaved pairs, or of half-split pairs (two
//! contiguous runs of a head, [`rotate_halves`]), rotated by branch-free code the compiler
//! vectorises, with the same proof-then-fallback structure as the GPU kernel. Every
//! output the fast path cannot prove is recomputed by the exact scalar reference
//! ([`super::rotate_pair`]), so the bits are those of the reference everywhere.
//!
//! # The fast path
//!
//! For one output `y = a·b + c·d` (`a`, `c` bf16; `b`, `d` f32 table values) each lane computes
//! the two f64 products, their f64 sum `r = fl64(a·b + c·d)`, then `t = fl32(r)` (the f64 → f32
//! conversion, round to nearest even), and rounds `t` to bf16 with the integer operations of
//! the usual f32 → bf16 conversion: `(bits(t) + 0x7FFF + bit16(bits(t))) >> 16` (nearest, ties
//! to even; subnormals, the sign and the carry into the exponent, up to +inf, come out
//! right). A lane is **undecided**, and goes to the fallback, when
//!
//! 1. the low 16 bits of `t` are `0x8000`: `t` lies on a bf16 midpoint; or
//! 2. the exponent field of `t` is all ones: `t` is ±inf or NaN (an input or table special,
//!    inf − inf, inf·0, or a finite sum beyond f32's range).
//!
//! # Why a decided lane is correctly rounded
//!
//! *The products are exact.* A bf16 has at most 8 significant bits and an f32 at most 24, so
//! each product has at most 32 ≤ 53 significant bits, and its magnitude lies in
//! `[2⁻¹³³·2⁻¹⁴⁹, 2¹²⁸·2¹²⁸] = [2⁻²⁸², 2²⁵⁶]` (or it is 0, inf, NaN), inside f64's normal range.
//! So `r = fl64(v)` with `v = a·b + c·d` the exact value: one rounding to nearest. Both products
//! are integer multiples of 2⁻²⁸², so a non-zero `v` has `|v| ≥ 2⁻²⁸²`: `r` is then a non-zero
//! f64 of `v`'s sign, and `t` keeps that sign even when it is zero. For `v = 0`, IEEE addition
//! gives the contract's signed zero (+0 unless both products are −0), which both conversions
//! keep.
//!
//! *Rounding to bf16 is decided by which midpoint interval a value lies in.* Let `M` be the
//! set of bf16 midpoints: the points halfway between two adjacent finite bf16 values
//! (subnormals included: `(2k + 1)·2⁻¹³⁴`), and `±(2¹²⁸ − 2¹¹⁹)`, halfway between the largest
//! finite bf16 and 2¹²⁸ (from there on round-to-nearest overflows to inf). On each open interval
//! between adjacent points of `M`, RNE to bf16 is constant (up to the sign of a zero result,
//! settled above). Every point of `M` has at most 9 significant bits and an exponent in
//! `[−134, 127]`, so it is an f64 number **and** an f32 number (normal, or a subnormal multiple
//! of 2⁻¹⁴⁹).
//!
//! *Neither rounding can cross a midpoint.* Rounding to nearest (f64 or f32) is monotonic and
//! leaves numbers of its format unchanged. So for `m ∈ M`: `v < m ⇒ r ≤ m ⇒ t ≤ m`, likewise
//! `v > m ⇒ t ≥ m`, and `v = m ⇒ t = m`. If `t ∉ M` (test 1 fails: the bf16 midpoints are
//! exactly the f32 numbers whose low 16 bits are `0x8000`), `t` and `v` lie strictly on the
//! same side of every midpoint, in the same open interval, and RNE gives them the same bf16.
//! The integer conversion is RNE of a finite `t` (test 2 fails), so a decided lane returns
//! RNE(`v`), the contract's result. The double rounding through f64 and f32 is harmless for
//! the same reason: only a result on a midpoint could tell the two apart, and those are sent
//! to the exact fallback (whose TwoSum then sees the true side of the midpoint).
//!
//! The code is plain array arithmetic with no branches inside a block; on x86-64 it is compiled
//! a second time with AVX2 enabled and chosen at run time, elsewhere (wasm32 included) the
//! same code runs as the target allows.

use crate::shape::Direction;

/// Pairs per block: 16 outputs, four 256-bit vectors of f64 per operand.
const BLOCK: usize = 8;

/// bf16 bits widened exactly to f64.
#[inline(always)]
fn widen(h: u16) -> f64 {
    f32::from_bits((h as u32) << 16) as f64
}

/// Rounds `r` to bf16 through f32 (see the module docs); the flag is 1 when the lane is
/// undecided, and the returned bits then mean nothing.
#[inline(always)]
fn round_fast(r: f64) -> (u16, u16) {
    let t = (r as f32).to_bits();
    let midpoint = (t & 0xFFFF) == 0x8000;
    let not_finite = (t & 0x7F80_0000) == 0x7F80_0000;
    let rounded = t.wrapping_add(0x7FFF + ((t >> 16) & 1)) >> 16;
    (rounded as u16, (midpoint | not_finite) as u16)
}

/// One block: `src` holds `BLOCK` interleaved pairs, `cs` their `(cos, sin)`; `sin_sign` is
/// `±1.0` (the direction). Writes the fast results into `dst` and returns the pairs whose
/// lanes are undecided, one bit per pair.
#[inline(always)]
fn block(src: &[u16], dst: &mut [u16], cs: &[[f32; 2]], sin_sign: f32) -> u32 {
    let x: &[u16; 2 * BLOCK] = src.try_into().expect("a block of pairs");
    let dst: &mut [u16; 2 * BLOCK] = dst.try_into().expect("a block of pairs");
    let cs: &[[f32; 2]; BLOCK] = cs.try_into().expect("a block of table pairs");
    let mut y0 = [0u16; BLOCK];
    let mut y1 = [0u16; BLOCK];
    let mut undecided = [0u16; BLOCK];
    for i in 0..BLOCK {
        let a = widen(x[2 * i]);
        let b = widen(x[2 * i + 1]);
        let c = cs[i][0] as f64;
        let s = (cs[i][1] * sin_sign) as f64;
        let (r0, f0) = round_fast(a * c + b * -s);
        let (r1, f1) = round_fast(a * s + b * c);
        y0[i] = r0;
        y1[i] = r1;
        undecided[i] = f0 | f1;
    }
    let mut mask = 0u32;
    for i in 0..BLOCK {
        dst[2 * i] = y0[i];
        dst[2 * i + 1] = y1[i];
        mask |= (undecided[i] as u32) << i;
    }
    mask
}

/// A block, then its undecided pairs again by the exact reference.
#[inline(always)]
fn block_then_fallback(
    src: &[u16],
    dst: &mut [u16],
    cs: &[[f32; 2]],
    sin_sign: f32,
    direction: Direction,
) {
    let mut mask = block(src, dst, cs, sin_sign);
    while mask != 0 {
        let i = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        let [c, s] = cs[i];
        let (y0, y1) = super::rotate_pair(src[2 * i], src[2 * i + 1], c, s, direction);
        dst[2 * i] = y0;
        dst[2 * i + 1] = y1;
    }
}

fn sin_sign(direction: Direction) -> f32 {
    match direction {
        Direction::Forward => 1.0,
        Direction::Inverse => -1.0,
    }
}

/// The loop over a row of pairs in place: fast blocks (each read into a copy first), the
/// flagged pairs and the tail by the exact reference.
#[inline(always)]
fn in_place_body(x: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    let sign = sin_sign(direction);
    let mut xb = x.chunks_exact_mut(2 * BLOCK);
    let mut cb = cs.chunks_exact(BLOCK);
    for (xs, cs) in (&mut xb).zip(&mut cb) {
        let before: [u16; 2 * BLOCK] = (&*xs).try_into().expect("a block of pairs");
        block_then_fallback(&before, xs, cs, sign, direction);
    }
    for (pair, &[c, s]) in xb.into_remainder().chunks_exact_mut(2).zip(cb.remainder()) {
        let (y0, y1) = super::rotate_pair(pair[0], pair[1], c, s, direction);
        pair[0] = y0;
        pair[1] = y1;
    }
}

/// The same from `src` into `dst`.
#[inline(always)]
fn from_body(src: &[u16], dst: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    let sign = sin_sign(direction);
    let mut sb = src.chunks_exact(2 * BLOCK);
    let mut db = dst.chunks_exact_mut(2 * BLOCK);
    let mut cb = cs.chunks_exact(BLOCK);
    for ((ss, ds), cs) in (&mut sb).zip(&mut db).zip(&mut cb) {
        block_then_fallback(ss, ds, cs, sign, direction);
    }
    let tail = sb.remainder().chunks_exact(2);
    for ((p, q), &[c, s]) in tail
        .zip(db.into_remainder().chunks_exact_mut(2))
        .zip(cb.remainder())
    {
        let (y0, y1) = super::rotate_pair(p[0], p[1], c, s, direction);
        q[0] = y0;
        q[1] = y1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn in_place_avx2(x: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    in_place_body(x, cs, direction)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn from_avx2(src: &[u16], dst: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    from_body(src, dst, cs, direction)
}

/// Whether the AVX2 build of the loops may run (detected once; std caches it).
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Rotates the interleaved pairs of `x` (`x.len() == 2 · cs.len()`) in place by the angles
/// of `cs`, bit for bit as [`super::rotate_pair`] does pair by pair.
pub(crate) fn rotate_pairs(x: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    debug_assert_eq!(x.len(), 2 * cs.len());
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is present, checked just above.
        unsafe { in_place_avx2(x, cs, direction) };
        return;
    }
    in_place_body(x, cs, direction)
}

/// [`rotate_pairs`] from `src` into `dst` (same lengths).
pub(crate) fn rotate_pairs_from(
    src: &[u16],
    dst: &mut [u16],
    cs: &[[f32; 2]],
    direction: Direction,
) {
    debug_assert_eq!(src.len(), 2 * cs.len());
    debug_assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is present, checked just above.
        unsafe { from_avx2(src, dst, cs, direction) };
        return;
    }
    from_body(src, dst, cs, direction)
}

/// One block of half-split pairs: `x0s[i]` pairs with `x1s[i]` (two contiguous runs of a
/// head, `(x[i], x[i + R/2])`), rotated in place by `cs[i]` with the lanes of [`block`]; the
/// undecided pairs again by the exact reference, from the values read before the block.
#[inline(always)]
fn halves_block_then_fallback(
    x0s: &mut [u16],
    x1s: &mut [u16],
    cs: &[[f32; 2]],
    sin_sign: f32,
    direction: Direction,
) {
    let a: [u16; BLOCK] = (&*x0s).try_into().expect("a block of x0");
    let b: [u16; BLOCK] = (&*x1s).try_into().expect("a block of x1");
    let cs: &[[f32; 2]; BLOCK] = cs.try_into().expect("a block of table pairs");
    let mut y0 = [0u16; BLOCK];
    let mut y1 = [0u16; BLOCK];
    let mut undecided = [0u16; BLOCK];
    for i in 0..BLOCK {
        let p = widen(a[i]);
        let q = widen(b[i]);
        let c = cs[i][0] as f64;
        let s = (cs[i][1] * sin_sign) as f64;
        let (r0, f0) = round_fast(p * c + q * -s);
        let (r1, f1) = round_fast(p * s + q * c);
        y0[i] = r0;
        y1[i] = r1;
        undecided[i] = f0 | f1;
    }
    let mut mask = undecided
        .iter()
        .enumerate()
        .fold(0u32, |m, (i, &u)| m | (u as u32) << i);
    x0s.copy_from_slice(&y0);
    x1s.copy_from_slice(&y1);
    while mask != 0 {
        let i = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        let [c, s] = cs[i];
        let (r0, r1) = super::rotate_pair(a[i], b[i], c, s, direction);
        x0s[i] = r0;
        x1s[i] = r1;
    }
}

/// The loop over the two halves of a head: fast blocks, the tail by the exact reference.
#[inline(always)]
fn halves_body(x0s: &mut [u16], x1s: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    let sign = sin_sign(direction);
    let mut ab = x0s.chunks_exact_mut(BLOCK);
    let mut bb = x1s.chunks_exact_mut(BLOCK);
    let mut cb = cs.chunks_exact(BLOCK);
    for ((a, b), c) in (&mut ab).zip(&mut bb).zip(&mut cb) {
        halves_block_then_fallback(a, b, c, sign, direction);
    }
    let tail = ab.into_remainder().iter_mut().zip(bb.into_remainder());
    for ((p, q), &[c, s]) in tail.zip(cb.remainder()) {
        (*p, *q) = super::rotate_pair(*p, *q, c, s, direction);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn halves_avx2(x0s: &mut [u16], x1s: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    halves_body(x0s, x1s, cs, direction)
}

/// Rotates half-split pairs in place: `x0s[i]` with `x1s[i]` by the angle of `cs[i]` (all
/// three of one length), bit for bit as [`super::rotate_pair`] does pair by pair.
pub(crate) fn rotate_halves(
    x0s: &mut [u16],
    x1s: &mut [u16],
    cs: &[[f32; 2]],
    direction: Direction,
) {
    debug_assert_eq!(x0s.len(), cs.len());
    debug_assert_eq!(x1s.len(), cs.len());
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is present, checked just above.
        unsafe { halves_avx2(x0s, x1s, cs, direction) };
        return;
    }
    halves_body(x0s, x1s, cs, direction)
}

/// The portable bodies alone (no AVX2), for tests that compare them with the dispatched ones.
#[cfg(test)]
fn rotate_pairs_portable(x: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
    in_place_body(x, cs, direction)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator: the unit tests need no crate for their random bits.
    struct Bits(u64);
    impl Bits {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// The reference: pair by pair through `rotate_pair`.
    fn scalar(x: &[u16], cs: &[[f32; 2]], direction: Direction) -> Vec<u16> {
        let mut y = x.to_vec();
        for (p, &[c, s]) in y.chunks_exact_mut(2).zip(cs) {
            let (a, b) = super::super::rotate_pair(p[0], p[1], c, s, direction);
            p[0] = a;
            p[1] = b;
        }
        y
    }

    fn check_all_paths(x: &[u16], cs: &[[f32; 2]]) {
        for direction in [Direction::Forward, Direction::Inverse] {
            let want = scalar(x, cs, direction);
            let mut fast = x.to_vec();
            rotate_pairs(&mut fast, cs, direction);
            let mut portable = x.to_vec();
            rotate_pairs_portable(&mut portable, cs, direction);
            let mut from = vec![0xFFFF; x.len()];
            rotate_pairs_from(x, &mut from, cs, direction);
            let mut from_portable = vec![0xFFFF; x.len()];
            from_body(x, &mut from_portable, cs, direction);
            assert_eq!(from, want, "rotate_pairs_from vs the scalar reference");
            assert_eq!(from_portable, want, "from_body vs the scalar reference");
            for (i, ((&w, &f), &p)) in want.iter().zip(&fast).zip(&portable).enumerate() {
                let (x0, x1) = (x[i & !1], x[i | 1]);
                let [c, s] = cs[i / 2];
                assert!(
                    w == f && w == p,
                    "rotate[x0={x0:#06x},x1={x1:#06x},cos={c:e},sin={s:e},{direction:?}].y{}: \
                     scalar {w:#06x}, dispatched {f:#06x}, portable {p:#06x}",
                    i % 2
                );
            }
        }
    }

    /// The half-split blocks (dispatched and portable) against `rotate_pair`, pair by pair,
    /// for run lengths with and without a tail.
    #[test]
    fn halves_match_the_scalar_reference() {
        let mut r = Bits(0x5851_F42D_4C95_7F2D);
        for n in [1usize, 7, 8, 13, 64] {
            for _ in 0..2_000 {
                let x: Vec<u16> = (0..2 * n).map(|_| r.next() as u16).collect();
                let cs: Vec<[f32; 2]> = (0..n)
                    .map(|_| {
                        let v = r.next();
                        [f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32)]
                    })
                    .collect();
                for direction in [Direction::Forward, Direction::Inverse] {
                    let (a, b) = x.split_at(n);
                    let want: Vec<(u16, u16)> = a
                        .iter()
                        .zip(b)
                        .zip(&cs)
                        .map(|((&p, &q), &[c, s])| super::super::rotate_pair(p, q, c, s, direction))
                        .collect();
                    let mut fast = x.clone();
                    let (f0, f1) = fast.split_at_mut(n);
                    rotate_halves(f0, f1, &cs, direction);
                    let mut portable = x.clone();
                    let (p0, p1) = portable.split_at_mut(n);
                    halves_body(p0, p1, &cs, direction);
                    for (i, &(w0, w1)) in want.iter().enumerate() {
                        assert_eq!(
                            (fast[i], fast[n + i]),
                            (w0, w1),
                            "dispatched, n {n} pair {i}"
                        );
                        assert_eq!(
                            (portable[i], portable[n + i]),
                            (w0, w1),
                            "portable, n {n} pair {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn random_bits_match_the_scalar_reference() {
        let mut r = Bits(0x9E37_79B9_7F4A_7C15);
        // 13 pairs: one block and a tail of five.
        for _ in 0..20_000 {
            let x: Vec<u16> = (0..26).map(|_| r.next() as u16).collect();
            let cs: Vec<[f32; 2]> = (0..13)
                .map(|_| {
                    let v = r.next();
                    [f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32)]
                })
                .collect();
            check_all_paths(&x, &cs);
        }
    }

    #[test]
    fn table_like_values_match_the_scalar_reference() {
        let mut r = Bits(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let x: Vec<u16> = (0..32).map(|_| r.next() as u16).collect();
            let cs: Vec<[f32; 2]> = (0..16)
                .map(|_| {
                    let a = (r.next() >> 11) as f64 * 2f64.powi(-53) * 1e4;
                    [a.cos() as f32, a.sin() as f32]
                })
                .collect();
            check_all_paths(&x, &cs);
        }
    }

    /// Which outputs the fast lanes leave undecided, for the cases the module docs list.
    #[rustfmt::skip]
    #[test]
    fn the_rounding_test_flags_what_it_must() {
        // (x0, x1, cos, sin, y0 undecided, what it exercises)
        let cases: [(u16, u16, f32, f32, bool, &str); 12] = [
            (0x3F80, 0x0000, 1.0 + 1.0 / 256.0, 0.0, true, "exact midpoint between 1 and 1+2^-7"),
            (0x3F80, 0x3F80, 1.0 + 1.0 / 256.0, 2f32.powi(-60), true, "midpoint minus 2^-60: the sums land on it"),
            (0x3F80, 0x3F80, 1.0 + 1.0 / 256.0, 2f32.powi(-20), false, "midpoint minus 2^-20: decided"),
            (0x3F80, 0x3F80, 1.5, 0.25, false, "1.25: on the bf16 grid"),
            (0x3F80, 0x3F80, 1.0, 1.0, false, "exact cancellation: +0"),
            (0x0001, 0x0000, 1.0, 0.0, false, "subnormal result"),
            (0x0001, 0x0000, 0.5, 0.0, true, "half the smallest subnormal: a midpoint"),
            (0x0001, 0x0000, 0.25, 0.0, false, "a quarter of it: rounds to +0"),
            (0x7F7F, 0x0000, 1.0, 0.0, false, "largest finite"),
            (0x3F80, 0x0000, f32::from_bits(0x7F7F_8000), 0.0, true, "the overflow midpoint 2^128 - 2^119"),
            (0x7F7F, 0x7F7F, 1.0, -1.0, true, "beyond f32: undecided"),
            (0x7F80, 0x0000, 1.0, 0.0, true, "inf"),
        ];
        for (x0, x1, c, s, want, what) in cases {
            let mut x = [0u16; 2 * BLOCK];
            x[0] = x0;
            x[1] = x1;
            let mut cs = [[1.0f32, 0.5]; BLOCK];
            cs[0] = [c, s];
            // The other pairs are decided (zeros would not be), so only bit 0 may be set.
            for p in 1..BLOCK {
                x[2 * p] = 0x3F80;
                x[2 * p + 1] = 0x4040;
            }
            let mut y = [0u16; 2 * BLOCK];
            let mask = block(&x, &mut y, &cs, 1.0);
            let undecided_y0 = round_fast(widen(x0) * c as f64 + widen(x1) * -(s as f64)).1 == 1;
            assert_eq!(undecided_y0, want, "{what}: y0 undecided");
            assert_eq!(mask >> 1, 0, "{what}: other pairs decided");
            assert_eq!(mask & 1 == 1, want || round_fast(widen(x0) * s as f64 + widen(x1) * c as f64).1 == 1, "{what}: mask");
        }
    }
}
