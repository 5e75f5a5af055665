// rope.wgsl — rotating one pair of packed bf16 or f16 (or one f32 pair) in the arithmetic the
// EXACT override names: what every RoPE kernel shares.
//
// Follows the arithmetic files (u64, codec, exact, proof, fast, hf: `shaders::arithmetic`) and
// precedes a kernel: rope_contiguous.wgsl with an entry file, rope_scalar.wgsl (any shape) or
// rope_vec4.wgsl (pairs per head a multiple of 4), for contiguous interleaved tensors, or
// rope_vec4_half.wgsl (pairs a multiple of 4) for contiguous half-split ones; or
// rope_general.wgsl (any view, pairing, rotary_dim) with its entry file. One u32 word holds one
// rotated pair (x[2i] in the low half, x[2i+1] in the high half); the table holds one (cos, sin)
// pair of f32 bit patterns per (row, frequency).
//
//     y0 = x0*cos - x1*sin        y1 = x0*sin + x1*cos        (inverse: sin -> -sin)

// The arithmetic: 1 correctly rounded (the contract); 0 plain f32 arithmetic (comparison
// only); 2 `hf`, Hugging Face transformers' eager bf16 steps (bit-parity mode, `dot2_hf`).
override EXACT: u32 = 1u;
override WORKGROUP_SIZE: u32 = 256u;
// 1: the host has checked that every table value is zero or normal below 2^16 in magnitude
// (f32_fast_ok; `RopeTable::in_fast_range`), so the kernels skip testing the table operands
// of every word (rotate_word_fast: the scalar and the general bf16/f16 kernels) or unit
// (rotate4_fast); 0: they test them. The per-unit test alone costs the vec4 kernels 2-7 points
// of a copy, whether branching, selecting, on integers or on floats.
override TABLE_IN_RANGE: u32 = 0u;
// The tensor's dtype: 0 bf16, 1 f16 (two per word like bf16; `fast` and `hf` in
// rotate_word_f16_mode), 2 f32 (one per word: rope_general_f32.wgsl, not rotate_word).
override DTYPE: u32 = 0u;

// The one-dimensional index of an invocation of a one-dimensional launch laid out on a 2-D
// grid of workgroups (the host's dispatch_grid in src/gpu/plan.rs keeps each dimension under
// max_compute_workgroups_per_dimension): the entries of rope_scalar.wgsl and the general
// kernel's share it, and return when it passes their count.
fn grid_invocation(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
}

// The kernel file after this one declares `params` (its own uniform block) with a
// `sin_sign` member: 0x80000000 to rotate backwards (flips the sign of sin), else 0; and a
// `pairs` member (pairs per head, below 2^31).

// Zero, read from the uniforms at run time (proof.wgsl's `opaque`).
fn runtime_zero() -> u32 {
    return params.pairs >> 31u;
}

// The exact operands of output `half` (0: y0, 1: y1) of word w: y0 = x0*cos + x1*(-sin),
// y1 = x0*sin + x1*cos, with sin already signed for the direction.
fn rotate_half_exact(w: u32, cs: vec2<u32>, half: u32) -> u32 {
    let x0 = w & 0xFFFFu;
    let x1 = w >> 16u;
    let sinb = cs.y ^ params.sin_sign;
    let b = select(sinb, cs.x, half == 0u);
    let d = select(cs.x, sinb ^ 0x80000000u, half == 0u);
    // The error-free f32 stage first (dot2_split, dot2_split_f16); the integer path where it
    // cannot decide.
    if (DTYPE == 1u) {
        let r16 = dot2_split_f16(x0, b, x1, d);
        if (r16 != UNDECIDED) {
            return r16;
        }
        return dot2_exact_f16(x0, b, x1, d);
    }
    let r = dot2_split(x0, b, x1, d);
    if (r != UNDECIDED) {
        return r;
    }
    return dot2_exact(x0, b, x1, d);
}

