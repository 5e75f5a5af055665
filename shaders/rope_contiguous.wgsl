// rope_contiguous.wgsl — the uniform block of the contiguous kernels (rope_scalar.wgsl,
// rope_vec4.wgsl, rope_vec4_half.wgsl): a [batch, seq, heads, head_dim] tensor (a contiguous
// [batch, heads, seq, head_dim] one is [batch * heads, seq, 1, head_dim]), pairs over the
// whole head, positions row_offset + s. Mirrored by RopeParams in src/gpu/plan.rs.

struct Params {
    // Number of u32 words (rotated pairs) this dispatch rotates.
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
    // Tokens this dispatch rotates: batch * seq, or a slice of them.
    tokens: u32,
    // 1 / pairs rounded to f32: division of indices below 2^24 by a multiply and one fix-up.
    inv_pairs: f32,
    // Words between the start of the bound tensor window and this dispatch's first token
    // (binding offsets are rounded down to the device's alignment; src/gpu/plan.rs).
    src_base: u32,
    // Table entries (one (cos, sin) pair each) before the bound table window.
    table_base: u32,
    // Sequence index of this dispatch's first token.
    seq_start: u32,
    // The vec4 kernels: units per token (a unit is what one invocation rotates: 4 words
    // interleaved, 4 + 4 elements half-split), units per workgroup row `chunk` =
    // min(units, WORKGROUP_SIZE), tokens per workgroup `group_tokens` = WORKGROUP_SIZE / chunk
    // (short tokens share a workgroup), and 1 / chunk rounded to f32.
    units: u32,
    chunk: u32,
    group_tokens: u32,
    inv_chunk: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

// The table entry (one (cos, sin) pair) of frequency i for token `token` of this dispatch,
// in the bound table window: token s of a sequence is at row row_offset + s. The one place
// the contiguous kernels map a token to its table row.
fn table_entry(token: u32, i: u32) -> u32 {
    let s = (token + params.seq_start) % params.seq;
    return (params.row_offset + s) * params.pairs + i - params.table_base;
}

// The vec4 kernels' grid: x covers the units of one token in workgroups of `chunk`, y and z
// the groups of `group_tokens` tokens. Returns (token, unit, 1 if in range else 0). lid / chunk
// is exact: (lid + 0.5) / chunk is at least 0.5 / chunk from an integer, far above the f32
// product's error for lid < 2^8.
fn unit_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec3<u32> {
    let lt = u32((f32(lid) + 0.5) * params.inv_chunk);
    let token = (wid.z * nwg.y + wid.y) * params.group_tokens + lt;
    let unit = wid.x * params.chunk + lid - lt * params.chunk;
    let ok = lt < params.group_tokens && token < params.tokens && unit < params.units;
    return vec3<u32>(token, unit, select(0u, 1u, ok));
}
