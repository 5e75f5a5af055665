//! The `hf` arithmetic on the CPU (DESIGN.md §2): Hugging Face transformers' eager
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
//! integer bits (`shaders/bf16.wgsl`, `dot2_hf`), since drivers may flush f32 subnormals.
//!
//! A compatibility mode for validating ports, never the default: it differs from the exact
//! result in 13–42% of outputs on real model configurations (README).

use crate::cpu::BF16_QNAN;
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
