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
use crate::spec::RopeCall;
pub use exact::{dot2, dot2_f16, dot2_f32, rotate_pair, rotate_pair_f16, rotate_pair_f32};

mod simd;
mod walk;

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
