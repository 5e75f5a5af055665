//! The walk over a call: which heads of the buffer a [`RopeCall`] rotates and with which table
//! row, split over the cores, and the per-pair arithmetic each head goes to. Exact heads (the
//! CPU has one arithmetic, so also for `fast`) take the vectorised blocks of [`super::simd`],
//! whose undecided pairs fall back to the scalar reference of [`super::exact`]; `hf` heads go
//! pair by pair through [`super::hf`].
//!
//! Two walks split the work over the cores: [`rotate_contiguous`] cuts a whole contiguous
//! tensor into runs of whole tokens (in place, or read from the input and written once),
//! [`rotate_view`] covers any view in place, cut along the view's outermost dim in memory.

use crate::dtype::{Bits, Dtype};
use crate::error::Result;
use crate::shape::{Direction, Precision, RopeShape};
use crate::spec::{Pairing, RopeCall};

use super::hf;
use super::simd::{self, FastFloat};

/// The shape of the whole contiguous tensor that [`rotate_from`] reads out of place for
/// `call`, when the call takes that path: bf16 for exact interleaved calls (the vectorised
/// blocks), f16 and f32 for every call with contiguous pairs.
pub(super) fn whole_tensor(call: &RopeCall) -> Option<RopeShape> {
    let hf = call.rotation.precision == Precision::Hf;
    match call.rotation.dtype {
        Dtype::Bf16 if !hf => call.contiguous().map(|(shape, _)| shape),
        Dtype::Bf16 => None,
        Dtype::F16 | Dtype::F32 => call.contiguous_pairs().map(|(shape, _, _)| shape),
    }
}

/// Rotates the view of `call` inside `buf`, in place; `buf` holds the raw bits of the call's
/// dtype (checked by the caller).
pub(super) fn rotate_in_place<E: Bits>(call: &RopeCall, buf: &mut [E]) -> Result<()> {
    match call.rotation.dtype {
        Dtype::Bf16 => bf16_in_place(call, bytemuck::cast_slice_mut(buf)),
        Dtype::F16 => f16_in_place(call, bytemuck::cast_slice_mut(buf)),
        Dtype::F32 => f32_in_place(call, bytemuck::cast_slice_mut(buf)),
    }
}

/// The whole contiguous tensor `src` rotated into `dst`: a validated call whose
/// [`whole_tensor`] is `shape`, `src` and `dst` exactly the tensor, the raw bits of the
/// call's dtype.
pub(super) fn rotate_from<E: Bits>(call: &RopeCall, shape: RopeShape, src: &[E], dst: &mut [E]) {
    match call.rotation.dtype {
        Dtype::Bf16 => {
            let d = call.rotation.direction;
            let head = |src: Option<&[u16]>, head: &mut [u16], row: &[[f32; 2]]| {
                bf16_contiguous_head(src, head, row, d)
            };
            let (src, dst) = (bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst));
            rotate_contiguous(call, shape, Some(src), dst, head);
        }
        Dtype::F16 => f16_from(
            call,
            shape,
            bytemuck::cast_slice(src),
            bytemuck::cast_slice_mut(dst),
        ),
        Dtype::F32 => f32_from(
            call,
            shape,
            bytemuck::cast_slice(src),
            bytemuck::cast_slice_mut(dst),
        ),
    }
}

/// Rotates the view of `call` inside a buffer of bf16 bit patterns, in place (exact, or
/// transformers' bf16 steps for `hf`).
fn bf16_in_place(call: &RopeCall, buf: &mut [u16]) -> Result<()> {
    if call.rotation.precision == Precision::Hf {
        return in_place(call, buf, hf::rotate_pair_hf);
    }
    call.validate(buf.len())?;
    let d = call.rotation.direction;
    if let Some((shape, _)) = call.contiguous() {
        let head = |src: Option<&[u16]>, head: &mut [u16], row: &[[f32; 2]]| {
            bf16_contiguous_head(src, head, row, d)
        };
        rotate_contiguous(call, shape, None, &mut buf[..shape.elements()], head);
        return Ok(());
    }
    let pairing = call.rotation.pairing;
    rotate_view(call, buf, |head, row| bf16_view_head(head, row, pairing, d));
    Ok(())
}

