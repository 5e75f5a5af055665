//! The `hf` arithmetic on the CPU (docs/CONTRACT.md §2): Hugging Face transformers' eager
//! `apply_rotary_pos_emb` on a bf16 tensor, bit for bit.
//!
//! transformers hands cos and sin over already cast to the tensor's dtype, then computes
//! `q * cos + rotate_half(q) * sin` in bf16 tensors. torch's CPU kernels do each bf16 multiply
//! and add in f32 (IEEE round to nearest even, subnormals kept: torch does not flush by
//! default) and round the f32 result to bf16 with round-to-nearest-even on the bits (c10's
//! `round_to_nearest_even`, and the same integer rounding in the AVX2/AVX-512 vectorised
//! conversions). So, per pair, with `c = bf16(cos)`, `s = bf16(sin)`:
//!
//! ```text
//! y0 = bf16(f32(bf16(f32(x0·c)) + bf16(f32(−x1·s))))
//! y1 = bf16(f32(bf16(f32(x1·c)) + bf16(f32(x0·s))))        (inverse: s → −s)
//! ```
//!
//! A product of two bf16 (16 significant bits) is exact in f32 except deep in the f32
//! subnormal range or past the largest f32; a sum of two bf16 is exact in f32 unless their
//! exponents lie far apart. Host f32 arithmetic (Rust on x86-64, aarch64 and wasm: IEEE, no flush) is
//! therefore torch's arithmetic, step for step. Every NaN is the canonical `0x7FC0` (torch
//! emits other payloads: compare by NaN-ness). The GPU kernels emulate the same steps on
//! integer bits (`shaders/hf.wgsl`, `dot2_hf`), since drivers may flush f32 subnormals.
//!
//! On f16 tensors transformers does the same in f16 (`f16_from_f32` in place of the bf16
//! rounding: each f16 product is exact in f32, each f16 sum is rounded to f32 and then to
//! f16, as torch does); on f32 tensors the plain f32 steps, `fl(fl(x0·c) + fl(−x1·s))` (cos
//! and sin are already f32). Canonical NaNs `0x7E00` / `0x7FC00000`.
//!
//! A compatibility mode for validating ports, never the default: it differs from the exact
//! result in 13–42% of outputs on real model configurations (README).

use crate::dtype::{BF16_QNAN, F16_QNAN, F32_QNAN};
use crate::shape::Direction;

/// torch's f32 → bf16 rounding: round to nearest, ties to even, on the bits (correct for
/// subnormals; overflow carries into infinity); NaN becomes the canonical `0x7FC0`.
#[inline]
pub fn bf16_from_f32(x: f32) -> u16 {
    if x.is_nan() {
        return BF16_QNAN;
    }
    let u = x.to_bits();
    ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16
}

#[inline]
fn widen(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// torch's bf16 product: the f32 product, rounded to bf16.
#[inline]
pub fn mul_hf(a: u16, b: u16) -> u16 {
    bf16_from_f32(widen(a) * widen(b))
}

/// torch's bf16 sum: the f32 sum, rounded to bf16.
#[inline]
pub fn add_hf(a: u16, b: u16) -> u16 {
    bf16_from_f32(widen(a) + widen(b))
}

/// One `hf` output: `bf16(bf16(a·b) + bf16(c·d))`, all four operands bf16 patterns.
#[inline]
pub fn dot2_hf(a: u16, b: u16, c: u16, d: u16) -> u16 {
    add_hf(mul_hf(a, b), mul_hf(c, d))
}

/// Rotates one pair the way transformers does in bf16: cos and sin (f32, attention scaling
/// already in) rounded to bf16, then `x·cos + rotate_half(x)·sin` with every product and the
/// sum rounded to bf16; by −angle for `Inverse`.
#[inline]
pub fn rotate_pair_hf(x0: u16, x1: u16, cos: f32, sin: f32, direction: Direction) -> (u16, u16) {
    let sin = match direction {
        Direction::Forward => sin,
        Direction::Inverse => -sin,
    };
    let c = bf16_from_f32(cos);
    let s = bf16_from_f32(sin);
    // rotate_half(x) = (−x1, x0): negating a bf16 is exact.
    (dot2_hf(x0, c, x1 ^ 0x8000, s), dot2_hf(x1, c, x0, s))
}

/// torch's f32 → f16 rounding: round to nearest, ties to even (subnormals kept, overflow to
/// infinity); NaN becomes the canonical `0x7E00`.
#[inline]
pub fn f16_from_f32(x: f32) -> u16 {
    if x.is_nan() {
        return F16_QNAN;
    }
    half::f16::from_f32(x).to_bits()
}

#[inline]
fn widen_f16(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// torch's f16 product: the f32 product (exact: 22 bits), rounded to f16.
#[inline]
pub fn mul_hf_f16(a: u16, b: u16) -> u16 {
    f16_from_f32(widen_f16(a) * widen_f16(b))
}

/// torch's f16 sum: the f32 sum, rounded to f16.
#[inline]
pub fn add_hf_f16(a: u16, b: u16) -> u16 {
    f16_from_f32(widen_f16(a) + widen_f16(b))
}

/// Rotates one f16 pair the way transformers does on an f16 tensor: cos and sin rounded to
/// f16, every product and the sum rounded to f16 (through f32); by −angle for `Inverse`.
#[inline]
pub fn rotate_pair_hf_f16(
    x0: u16,
    x1: u16,
    cos: f32,
    sin: f32,
    direction: Direction,
) -> (u16, u16) {
    let sin = match direction {
        Direction::Forward => sin,
        Direction::Inverse => -sin,
    };
    let c = f16_from_f32(cos);
    let s = f16_from_f32(sin);
    (
        add_hf_f16(mul_hf_f16(x0, c), mul_hf_f16(x1 ^ 0x8000, s)),
        add_hf_f16(mul_hf_f16(x1, c), mul_hf_f16(x0, s)),
    )
}

#[inline]
fn canonical_f32(x: f32) -> u32 {
    if x.is_nan() {
        F32_QNAN
    } else {
        x.to_bits()
    }
}

/// Rotates one f32 pair the way torch does on an f32 tensor: each product rounded to f32,
/// then their sum (`x·cos + rotate_half(x)·sin`, no fused multiply-add); by −angle for
/// `Inverse`.
#[inline]
pub fn rotate_pair_hf_f32(
    x0: u32,
    x1: u32,
    cos: f32,
    sin: f32,
    direction: Direction,
) -> (u32, u32) {
    let sin = match direction {
        Direction::Forward => sin,
        Direction::Inverse => -sin,
    };
    let (a, b) = (f32::from_bits(x0), f32::from_bits(x1));
    let (p0, q0) = (a * cos, -b * sin);
    let (p1, q1) = (b * cos, a * sin);
    (canonical_f32(p0 + q0), canonical_f32(p1 + q1))
}
