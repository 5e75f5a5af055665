// rope_vec4.wgsl — four consecutive words (pairs) per invocation with 16-byte loads and
// stores: the fast layout when pairs per head is a multiple of 4 (every real head_dim).

@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

// Where unit `unit` (four words) of token `token` lies: (vec4 index, table vec4 index).
fn vec4_place(token: u32, unit: u32) -> vec2<u32> {
    let w_in_token = 4u * unit;
    // i = w_in_token % pairs: the f32 quotient of integers below 2^24 is off by at most one.
    let head = u32(f32(w_in_token) * params.inv_pairs);
    var i = i32(w_in_token) - i32(head * params.pairs);
    if (i < 0) {
        i = i + i32(params.pairs);
    } else if (i >= i32(params.pairs)) {
        i = i - i32(params.pairs);
    }
    let v = (params.src_base + token * params.token_words + w_in_token) >> 2u;
    // The four words share a table row: `pairs` is a multiple of 4 (table_base is even).
    return vec2<u32>(v, table_entry(token, u32(i)) >> 1u);
}

// The outputs of the unit at `p` that rotate4_fast left undecided (`pending` bit 2j + half for
// output half of word j), redone with integers one at a time, each from its word and table
// entry loaded again (see rope.wgsl: the loaded operands need not stay live).
fn vec4_fix(p: vec2<u32>, y_in: vec4<u32>, pending_in: u32) -> vec4<u32> {
    var y = y_in;
    var pending = pending_in;
    while (pending != 0u) {
        let k = firstTrailingBit(pending);
        pending = pending & (pending - 1u);
        let j = k >> 1u;
        let t = table[p.y + (j >> 1u)];
        let cs = select(t.xy, t.zw, (j & 1u) == 1u);
        y = put_output(y, j, k & 1u, rotate_half_exact(src[p.x][j], cs, k & 1u));
    }
    return y;
}

// The grid (unit_of, rope_contiguous.wgsl): units of 4 words, whole tokens per workgroup row,
// so the only integer division left is the token's position in the sequence (table_entry).
@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let u = unit_of(wid, nwg, lid);
    if (u.z == 0u) {
        return;
    }
    let p = vec4_place(u.x, u.y);
    let r = rotate4_fast(src[p.x], table[p.y], table[p.y + 1u]);
    var y = r.y;
    if (r.pending != 0u) {
        y = vec4_fix(p, r.y, r.pending);
    }
    dst[p.x] = y;
}