/// The bf16 exact head of a contiguous interleaved call: the vectorised blocks, from `src`
/// or in place.
fn bf16_contiguous_head(src: Option<&[u16]>, head: &mut [u16], row: &[[f32; 2]], d: Direction) {
    match src {
        None => simd::rotate_pairs(head, row, d),
        Some(from) => simd::rotate_pairs_from(from, head, row, d),
    }
}

/// The bf16 exact head of the general loop, in place: the vectorised blocks on its first
/// `row.len()` pairs, interleaved or the two half-split runs.
fn bf16_view_head(head: &mut [u16], row: &[[f32; 2]], pairing: Pairing, d: Direction) {
    let pairs = row.len();
    match pairing {
        Pairing::Interleaved => simd::rotate_pairs(&mut head[..2 * pairs], row, d),
        Pairing::HalfSplit => {
            let (x0s, x1s) = head[..2 * pairs].split_at_mut(pairs);
            simd::rotate_halves(x0s, x1s, row, d);
        }
    }
}

/// Rotates the view of `call` inside a buffer of f16 bit patterns, in place (exact, or
/// transformers' f16 steps for `hf`).
fn f16_in_place(call: &RopeCall, buf: &mut [u16]) -> Result<()> {
    if call.rotation.precision == Precision::Hf {
        return in_place(call, buf, hf::rotate_pair_hf_f16);
    }
    in_place_exact(call, buf)
}

/// Rotates the view of `call` inside a buffer of f32 bit patterns, in place (exact, or
/// torch's f32 steps for `hf`).
fn f32_in_place(call: &RopeCall, buf: &mut [u32]) -> Result<()> {
    if call.rotation.precision == Precision::Hf {
        return in_place(call, buf, hf::rotate_pair_hf_f32);
    }
    in_place_exact(call, buf)
}

/// A whole contiguous f16 tensor rotated from `src` into `dst` (a validated call whose
/// [`RopeCall::contiguous_pairs`] is `shape`): exact, or `hf`.
fn f16_from(call: &RopeCall, shape: RopeShape, src: &[u16], dst: &mut [u16]) {
    if call.rotation.precision == Precision::Hf {
        return from(call, shape, src, dst, hf::rotate_pair_hf_f16);
    }
    from_exact(call, shape, src, dst)
}

/// [`f16_from`] for f32 tensors.
fn f32_from(call: &RopeCall, shape: RopeShape, src: &[u32], dst: &mut [u32]) {
    if call.rotation.precision == Precision::Hf {
        return from(call, shape, src, dst, hf::rotate_pair_hf_f32);
    }
    from_exact(call, shape, src, dst)
}

/// Rotates the first `row.len()` pairs of one head in place with `pair`, in the call's
/// pairing: interleaved `(2i, 2i + 1)` or half-split `(i, i + pairs)`.
#[inline(always)]
fn head_in_place<T: Copy>(
    head: &mut [T],
    row: &[[f32; 2]],
    pairing: Pairing,
    direction: Direction,
    pair: &impl Fn(T, T, f32, f32, Direction) -> (T, T),
) {
    let pairs = row.len();
    match pairing {
        Pairing::Interleaved => {
            for (xy, &[c, s]) in head[..2 * pairs].chunks_exact_mut(2).zip(row) {
                (xy[0], xy[1]) = pair(xy[0], xy[1], c, s, direction);
            }
        }
        Pairing::HalfSplit => {
            let (x0s, x1s) = head[..2 * pairs].split_at_mut(pairs);
            for ((x0, x1), &[c, s]) in x0s.iter_mut().zip(x1s.iter_mut()).zip(row) {
                (*x0, *x1) = pair(*x0, *x1, c, s, direction);
            }
        }
    }
}

