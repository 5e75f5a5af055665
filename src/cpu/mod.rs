//! The CPU path: the same bits as the GPU kernel, for machines with no adapter.
//!
//! A bf16 × f32 product has at most 8 + 24 = 32 significant bits, so it is exact in f64, and
//! the sum of two such products is rounded once by the f64 addition. Rounding that f64 to bf16
//! is then correct except when the f64 lands exactly on a bf16 midpoint (f64 rounding is
//! monotonic and every bf16 midpoint is an f64); there the exact error of the addition
//! (Knuth's TwoSum) says on which side the true value lies. IEEE f64 arithmetic gives the
//! special values of the contract directly (inf·0 and inf−inf are NaN, signed zeros);
//! NaNs are made canonical. No f64 subnormal can occur (|products| ≥ 2⁻²⁸²).

use half::{bf16, f16};

use crate::dtype::{Bits, Dtype};
use crate::error::Result;

mod exact;
pub mod hf;
pub use crate::dtype::{BF16_QNAN, F16_QNAN, F32_QNAN};
use crate::shape::Direction;
use crate::spec::RopeCall;
pub use exact::{dot2_f16, dot2_f32, rotate_pair_f16, rotate_pair_f32};

mod simd;
mod walk;

#[inline]
fn widen(h: u16) -> f64 {
    f32::from_bits((h as u32) << 16) as f64
}

/// Correctly rounded bf16 (nearest, ties to even) of `a·b + c·d`, `a`, `c` bf16 patterns.
#[inline]
pub fn dot2(a: u16, b: f32, c: u16, d: f32) -> u16 {
    let p = widen(a) * b as f64;
    let q = widen(c) * d as f64;
    round_sum(p, q)
}

/// Rounds the exact `p + q` (both exact f64 products) to bf16.
#[inline]
fn round_sum(p: f64, q: f64) -> u16 {
    let r = p + q;
    let bits = r.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    let mag = bits & 0x7FFF_FFFF_FFFF_FFFF;
    if mag >= 0x7FF0_0000_0000_0000 {
        return if mag == 0x7FF0_0000_0000_0000 {
            sign | 0x7F80
        } else {
            BF16_QNAN
        };
    }
    if mag == 0 {
        return sign;
    }
    let e = (mag >> 52) as i64;
    let m = (mag & ((1u64 << 52) - 1)) | (1u64 << 52);
    // value = m · 2^(e − 1075); keep 8 bits, or stop at the subnormal unit 2^−133.
    let shift = 45i64.max(942 - e);
    if shift > 53 {
        // Below half the smallest subnormal: rounds to a signed zero.
        return sign;
    }
    let mut kept = (m >> shift) as u32;
    let rem = m & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    let up = if rem != half {
        rem > half
    } else {
        // r sits on a midpoint: the exact error of the addition (TwoSum) decides.
        let pv = r - q;
        let qv = r - pv;
        let err = (p - pv) + (q - qv);
        if err == 0.0 {
            kept & 1 == 1
        } else {
            (err > 0.0) == (r > 0.0)
        }
    };
    kept += up as u32;
    // value = kept · 2^u with biased = u + 133; ((u + 133) << 7) + kept is the bf16 pattern for
    // normal (kept in [128, 256]) and subnormal (kept < 128) results alike.
    let biased = shift + e - 942;
    let m16 = if biased >= 255 {
        0x7F80
    } else {
        (((biased as u32) << 7) + kept).min(0x7F80)
    };
    sign | m16 as u16
}

/// Rotates one pair: `(x0·cos − x1·sin, x0·sin + x1·cos)`, or by −angle for `Inverse`.
#[inline]
pub fn rotate_pair(x0: u16, x1: u16, cos: f32, sin: f32, direction: Direction) -> (u16, u16) {
    let sin = match direction {
        Direction::Forward => sin,
        Direction::Inverse => -sin,
    };
    (dot2(x0, cos, x1, -sin), dot2(x0, sin, x1, cos))
}

/// Rotates the view of `call` inside `buf`, in place: every pair of the first `rotary_dim`
/// dims of every head; the other dims and the rest of the buffer are left as they are.
/// (Views whose heads overlap in memory are not supported.) `buf` holds the raw bits of the
/// call's dtype ([`Rotation::dtype`](crate::Rotation::dtype)): `u16` for bf16 and f16, `u32`
/// for f32; the output has the same dtype. Exact (also for `fast`: the CPU has one
/// arithmetic), or transformers' arithmetic when the call's precision is
/// [`Hf`](crate::Precision::Hf) ([`crate::hf`]).
pub fn apply_in_place<E: Bits>(call: &RopeCall, buf: &mut [E]) -> Result<()> {
    call.rotation.dtype.check_bits::<E>()?;
    walk::rotate_in_place(call, buf)
}

/// [`apply_in_place`] on a copy of `x`: the buffer with the view rotated.
pub fn apply<E: Bits>(call: &RopeCall, x: &[E]) -> Result<Vec<E>> {
    call.rotation.dtype.check_bits::<E>()?;
    // A whole contiguous tensor is read from `x` and written once: no copy first.
    if let Some(shape) = walk::whole_tensor(call) {
        if shape.elements() == x.len() {
            call.validate(x.len())?;
            let mut out = vec![E::default(); x.len()];
            walk::rotate_from(call, shape, x, &mut out);
            return Ok(out);
        }
    }
    let mut out = x.to_vec();
    apply_in_place(call, &mut out)?;
    Ok(out)
}

/// [`apply`] on `half::bf16` data: the call is rotated as bf16 (the slice's type says so,
/// whatever [`Rotation::dtype`](crate::Rotation::dtype) the call names).
pub fn apply_bf16(call: &RopeCall, x: &[bf16]) -> Result<Vec<bf16>> {
    let call = call.with_dtype(Dtype::Bf16);
    let bits = apply(&call, bytemuck::cast_slice::<_, u16>(x))?;
    Ok(bits.into_iter().map(bf16::from_bits).collect())
}

/// [`apply`] on `half::f16` data, rotated as f16.
pub fn apply_f16(call: &RopeCall, x: &[f16]) -> Result<Vec<f16>> {
    let call = call.with_dtype(Dtype::F16);
    let bits = apply(&call, bytemuck::cast_slice::<_, u16>(x))?;
    Ok(bits.into_iter().map(f16::from_bits).collect())
}

/// [`apply`] on `f32` data, rotated as f32.
pub fn apply_f32(call: &RopeCall, x: &[f32]) -> Result<Vec<f32>> {
    let call = call.with_dtype(Dtype::F32);
    let bits = apply(&call, bytemuck::cast_slice::<_, u32>(x))?;
    Ok(bits.into_iter().map(f32::from_bits).collect())
}
