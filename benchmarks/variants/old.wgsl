// Variant: rope_vec4.wgsl as it was before s3-perf (commit 47bd9f1): the 'before' kernel.
// rope_vec4.wgsl — four consecutive words (pairs) per invocation with 16-byte loads and
// stores: the fast layout when pairs per head is a multiple of 4 (every real head_dim).

@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

// The grid: x covers the vec4s of one token (workgroups of consecutive words), y and z the
// tokens, so the only integer division left is the token's position in the sequence
// (table_entry, rope_contiguous.wgsl).
@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let token = wid.z * nwg.y + wid.y;
    let w_in_token = (wid.x * WORKGROUP_SIZE + lid) * 4u;
    if (token >= params.tokens || w_in_token >= params.token_words) {
        return;
    }
    // i = w_in_token % pairs: the f32 quotient of integers below 2^24 is off by at most one.
    var head = u32(f32(w_in_token) * params.inv_pairs);
    var i = i32(w_in_token) - i32(head * params.pairs);
    if (i < 0) {
        i = i + i32(params.pairs);
    } else if (i >= i32(params.pairs)) {
        i = i - i32(params.pairs);
    }
    let v = (params.src_base + token * params.token_words + w_in_token) >> 2u;
    // The four words share a table row: `pairs` is a multiple of 4 (table_base is even).
    let t = table_entry(token, u32(i)) >> 1u;
    let cs01 = table[t];
    let cs23 = table[t + 1u];
    let x = src[v];
    let cs = array<vec2<u32>, 4>(cs01.xy, cs01.zw, cs23.xy, cs23.zw);
    let r0 = rotate_word_fast(x.x, cs01.xy);
    let r1 = rotate_word_fast(x.y, cs01.zw);
    let r2 = rotate_word_fast(x.z, cs23.xy);
    let r3 = rotate_word_fast(x.w, cs23.zw);
    var y = vec4<u32>(r0.x, r1.x, r2.x, r3.x);
    // Rare: outputs the f32 unit could not decide, redone with integers at one call site
    // (eight inlined copies of the exact path would cost registers on every invocation).
    var pending = r0.y | (r1.y << 2u) | (r2.y << 4u) | (r3.y << 6u);
    while (pending != 0u) {
        let k = firstTrailingBit(pending);
        pending = pending & (pending - 1u);
        let j = k >> 1u;
        let half = k & 1u;
        let e = rotate_half_exact(x[j], cs[j], half);
        let keep = select(0x0000FFFFu, 0xFFFF0000u, half == 0u);
        y[j] = (y[j] & keep) | (e << (16u * half));
    }
    dst[v] = y;
}