// Rotates one word with the f32 unit where the rounding is proven, else leaves the halves
// that are not decided as UNDECIDED (0xFFFF in that half, with bit 16 + half of `pending`).
// Returns (word, pending) where pending bit 0/1 marks y0/y1 to redo with integers.
fn rotate_word_fast(w: u32, cs: vec2<u32>) -> vec2<u32> {
    let x0 = w & 0xFFFFu;
    let x1 = w >> 16u;
    let cosb = cs.x;
    let sinb = cs.y ^ params.sin_sign;
    let nsinb = sinb ^ 0x80000000u;
    if (DTYPE == 1u && EXACT != 1u) {
        return vec2<u32>(rotate_word_f16_mode(w, cosb, sinb, EXACT), 0u);
    }
    if (EXACT == 0u && DTYPE == 0u) {
        return vec2<u32>(dot2_plain(x0, cosb, x1, nsinb) | (dot2_plain(x0, sinb, x1, cosb) << 16u), 0u);
    }
    if (EXACT == 2u) {
        // x*cos + rotate_half(x)*sin with cos, sin rounded to bf16 first: y0 = x0*c + (-x1)*s,
        // y1 = x1*c + x0*s. Always decided: nothing pending.
        let cb = f32_to_bf16_rne(cosb);
        let sb = f32_to_bf16_rne(sinb);
        let y0 = dot2_hf(x0, cb, x1 ^ 0x8000u, sb);
        let y1 = dot2_hf(x1, cb, x0, sb);
        return vec2<u32>(y0 | (y1 << 16u), 0u);
    }
    // Subnormal or huge table values (user tables) go the exact way.
    if (TABLE_IN_RANGE == 0u && !(f32_fast_ok(cosb) && f32_fast_ok(sinb))) {
        return vec2<u32>(0u, 3u);
    }
    var y0: u32;
    var y1: u32;
    if (DTYPE == 1u) {
        y0 = dot2_fast_f16(x0, cosb, x1, nsinb);
        y1 = dot2_fast_f16(x0, sinb, x1, cosb);
    } else {
        y0 = dot2_fast(x0, cosb, x1, nsinb);
        y1 = dot2_fast(x0, sinb, x1, cosb);
    }
    let pending = select(0u, 1u, y0 == UNDECIDED) | select(0u, 2u, y1 == UNDECIDED);
    return vec2<u32>((y0 & 0xFFFFu) | (y1 << 16u), pending);
}

// Rotates one word, exactly.
fn rotate_word(w: u32, cs: vec2<u32>) -> u32 {
    let r = rotate_word_fast(w, cs);
    var out = r.x;
    if ((r.y & 1u) != 0u) {
        out = (out & 0xFFFF0000u) | rotate_half_exact(w, cs, 0u);
    }
    if ((r.y & 2u) != 0u) {
        out = (out & 0xFFFFu) | (rotate_half_exact(w, cs, 1u) << 16u);
    }
    return out;
}

// One f16 pair (x0 low, x1 high half of `w`) in the `fast` (0) or `hf` (2) arithmetic, with
// sinb already signed for the direction; the rotated pair packed the same way.
//   fast: plain f32 arithmetic (driver-dependent: FMA contraction, flushed subnormals), one
//         rounding to f16;
//   hf:   c = f16(cos), s = f16(sin); y0 = f16(f16(x0·c) + f16(-x1·s)), y1 = f16(f16(x1·c) + f16(x0·s)).
fn rotate_word_f16_mode(w: u32, cosb: u32, sinb: u32, mode: u32) -> u32 {
    let x0 = w & 0xFFFFu;
    let x1 = w >> 16u;
    if (mode == 0u) {
        let a = bitcast<f32>(f16_to_f32_bits(x0));
        let b = bitcast<f32>(f16_to_f32_bits(x1));
        let c = bitcast<f32>(cosb);
        let s = bitcast<f32>(sinb);
        let y0 = f32_to_f16_rne(bitcast<u32>(a * c - b * s));
        let y1 = f32_to_f16_rne(bitcast<u32>(a * s + b * c));
        return y0 | (y1 << 16u);
    }
    let c = f16_to_f32_bits(f32_to_f16_rne(cosb));
    let s = f16_to_f32_bits(f32_to_f16_rne(sinb));
    let y0 = hf_add_f16(hf_mul_f16(x0, c), hf_mul_f16(x1 ^ 0x8000u, s));
    let y1 = hf_add_f16(hf_mul_f16(x1, c), hf_mul_f16(x0, s));
    return y0 | (y1 << 16u);
}

