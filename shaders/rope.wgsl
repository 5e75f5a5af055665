// rope.wgsl — interleaved rotary position embedding on packed bf16.
//
// Concatenated after bf16.wgsl (src/shaders.rs). One u32 word holds one rotated pair
// (x[2i] in the low half, x[2i+1] in the high half); the table holds one (cos, sin) pair of
// f32 bit patterns per (row, frequency). Tensor layout [batch, seq, heads, head_dim].
//
//     y0 = x0*cos - x1*sin        y1 = x0*sin + x1*cos        (inverse: sin -> -sin)

// 1: correctly rounded (the contract); 0: plain f32 arithmetic (comparison only).
override EXACT: u32 = 1u;
override WORKGROUP_SIZE: u32 = 256u;
// Words handled by one invocation, consecutive in memory (1 or 4; 4 needs pairs % 4 == 0).
override WORDS_PER_THREAD: u32 = 1u;

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
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

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

// The table index of word w.
fn table_index(w: u32) -> u32 {
    let i = w % params.pairs;
    let token = w / params.pairs / params.heads;
    let s = token % params.seq;
    return (params.row_offset + s) * params.pairs + i;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // A 2-D grid keeps every dimension under max_compute_workgroups_per_dimension.
    let invocation = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    let first = invocation * WORDS_PER_THREAD;
    if (first >= params.words) {
        return;
    }
    // With WORDS_PER_THREAD dividing `pairs`, the words of one invocation share a row.
    let t = table_index(first);
    for (var k = 0u; k < WORDS_PER_THREAD; k = k + 1u) {
        dst[first + k] = rotate_word(src[first + k], table[t + k]);
    }
}