/// [`head_in_place`] out of place: the head `src` rotated into `dst` (whole heads: every
/// element of `dst` is written).
#[inline(always)]
fn head_from<T: Copy>(
    src: &[T],
    dst: &mut [T],
    row: &[[f32; 2]],
    pairing: Pairing,
    direction: Direction,
    pair: &impl Fn(T, T, f32, f32, Direction) -> (T, T),
) {
    let pairs = row.len();
    match pairing {
        Pairing::Interleaved => {
            let (src, dst) = (
                src[..2 * pairs].chunks_exact(2),
                dst[..2 * pairs].chunks_exact_mut(2),
            );
            for ((xy, out), &[c, s]) in src.zip(dst).zip(row) {
                (out[0], out[1]) = pair(xy[0], xy[1], c, s, direction);
            }
        }
        Pairing::HalfSplit => {
            let (x0s, x1s) = src[..2 * pairs].split_at(pairs);
            let (y0s, y1s) = dst[..2 * pairs].split_at_mut(pairs);
            let outs = y0s.iter_mut().zip(y1s.iter_mut());
            for (((x0, x1), (y0, y1)), &[c, s]) in x0s.iter().zip(x1s).zip(outs).zip(row) {
                (*y0, *y1) = pair(*x0, *x1, c, s, direction);
            }
        }
    }
}

/// Rotates the view of `call` inside `buf` with `pair` on each rotated pair, on every core
/// ([`rotate_view`]'s split over the view's outermost dim); the other dims and the
/// rest of the buffer are left as they are.
fn in_place<T: Copy + Send + Sync>(
    call: &RopeCall,
    buf: &mut [T],
    pair: impl Fn(T, T, f32, f32, Direction) -> (T, T) + Sync,
) -> Result<()> {
    call.validate(buf.len())?;
    let rot = call.rotation;
    rotate_view(call, buf, |head, row| {
        head_in_place(head, row, rot.pairing, rot.direction, &pair)
    });
    Ok(())
}

/// The contiguous tensor `src` (a checked call with contiguous pairs of `shape`, `src` and
/// `dst` exactly the tensor) rotated into `dst` with `pair`, on every core
/// ([`rotate_contiguous`]'s split into runs of whole tokens).
fn from<T: Copy + Send + Sync>(
    call: &RopeCall,
    shape: RopeShape,
    src: &[T],
    dst: &mut [T],
    pair: impl Fn(T, T, f32, f32, Direction) -> (T, T) + Sync,
) {
    let rot = call.rotation;
    rotate_contiguous(call, shape, Some(src), dst, |from, head, row| match from {
        Some(from) => head_from(from, head, row, rot.pairing, rot.direction, &pair),
        None => head_in_place(head, row, rot.pairing, rot.direction, &pair),
    });
}

/// [`in_place`] in the exact mode: each head through the vectorised blocks
/// ([`simd::rotate_float_head`]: proven fast lanes, the rest by the exact pair).
fn in_place_exact<T: FastFloat + Send + Sync>(call: &RopeCall, buf: &mut [T]) -> Result<()> {
    call.validate(buf.len())?;
    let rot = call.rotation;
    let half_split = rot.pairing == Pairing::HalfSplit;
    rotate_view(call, buf, |head, row| {
        simd::rotate_float_head(None, head, row, half_split, rot.direction)
    });
    Ok(())
}

/// [`from`] in the exact mode, through the vectorised blocks.
fn from_exact<T: FastFloat + Send + Sync>(
    call: &RopeCall,
    shape: RopeShape,
    src: &[T],
    dst: &mut [T],
) {
    let rot = call.rotation;
    let half_split = rot.pairing == Pairing::HalfSplit;
    rotate_contiguous(call, shape, Some(src), dst, |from, head, row| {
        simd::rotate_float_head(from, head, row, half_split, rot.direction)
    });
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