// One f32 pair, sinb already signed for the direction: (x0·cos - x1·sin, x0·sin + x1·cos) in
// the arithmetic `mode` names: 1 exact (the contract, integer path always: ARCHITECTURE.md),
// 0 plain f32 (driver-dependent), 2 torch's f32 steps (`hf` on an f32 tensor: each product
// rounded to f32, then the sum; emulated on the bits with -0 partners so -0 products stay -0).
fn rotate_pair_f32(x0: u32, x1: u32, cosb: u32, sinb: u32, mode: u32) -> vec2<u32> {
    let nsinb = sinb ^ 0x80000000u;
    if (mode == 0u) {
        let a = bitcast<f32>(x0);
        let b = bitcast<f32>(x1);
        let c = bitcast<f32>(cosb);
        let s = bitcast<f32>(sinb);
        return vec2<u32>(bitcast<u32>(a * c - b * s), bitcast<u32>(a * s + b * c));
    }
    if (mode == 2u) {
        let one = 0x3F800000u;
        let p0 = dot2_exact_f32(x0, cosb, 0x80000000u, 0u);
        let q0 = dot2_exact_f32(x1, nsinb, 0x80000000u, 0u);
        let p1 = dot2_exact_f32(x1, cosb, 0x80000000u, 0u);
        let q1 = dot2_exact_f32(x0, sinb, 0x80000000u, 0u);
        return vec2<u32>(dot2_exact_f32(p0, one, q0, one), dot2_exact_f32(p1, one, q1, one));
    }
    return vec2<u32>(dot2_exact_f32(x0, cosb, x1, nsinb), dot2_exact_f32(x0, sinb, x1, cosb));
}

// ---------------------------------------------------------------------------------------------
// Four words at a time (the contiguous vec4 kernels). The proof of dot2_fast split so that each
// part runs once where it can: the table check once per four words, both outputs of a word
// from shared products. The undecided outputs (rare) are redone by the kernel (`vec4_fix`,
// `half_fix`) through rotate_half_exact (dot2_split, then dot2_exact), one at a time, from
// operands it loads again: across that branch only the rotated words, the pending bits and the
// place stay live, not the loaded words and table entries. Measured on an NVIDIA H100: the f32
// path alone runs at 98-100% of a copy
// (25 registers); with the fix-up present but never taken, ~94% (31); taken for the ~0.4% of
// units that need it, 86-91%. Above 32 registers an SM holds fewer warps: keep this path's
// live values few (a variant with 37 lost 6-9 points).

// Whether eight f32 table values are all normal and below 2^16 (dot2_fast's condition on its
// table operands, f32_fast_ok, which also allows zero). Zero values fail here (position 0's
// sin: one integer range test for all eight): their words take the exact path. Skipped when
// the host checked the table (TABLE_IN_RANGE).
fn table_fast_ok(a: vec4<u32>, b: vec4<u32>) -> bool {
    let k = vec4<u32>(0x00800000u);
    let m = vec4<u32>(0x7FFFFFFFu);
    let t = max((a & m) - k, (b & m) - k);
    return max(max(t.x, t.y), max(t.z, t.w)) < 0x47000000u;
}

