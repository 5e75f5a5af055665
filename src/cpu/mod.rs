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
use crate::shape::{Direction, RopeShape};
use crate::spec::{Pairing, RopeCall};
pub use exact::{dot2_f16, dot2_f32, rotate_pair_f16, rotate_pair_f32};

mod simd;

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

/// The threaded path of a contiguous call ([`RopeCall::contiguous_pairs`]: BSHD, or BHSD as
/// `batch · heads` one-head sequences, whole heads): `dst` holds exactly the tensor, cut into
/// runs of whole tokens, one per worker; `rotate_head(src, head, row)` rotates one head with
/// its table row, reading from `src` (the same head of the input, out of place: no copy
/// first) or, when `src` is `None`, in place. Every dtype's CPU path splits work here.
fn rotate_contiguous<T: Copy + Send + Sync>(
    call: &RopeCall,
    shape: RopeShape,
    src: Option<&[T]>,
    dst: &mut [T],
    rotate_head: impl Fn(Option<&[T]>, &mut [T], &[[f32; 2]]) + Sync,
) {
    let token_len = shape.heads * shape.head_dim;
    let pairs = shape.pairs();
    let rotate = |first_token: usize, src: Option<&[T]>, chunk: &mut [T]| {
        for (t, token) in chunk.chunks_exact_mut(token_len).enumerate() {
            let tok = first_token + t;
            let r = call
                .positions
                .row(tok / shape.seq, tok % shape.seq, shape.seq);
            let row = &call.table.cos_sin()[r * pairs..][..pairs];
            let token_src = src.map(|s| &s[t * token_len..][..token_len]);
            for (h, head) in token.chunks_exact_mut(shape.head_dim).enumerate() {
                let from = token_src.map(|s| &s[h * shape.head_dim..][..shape.head_dim]);
                rotate_head(from, head, row);
            }
        }
    };
    let threads = worker_count(dst.len());
    if threads <= 1 {
        rotate(0, src, dst);
        return;
    }
    let tokens = shape.batch * shape.seq;
    let per = tokens.div_ceil(threads);
    std::thread::scope(|scope| {
        for (k, chunk) in dst.chunks_mut(per * token_len).enumerate() {
            let f = &rotate;
            let src = src.map(|s| &s[k * per * token_len..][..chunk.len()]);
            scope.spawn(move || f(k * per, src, chunk));
        }
    });
}

