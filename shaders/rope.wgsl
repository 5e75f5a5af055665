// rope.wgsl — rotating one pair of packed bf16 (or f16), the arithmetic every RoPE kernel
// shares.
//
// Concatenated after bf16.wgsl and float.wgsl and before a kernel: rope_contiguous.wgsl with an entry file,
// rope_scalar.wgsl (any shape) or rope_vec4.wgsl (pairs per head a multiple of 4), for
// contiguous BSHD interleaved tensors; or rope_general.wgsl (any view, pairing, rotary_dim). One u32 word holds one rotated pair
// (x[2i] in the low half, x[2i+1] in the high half); the table holds one (cos, sin) pair of
// f32 bit patterns per (row, frequency). Tensor layout [batch, seq, heads, head_dim].
//
//     y0 = x0*cos - x1*sin        y1 = x0*sin + x1*cos        (inverse: sin -> -sin)

// The arithmetic: 1 correctly rounded (the contract); 0 plain f32 arithmetic (comparison
// only); 2 `hf`, Hugging Face transformers' eager bf16 steps (bit-parity mode, `dot2_hf`).
override EXACT: u32 = 1u;
override WORKGROUP_SIZE: u32 = 256u;
// The tensor's dtype: 0 bf16, 1 f16 (float.wgsl; two per word like bf16; `fast` and `hf` in
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
// `sin_sign` member: 0x80000000 to rotate backwards (flips the sign of sin), else 0.
// The exact operands of output `half` (0: y0, 1: y1) of word w: y0 = x0*cos + x1*(-sin),
// y1 = x0*sin + x1*cos, with sin already signed for the direction.
fn rotate_half_exact(w: u32, cs: vec2<u32>, half: u32) -> u32 {
    let x0 = w & 0xFFFFu;
    let x1 = w >> 16u;
    let sinb = cs.y ^ params.sin_sign;
    if (DTYPE == 1u) {
        if (half == 0u) {
            return dot2_exact_f16(x0, cs.x, x1, sinb ^ 0x80000000u);
        }
        return dot2_exact_f16(x0, sinb, x1, cs.x);
    }
    if (half == 0u) {
        return dot2_exact(x0, cs.x, x1, sinb ^ 0x80000000u);
    }
    return dot2_exact(x0, sinb, x1, cs.x);
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
    // Zero, subnormal or huge table values (rare: position 0, user tables) go the exact way.
    if (!(f32_fast_ok(cosb) && f32_fast_ok(sinb))) {
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