// Both outputs of bf16 word w by the f32 unit, with table values (c, s) that passed
// table_fast_ok: (word, undecided: bit 0 y0, bit 1 y1). dot2_fast's test on each output; the
// range test of M needs no sign mask (a NaN, infinite or huge pattern fails it either way).
fn rotate_word_proven(w: u32, c: u32, s: u32) -> vec2<u32> {
    let x0 = bitcast<f32>(w << 16u);
    let x1 = bitcast<f32>(w & 0xFFFF0000u);
    let cf = bitcast<f32>(c);
    let sf = bitcast<f32>(s ^ params.sin_sign);
    let a = x0 * cf;
    let b = x1 * sf;
    let p = x0 * sf;
    let q = x1 * cf;
    let r0 = a - b;
    let r1 = p + q;
    let m0 = abs(a) + abs(b);
    let m1 = abs(p) + abs(q);
    let u0 = bitcast<u32>(r0);
    let u1 = bitcast<u32>(r1);
    let d0 = abs(r0 - bitcast<f32>((u0 & 0xFFFF0000u) | 0x8000u));
    let d1 = abs(r1 - bitcast<f32>((u1 & 0xFFFF0000u) | 0x8000u));
    let range = max(bitcast<u32>(m0) - FAST_MIN, bitcast<u32>(m1) - FAST_MIN);
    let word = ((u0 + 0x8000u) >> 16u) | ((u1 + 0x8000u) & 0xFFFF0000u);
    let undecided = select(0u, 3u, range >= FAST_SPAN) | select(0u, 1u, !(d0 > m0 * PROOF_MARGIN))
        | select(0u, 2u, !(d1 > m1 * PROOF_MARGIN));
    return vec2<u32>(word, undecided);
}

// Four words rotated where the f32 unit decides (`y`), with `pending` bit 2j + half set for
// each output of word j left to the integer path.
struct Rotated4 {
    y: vec4<u32>,
    pending: u32,
}

// Words x with table entries (cos, sin) c01 = (x.x's, x.y's), c23 = (x.z's, x.w's).
fn rotate4_fast(x: vec4<u32>, c01: vec4<u32>, c23: vec4<u32>) -> Rotated4 {
    if (EXACT == 1u && DTYPE == 0u) {
        if (TABLE_IN_RANGE == 0u && !table_fast_ok(c01, c23)) {
            return Rotated4(x, 0xFFu);
        }
        let r0 = rotate_word_proven(x.x, c01.x, c01.y);
        let r1 = rotate_word_proven(x.y, c01.z, c01.w);
        let r2 = rotate_word_proven(x.z, c23.x, c23.y);
        let r3 = rotate_word_proven(x.w, c23.z, c23.w);
        return Rotated4(vec4<u32>(r0.x, r1.x, r2.x, r3.x), r0.y | (r1.y << 2u) | (r2.y << 4u) | (r3.y << 6u));
    }
    let r0 = rotate_word_fast(x.x, c01.xy);
    let r1 = rotate_word_fast(x.y, c01.zw);
    let r2 = rotate_word_fast(x.z, c23.xy);
    let r3 = rotate_word_fast(x.w, c23.zw);
    return Rotated4(vec4<u32>(r0.x, r1.x, r2.x, r3.x), r0.y | (r1.y << 2u) | (r2.y << 4u) | (r3.y << 6u));
}

// Word j of y with output `half` (0: low, 1: high) replaced by the bf16/f16 bits e: the
// vec4 kernels' fix-up loops insert each redone output with selects (a dynamically indexed
// private array would live in local memory on NVIDIA).
fn put_output(y: vec4<u32>, j: u32, half: u32, e: u32) -> vec4<u32> {
    let keep = select(0x0000FFFFu, 0xFFFF0000u, half == 0u);
    let put = (y & vec4<u32>(keep)) | vec4<u32>(e << (16u * half));
    return select(y, put, vec4<u32>(j) == vec4<u32>(0u, 1u, 2u, 3u));
}
