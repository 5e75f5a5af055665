//! The CPU path's fast inner loop: blocks of interleaved pairs, or of half-split pairs (two
//! contiguous runs of a head, [`rotate_halves`]), rotated by branch-free code the compiler
//! vectorises, with the same proof-then-fallback structure as the GPU kernel. Every
//! output the fast path cannot prove is recomputed by the exact scalar reference
//! ([`exact::rotate_pair`]), so the bits are those of the reference everywhere.
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

use super::exact::{self, widen};

/// Pairs per block: 16 outputs, four 256-bit vectors of f64 per operand.
const BLOCK: usize = 8;

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
        let (y0, y1) = exact::rotate_pair(src[2 * i], src[2 * i + 1], c, s, direction);
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
        let (y0, y1) = exact::rotate_pair(pair[0], pair[1], c, s, direction);
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
        let (y0, y1) = exact::rotate_pair(p[0], p[1], c, s, direction);
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
/// of `cs`, bit for bit as [`exact::rotate_pair`] does pair by pair.
pub(super) fn rotate_pairs(x: &mut [u16], cs: &[[f32; 2]], direction: Direction) {
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
pub(super) fn rotate_pairs_from(
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
        let (r0, r1) = exact::rotate_pair(a[i], b[i], c, s, direction);
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
        (*p, *q) = exact::rotate_pair(*p, *q, c, s, direction);
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
/// three of one length), bit for bit as [`exact::rotate_pair`] does pair by pair.
pub(super) fn rotate_halves(
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

// ---------------------------------------------------------------------------------------------
// f16 and f32 tensors: the same structure (ARCHITECTURE.md, "f16 and f32 tensors").
//
// # The fast lanes
//
// Each lane decodes its two elements exactly to f64 (f16 through the bits: `em << 13` read
// as an f32 and multiplied by 2¹¹², exact for normal and subnormal f16 alike; the f16
// specials, exponent field 31, are flagged since that decoding makes them finite; f32 by
// the widening conversion, specials included), forms the two f64 products and their f64
// sum `r = fl64(a·b + c·d)`, exactly as the bf16 lanes do. Every product is exact (≤ 35 or
// 48 significant bits, magnitudes in [2⁻²⁹⁸, 2²⁵⁶]), so `r = fl64(v)`, `v` the exact value,
// and `r` is 0 only when `v` is, with IEEE's sign.
//
// *f16.* `t = fl32(r)`. A lane is decided when `t` is ±0, or when `t`'s exponent lies in
// f16's normal binades [2⁻¹⁴, 2¹⁶) and the low 13 bits of `t` are not `0x1000`; its result
// is then `t` rounded to f16 by integer operations (re-bias the exponent by 112, add
// `0xFFF` + the kept lsb, shift by 13; a carry out of 2¹⁵'s binade gives `0x7C00`, which is
// RNE's overflow since `t ≥ 65520` then). Why that is RN_f16(v): every f16 midpoint
// (12 significant bits, exponent ≥ −25) is an f32 and an f64 number, and rounding to
// nearest is monotonic and fixes the numbers of its format, so neither `r` nor `t` crosses
// a midpoint; in a normal f16 binade the midpoints are exactly the f32 numbers whose low 13
// bits are `0x1000`, so a `t` that is not one lies strictly inside the same open interval
// between midpoints as `v`, where RN_f16 is constant. `t = ±0` means `|v| < 2⁻¹⁴⁹`, far
// below half of f16's smallest subnormal: ±0 with `v`'s sign, or IEEE's sign when `v = 0`.
// Everything else (f16 subnormal results, `|t| ≥ 2¹⁶`, inf, NaN, flagged inputs) is
// undecided.
//
// *f32.* The output grid is f32 itself: `t = fl32(r)` is RN_f32(v) unless `r` is an f32
// midpoint (25 significant bits: an f64 number, the same monotonicity argument). A lane is
// decided when `r` = ±0, or when `r`'s f64 exponent lies in f32's normal binades
// [2⁻¹²⁶, 2¹²⁸), `t` is finite, and the low 29 bits of `r`'s fraction are not
// `0x1000_0000` (in those binades, exactly the f32 midpoints). The result is `t`'s bits.
// f32 subnormal results, overflow, inf and NaN are undecided.
//
// Undecided pairs go to the exact scalar reference (`super::exact`), from the values read
// before the block; so the bits are the reference's everywhere. The loops are compiled
// twice on x86-64 (plain, and with AVX2 chosen at run time); no FMA is enabled (Rust never
// contracts `a·b + c·d` by itself, and an FMA would change `r`, though not the proof).

/// An output format of the fast lanes (f16 as `u16`, f32 as `u32` bit patterns).
pub(super) trait FastFloat: Copy + Default {
    /// The element decoded exactly, and 1 when it must not take the fast lanes.
    fn decode(self) -> (f64, u32);
    /// `r` rounded to the format, and 1 when the lane is undecided.
    fn round(r: f64) -> (Self, u32);
    /// The exact scalar reference for one pair.
    fn exact(x0: Self, x1: Self, c: f32, s: f32, direction: Direction) -> (Self, Self);
}

impl FastFloat for u16 {
    #[inline(always)]
    fn decode(self) -> (f64, u32) {
        let em = (self & 0x7FFF) as u32;
        // 2¹¹²: f16's exponent bias 15 re-based onto f32's 127, exact for subnormals too.
        let mag = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
        let v = f32::from_bits(mag.to_bits() | ((self as u32 & 0x8000) << 16));
        (v as f64, (em >= 0x7C00) as u32)
    }

    #[inline(always)]
    fn round(r: f64) -> (Self, u32) {
        let t = (r as f32).to_bits();
        let sign = (t >> 16) & 0x8000;
        let a = t & 0x7FFF_FFFF;
        let e = a >> 23;
        let zero = a == 0;
        let normal = (113..=142).contains(&e);
        let midpoint = (a & 0x1FFF) == 0x1000;
        // Wrapping: lanes outside the normal binades compute garbage that is not used.
        let rounded = a
            .wrapping_sub(112 << 23)
            .wrapping_add(0xFFF + ((a >> 13) & 1))
            >> 13;
        let bits = if zero { 0 } else { rounded };
        let decided = zero | (normal & !midpoint);
        ((sign | bits) as u16, (!decided) as u32)
    }

    #[inline(always)]
    fn exact(x0: Self, x1: Self, c: f32, s: f32, direction: Direction) -> (Self, Self) {
        exact::rotate_pair_f16(x0, x1, c, s, direction)
    }
}

impl FastFloat for u32 {
    #[inline(always)]
    fn decode(self) -> (f64, u32) {
        (f32::from_bits(self) as f64, 0)
    }

    #[inline(always)]
    fn round(r: f64) -> (Self, u32) {
        let t = (r as f32).to_bits();
        let rb = r.to_bits();
        let re = (rb >> 52) & 0x7FF;
        let zero = rb << 1 == 0;
        // f64 exponents 897..=1150 are the binades [2⁻¹²⁶, 2¹²⁸).
        let normal = (897..=1150).contains(&re) & ((t & 0x7F80_0000) != 0x7F80_0000);
        let midpoint = (rb & 0x1FFF_FFFF) == 0x1000_0000;
        let decided = zero | (normal & !midpoint);
        (t, (!decided) as u32)
    }

    #[inline(always)]
    fn exact(x0: Self, x1: Self, c: f32, s: f32, direction: Direction) -> (Self, Self) {
        exact::rotate_pair_f32(x0, x1, c, s, direction)
    }
}

/// One block of pairs `(x0[i], x1[i])` at `cs[i]`: the fast results, and the undecided pairs
/// one bit each.
#[inline(always)]
fn float_block<T: FastFloat>(
    x0: &[T; BLOCK],
    x1: &[T; BLOCK],
    cs: &[[f32; 2]; BLOCK],
    sin_sign: f32,
) -> ([T; BLOCK], [T; BLOCK], u32) {
    let mut y0 = [T::default(); BLOCK];
    let mut y1 = [T::default(); BLOCK];
    let mut undecided = [0u32; BLOCK];
    for i in 0..BLOCK {
        let (a, fa) = x0[i].decode();
        let (b, fb) = x1[i].decode();
        let c = cs[i][0] as f64;
        let s = (cs[i][1] * sin_sign) as f64;
        let (r0, f0) = T::round(a * c + b * -s);
        let (r1, f1) = T::round(a * s + b * c);
        y0[i] = r0;
        y1[i] = r1;
        undecided[i] = fa | fb | f0 | f1;
    }
    let mask = (0..BLOCK).fold(0u32, |m, i| m | (undecided[i] << i));
    (y0, y1, mask)
}

/// The element indices of pair `i` in a head of `pairs` pairs.
#[inline(always)]
fn float_index(half_split: bool, i: usize, pairs: usize) -> (usize, usize) {
    if half_split {
        (i, i + pairs)
    } else {
        (2 * i, 2 * i + 1)
    }
}

/// Rotates the first `cs.len()` pairs of one head (interleaved or half-split) with the fast
/// blocks, reading from `src` (out of place) or from `head` itself (in place: each block is
/// read before it is written); undecided pairs and the tail by the exact reference.
#[inline(always)]
fn float_head_body<T: FastFloat, const HALF: bool>(
    src: Option<&[T]>,
    head: &mut [T],
    cs: &[[f32; 2]],
    direction: Direction,
) {
    let pairs = cs.len();
    let sign = sin_sign(direction);
    let full = pairs - pairs % BLOCK;
    for k in (0..full).step_by(BLOCK) {
        let input = src.unwrap_or(head);
        let (mut x0, mut x1) = ([T::default(); BLOCK], [T::default(); BLOCK]);
        if HALF {
            x0.copy_from_slice(&input[k..k + BLOCK]);
            x1.copy_from_slice(&input[pairs + k..pairs + k + BLOCK]);
        } else {
            let pairs_in = &input[2 * k..2 * k + 2 * BLOCK];
            for i in 0..BLOCK {
                x0[i] = pairs_in[2 * i];
                x1[i] = pairs_in[2 * i + 1];
            }
        }
        let block_cs: &[[f32; 2]; BLOCK] = cs[k..k + BLOCK].try_into().expect("a block");
        let (y0, y1, mut mask) = float_block(&x0, &x1, block_cs, sign);
        if HALF {
            head[k..k + BLOCK].copy_from_slice(&y0);
            head[pairs + k..pairs + k + BLOCK].copy_from_slice(&y1);
        } else {
            let out = &mut head[2 * k..2 * k + 2 * BLOCK];
            for i in 0..BLOCK {
                out[2 * i] = y0[i];
                out[2 * i + 1] = y1[i];
            }
        }
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let [c, s] = block_cs[i];
            let (e0, e1) = float_index(HALF, k + i, pairs);
            (head[e0], head[e1]) = T::exact(x0[i], x1[i], c, s, direction);
        }
    }
    for (i, &[c, s]) in cs.iter().enumerate().skip(full) {
        let (e0, e1) = float_index(HALF, i, pairs);
        let input = src.unwrap_or(head);
        let (a, b) = (input[e0], input[e1]);
        (head[e0], head[e1]) = T::exact(a, b, c, s, direction);
    }
}

#[inline(always)]
fn float_head_portable<T: FastFloat>(
    src: Option<&[T]>,
    head: &mut [T],
    cs: &[[f32; 2]],
    half_split: bool,
    direction: Direction,
) {
    if half_split {
        float_head_body::<T, true>(src, head, cs, direction)
    } else {
        float_head_body::<T, false>(src, head, cs, direction)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn float_head_avx2<T: FastFloat>(
    src: Option<&[T]>,
    head: &mut [T],
    cs: &[[f32; 2]],
    half_split: bool,
    direction: Direction,
) {
    float_head_portable(src, head, cs, half_split, direction)
}

/// Rotates one head of f16 (`T = u16`) or f32 (`T = u32`) bit patterns, exact: its first
/// `cs.len()` pairs, interleaved or half-split, from `src` (the same head of the input, out
/// of place; `head` then gets every rotated element) or in place; bit for bit as
/// `rotate_pair_f16` / `rotate_pair_f32` pair by pair.
pub(super) fn rotate_float_head<T: FastFloat>(
    src: Option<&[T]>,
    head: &mut [T],
    cs: &[[f32; 2]],
    half_split: bool,
    direction: Direction,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is present, checked just above.
        unsafe { float_head_avx2(src, head, cs, half_split, direction) };
        return;
    }
    float_head_portable(src, head, cs, half_split, direction)
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
            let (a, b) = exact::rotate_pair(p[0], p[1], c, s, direction);
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
                        .map(|((&p, &q), &[c, s])| exact::rotate_pair(p, q, c, s, direction))
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

    /// f16 / f32 heads: dispatched and portable, in place and out of place, interleaved and
    /// half-split, against the exact pair (`rotate_pair_f16` / `_f32`, itself checked
    /// against the BigInt oracle in tests/rotation/floats.rs), for heads of `cs.len()` pairs.
    fn check_float_head<T: FastFloat + PartialEq + std::fmt::Debug>(x: &[T], cs: &[[f32; 2]]) {
        let n = cs.len();
        assert_eq!(x.len(), 2 * n);
        for half_split in [false, true] {
            for direction in [Direction::Forward, Direction::Inverse] {
                let mut want = x.to_vec();
                for (i, &[c, s]) in cs.iter().enumerate() {
                    let (e0, e1) = float_index(half_split, i, n);
                    (want[e0], want[e1]) = T::exact(x[e0], x[e1], c, s, direction);
                }
                let mut fast = x.to_vec();
                rotate_float_head(None, &mut fast, cs, half_split, direction);
                let mut portable = x.to_vec();
                float_head_portable(None, &mut portable, cs, half_split, direction);
                let mut from = vec![T::default(); x.len()];
                rotate_float_head(Some(x), &mut from, cs, half_split, direction);
                let mut from_portable = vec![T::default(); x.len()];
                float_head_portable(Some(x), &mut from_portable, cs, half_split, direction);
                for (got, path) in [
                    (&fast, "dispatched"),
                    (&portable, "portable"),
                    (&from, "dispatched, from"),
                    (&from_portable, "portable, from"),
                ] {
                    if *got != want {
                        let e = (0..x.len()).find(|&e| got[e] != want[e]).unwrap();
                        let i = if half_split { e % n } else { e / 2 };
                        let (e0, e1) = float_index(half_split, i, n);
                        panic!(
                            "{path} [half_split={half_split},{direction:?}] pair {i}: \
                             x = ({:?}, {:?}), cs = {:?}: got {:?}, exact {:?}",
                            x[e0],
                            x[e1],
                            cs[i],
                            (got[e0], got[e1]),
                            (want[e0], want[e1])
                        );
                    }
                }
            }
        }
    }

    /// Every f16 pattern as x0 against edge x1 values at angles that hit the lanes' edges,
    /// in heads of 16 pairs (two blocks) and of 13 (a block and a tail).
    #[test]
    fn f16_every_pattern_matches_the_exact_pair() {
        #[rustfmt::skip]
        let x1s: [u16; 12] = [
            0x0000, 0x8000, 0x3C00, 0xBC00, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00,
            0x7E00, 0x3555,
        ];
        #[rustfmt::skip]
        let angles: [[f32; 2]; 8] = [
            [1.0, 0.0],
            [std::f32::consts::FRAC_1_SQRT_2, std::f32::consts::FRAC_1_SQRT_2],
            [0.540_302_3, 0.841_471],                  // angle 1
            [1.0 + 2f32.powi(-11), 2f32.powi(-12)],   // f16 midpoints and ties
            [1.0 - f32::EPSILON / 2.0, 1e-40],        // cos below 1, subnormal sin
            [3.0e38, -1.0e30],                        // products beyond f16 and f32
            [f32::MIN_POSITIVE, 6.0e-8],              // tiny results: f16 subnormals, zeros
            [-1.0, -0.0],
        ];
        for n in [16usize, 13] {
            for &[c, s] in &angles {
                let cs = vec![[c, s]; n];
                for &x1 in &x1s {
                    for chunk in (0..=u16::MAX).collect::<Vec<u16>>().chunks(n) {
                        if chunk.len() < n {
                            continue;
                        }
                        let x: Vec<u16> = chunk.iter().flat_map(|&x0| [x0, x1]).collect();
                        check_float_head(&x, &cs);
                    }
                }
            }
        }
    }

    #[test]
    fn f32_random_bits_and_table_values_match_the_exact_pair() {
        let mut r = Bits(0xD1B5_4A32_D192_ED03);
        for round in 0..20_000 {
            let n = if round % 2 == 0 { 16 } else { 11 };
            let x: Vec<u32> = (0..2 * n)
                .map(|_| {
                    let v = r.next();
                    match v % 4 {
                        0 => (v >> 32) as u32,
                        // Normal values near 1, and a low-bit neighbour: cancellations.
                        _ => {
                            0x3F00_0000
                                | ((v >> 40) as u32 & 0x00FF_FFFF)
                                | ((v as u32) & 0x8000_0000)
                        }
                    }
                })
                .collect();
            let cs: Vec<[f32; 2]> = (0..n)
                .map(|_| {
                    let v = r.next();
                    if v % 5 == 0 {
                        [f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32)]
                    } else {
                        let a = (v >> 11) as f64 * 2f64.powi(-53) * 1e4;
                        [a.cos() as f32, a.sin() as f32]
                    }
                })
                .collect();
            check_float_head(&x, &cs);
        }
        // f64 sums that land on an f32 midpoint though the exact value does not (the `f32_edges`
        // case of exact.rs: 1 + 3·2⁻²⁴ − 2⁻⁷⁰), in every lane, beside lanes exactly on one.
        let d = f32::from_bits(0x3F7F_FFFE);
        let x: Vec<u32> = [0x3F80_0001u32, 0x3380_0001].repeat(16);
        let cs: Vec<[f32; 2]> = (0..16)
            .map(|i| [1.0, if i % 2 == 0 { -d } else { -1.0 }])
            .collect();
        check_float_head(&x, &cs);
    }

    /// Which f16 / f32 outputs the fast lanes leave undecided, for the cases the docs list.
    #[rustfmt::skip]
    #[test]
    fn the_float_rounding_tests_flag_what_they_must() {
        let p = |e: i32| 2f64.powi(e);
        // (r, f16 undecided, what it exercises)
        let f16_cases: [(f64, bool, &str); 10] = [
            (1.0, false, "on the grid"),
            (1.0 + p(-11), true, "a midpoint"),
            (1.0 + p(-11) + p(-20), false, "beside a midpoint, within f32's precision"),
            (1.0 + p(-11) + p(-40), true, "f32 rounds it onto the midpoint"),
            (65519.0, false, "below the overflow midpoint: 65504"),
            (65520.0, true, "the overflow midpoint"),
            (65530.0, false, "above it: inf"),
            (p(-15), true, "an f16 subnormal result"),
            (p(-160), false, "far below f16's grid: +0"),
            (f64::INFINITY, true, "inf"),
        ];
        for (r, want, what) in f16_cases {
            let (bits, undecided) = <u16 as FastFloat>::round(r);
            assert_eq!(undecided == 1, want, "f16 {what}: r = {r:e}");
            if !want {
                assert_eq!(bits, half::f16::from_f64(r).to_bits(), "f16 {what}");
            }
        }
        let f32_cases: [(f64, bool, &str); 9] = [
            (1.0, false, "on the grid"),
            (1.0 + p(-24), true, "a midpoint"),
            (1.0 + p(-24) + p(-52), false, "beside it: f64 keeps it"),
            (-(1.0 + p(-24)), true, "a negative midpoint"),
            (p(-126), false, "the smallest normal"),
            (p(-126) - p(-150), true, "the midpoint below the smallest normal (a subnormal binade)"),
            (p(-127) * 1.5, true, "an f32 subnormal result"),
            (f32::MAX as f64 + p(103), true, "the overflow midpoint"),
            (0.0, false, "zero"),
        ];
        for (r, want, what) in f32_cases {
            let (bits, undecided) = <u32 as FastFloat>::round(r);
            assert_eq!(undecided == 1, want, "f32 {what}: r = {r:e}");
            if !want {
                assert_eq!(bits, (r as f32).to_bits(), "f32 {what}");
            }
        }
        // f16 specials are flagged on decoding (the decoding makes them finite).
        for h in [0x7C00u16, 0xFC00, 0x7E00, 0xFD01] {
            assert_eq!(h.decode().1, 1, "{h:#06x}");
        }
        for h in [0x0001u16, 0x03FF, 0x0400, 0x7BFF, 0x8001] {
            let (v, flag) = h.decode();
            assert_eq!((v, flag), (half::f16::from_bits(h).to_f64(), 0), "{h:#06x}");
        }
    }
}