/// The bf16 exact head of a contiguous interleaved call: the vectorised blocks, from `src`
/// or in place.
fn bf16_contiguous_head(src: Option<&[u16]>, head: &mut [u16], row: &[[f32; 2]], d: Direction) {
    match src {
        None => simd::rotate_pairs(head, row, d),
        Some(from) => simd::rotate_pairs_from(from, head, row, d),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn worker_count(elements: usize) -> usize {
    // Threads pay off from about a million elements.
    if elements < 1 << 20 {
        return 1;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(target_arch = "wasm32")]
fn worker_count(_elements: usize) -> usize {
    1
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
    match call.rotation.dtype {
        Dtype::Bf16 => bf16_in_place(call, bytemuck::cast_slice_mut(buf)),
        Dtype::F16 => exact::apply_f16_in_place(call, bytemuck::cast_slice_mut(buf)),
        Dtype::F32 => exact::apply_f32_in_place(call, bytemuck::cast_slice_mut(buf)),
    }
}

fn bf16_in_place(call: &RopeCall, buf: &mut [u16]) -> Result<()> {
    call.validate(buf.len())?;
    // The `hf` mode takes the general loop (the contiguous path is exact only).
    let hf = call.rotation.precision == crate::shape::Precision::Hf;
    if let (Some((shape, _)), false) = (call.contiguous(), hf) {
        let d = call.rotation.direction;
        let head = |src: Option<&[u16]>, head: &mut [u16], row: &[[f32; 2]]| {
            bf16_contiguous_head(src, head, row, d)
        };
        rotate_contiguous(call, shape, None, &mut buf[..shape.elements()], head);
        return Ok(());
    }
    rotate_view(call, buf, bf16_view_head(call));
    Ok(())
}

/// The bf16 head of the general loop: exact heads take the vectorised blocks (interleaved
/// pairs, or the two half-split runs); `hf` goes pair by pair through
/// [`crate::hf::rotate_pair_hf`].
fn bf16_view_head(call: &RopeCall) -> impl Fn(&mut [u16], &[[f32; 2]]) + Sync {
    let rot = call.rotation;
    let hf = rot.precision == crate::shape::Precision::Hf;
    let pairs = rot.pairs();
    let direction = rot.direction;
    move |head: &mut [u16], row: &[[f32; 2]]| match (hf, rot.pairing) {
        (false, Pairing::Interleaved) => simd::rotate_pairs(&mut head[..2 * pairs], row, direction),
        (false, Pairing::HalfSplit) => {
            let (x0s, x1s) = head[..2 * pairs].split_at_mut(pairs);
            simd::rotate_halves(x0s, x1s, row, direction);
        }
        (true, pairing) => {
            for (i, &[c, sn]) in row.iter().enumerate() {
                let (e0, e1) = pairing.elements(i, pairs);
                (head[e0], head[e1]) =
                    crate::hf::rotate_pair_hf(head[e0], head[e1], c, sn, direction);
            }
        }
    }
}

/// The general loop of a checked call, in place: `rotate_head(head, row)` on every head of
/// the view (the head's `head_dim` elements and its table row), threaded over ranges of the
/// view's outermost dim in memory (the largest stride among the dims of more than one
/// index). Since no element belongs to two heads ([`crate::spec::check`] refuses views that
/// overlap themselves), each index of that dim owns the `stride` elements from its first
/// head on, so the buffer splits into disjoint chunks, one per worker. Every dtype's CPU path
/// splits work here.
fn rotate_view<T: Send>(
    call: &RopeCall,
    buf: &mut [T],
    rotate_head: impl Fn(&mut [T], &[[f32; 2]]) + Sync,
) {
    let v = call.view;
    let pairs = call.rotation.pairs();
    let table = call.table.cos_sin();
    let dims = [v.batch(), v.seq(), v.heads()];
    // The heads whose index in dim `outer` lies in `lo..hi`, inside `chunk`, which starts at
    // element `base` of the buffer.
    let work = |chunk: &mut [T], base: usize, outer: usize, lo: usize, hi: usize| {
        let mut ranges = dims.map(|n| 0..n);
        ranges[outer] = lo..hi;
        for b in ranges[0].clone() {
            for s in ranges[1].clone() {
                let r = call.positions.row(b, s, v.seq());
                let row = &table[r * pairs..][..pairs];
                for h in ranges[2].clone() {
                    let at = v.head_start(b, s, h) - base;
                    rotate_head(&mut chunk[at..at + v.head_dim()], row);
                }
            }
        }
    };
    let outer = (0..3)
        .filter(|&i| dims[i] > 1)
        .max_by_key(|&i| v.strides[i])
        .unwrap_or(0);
    let n = dims[outer];
    let threads = worker_count(dims.iter().product::<usize>() * v.head_dim()).min(n);
    if threads <= 1 {
        work(buf, 0, outer, 0, n);
        return;
    }
    let stride = v.strides[outer];
    let per = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut rest = &mut buf[v.offset..];
        let mut lo = 0;
        while lo < n {
            let hi = (lo + per).min(n);
            let take = if hi == n {
                rest.len()
            } else {
                (hi - lo) * stride
            };
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            let work = &work;
            let base = v.offset + lo * stride;
            scope.spawn(move || work(chunk, base, outer, lo, hi));
            lo = hi;
        }
    });
}

/// [`apply_in_place`] on a copy of `x`: the buffer with the view rotated.
pub fn apply<E: Bits>(call: &RopeCall, x: &[E]) -> Result<Vec<E>> {
    call.rotation.dtype.check_bits::<E>()?;
    let hf = call.rotation.precision == crate::shape::Precision::Hf;
    // A whole contiguous tensor is read from `x` and written once: no copy first. bf16 does
    // so for exact interleaved calls (the vectorised blocks), f16 and f32 for every call
    // with contiguous pairs.
    let contiguous = match call.rotation.dtype {
        Dtype::Bf16 if !hf => call.contiguous(),
        Dtype::Bf16 => None,
        Dtype::F16 | Dtype::F32 => call.contiguous_pairs().map(|(shape, o, _)| (shape, o)),
    };
    if let Some((shape, _)) = contiguous {
        if shape.elements() == x.len() {
            call.validate(x.len())?;
            let mut out = vec![E::default(); x.len()];
            let (src, dst) = (bytemuck::cast_slice(x), &mut out);
            match call.rotation.dtype {
                Dtype::Bf16 => {
                    let d = call.rotation.direction;
                    let head = |src: Option<&[u16]>, head: &mut [u16], row: &[[f32; 2]]| {
                        bf16_contiguous_head(src, head, row, d)
                    };
                    rotate_contiguous(call, shape, Some(src), bytemuck::cast_slice_mut(dst), head);
                }
                Dtype::F16 => exact::f16_from(call, shape, src, bytemuck::cast_slice_mut(dst)),
                Dtype::F32 => exact::f32_from(
                    call,
                    shape,
                    bytemuck::cast_slice(x),
                    bytemuck::cast_slice_mut(dst),
                ),
            }
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
