// rope.wgsl — interleaved rotary position embedding on packed bf16.
//
// Concatenated after bf16.wgsl and before one entry file, rope_scalar.wgsl (any shape) or
// rope_vec4.wgsl (pairs per head a multiple of 4), which declare the tensor bindings with
// their own element types (src/shaders.rs). One u32 word holds one rotated pair
// (x[2i] in the low half, x[2i+1] in the high half); the table holds one (cos, sin) pair of
// f32 bit patterns per (row, frequency). Tensor layout [batch, seq, heads, head_dim].
//
//     y0 = x0*cos - x1*sin        y1 = x0*sin + x1*cos        (inverse: sin -> -sin)

// 1: correctly rounded (the contract); 0: plain f32 arithmetic (comparison only).
override EXACT: u32 = 1u;
override WORKGROUP_SIZE: u32 = 256u;

struct Params {
    // Number of u32 words (rotated pairs) in the tensor.
    words: u32,
    // Pairs per head: head_dim / 2.
    pairs: u32,
    heads: u32,
    seq: u32,
    // Table row of sequence index 0.
    row_offset: u32,
    // 0x80000000 to rotate backwards (flips the sign of sin), else 0.
    sin_sign: u32,
    // pairs * heads: words per token.
    token_words: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
fn rotate_word(w: u32, cs: vec2<u32>) -> u32 {
    let x0 = w & 0xFFFFu;
    let x1 = w >> 16u;
    let cosb = cs.x;
    let sinb = cs.y ^ params.sin_sign;
    let nsinb = sinb ^ 0x80000000u;
    if (EXACT == 0u) {
        return dot2_plain(x0, cosb, x1, nsinb) | (dot2_plain(x0, sinb, x1, cosb) << 16u);
    }
    var y0 = UNDECIDED;
    var y1 = UNDECIDED;
    // Subnormal operands may be flushed by the driver: decide those on the bits alone.
    let tiny = bf16_is_subnormal(x0) || bf16_is_subnormal(x1)
        || f32_is_subnormal(cosb & 0x7FFFFFFFu) || f32_is_subnormal(sinb & 0x7FFFFFFFu);
    if (!tiny) {
        y0 = dot2_fast(x0, cosb, x1, nsinb);
        y1 = dot2_fast(x0, sinb, x1, cosb);
    }
    if (y0 == UNDECIDED) {
        y0 = dot2_exact(x0, cosb, x1, nsinb);
    }
    if (y1 == UNDECIDED) {
        y1 = dot2_exact(x0, sinb, x1, cosb);
    }
    return y0 | (y1 << 16u);
}

