//! The CPU path: the contract of the GPU kernels (docs/CONTRACT.md §2), the same bits, for
//! machines with no adapter. [`apply`] and [`apply_in_place`] rotate a [`RopeCall`] on the raw
//! bits of any dtype, [`apply_bf16`], [`apply_f16`] and [`apply_f32`] on typed slices;
//! [`dot2`], [`rotate_pair`] and their f16 and f32 forms are the exact arithmetic of one
//! output and of one pair, [`hf`] transformers' arithmetic.
//!
//! The modules below depend one way, each only on those under it (and on the crate's
//! `dtype`, `shape` and `spec`):
//!
//! - `walk`: the walk over a call (which heads, which table rows, split over the cores) and
//!   the arithmetic each head goes to;
//! - `simd`: the vectorised exact blocks, and [`hf`]: transformers' steps, pair by pair;
//! - `exact`: the correctly rounded arithmetic of one pair, the scalar reference that
//!   `simd` falls back to.

use half::{bf16, f16};

use crate::dtype::{Bits, Dtype};
use crate::error::Result;
use crate::spec::RopeCall;

mod exact;
pub mod hf;
mod simd;
mod walk;

pub use crate::dtype::{BF16_QNAN, F16_QNAN, F32_QNAN};
pub use exact::{dot2, dot2_f16, dot2_f32, rotate_pair, rotate_pair_f16, rotate_pair_f32};

/// Rotates the view of `call` inside `buf`, in place: every pair of the first `rotary_dim`
/// dims of every head; the other dims and the rest of the buffer are left as they are.
/// (Views whose heads overlap in memory are not supported.) `buf` holds the raw bits of the
/// call's dtype ([`Rotation::dtype`](crate::Rotation::dtype)): `u16` for bf16 and f16, `u32`
/// for f32; the output has the same dtype. Exact (also for `fast`: the CPU has one
/// arithmetic), or transformers' arithmetic when the call's precision is
/// [`Hf`](crate::Precision::Hf) ([`hf`]).
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
