// rope_vec4_half.wgsl — contiguous tensors with half-split pairs (x[i], x[i + pairs]),
// rotate_half: per invocation 8 consecutive elements of the first half of a head and the
// matching 8 of the second half (two 16-byte loads and stores) with their 8 table entries
// (four 16-byte loads). Needs pairs per head a multiple of 8 (every real head_dim).

@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

// Where unit `unit` of token `token` lies: (first half's vec4 index, table vec4 index of its
// first entry); the second half's vec4 is pairs / 8 later.
fn half_place(token: u32, unit: u32) -> vec2<u32> {
    // Element column e8 (a multiple of 8) of head `head`: 8 * unit = head * pairs + e8.
    let e = 8u * unit;
    var head = u32(f32(e) * params.inv_pairs);
    var e8 = i32(e) - i32(head * params.pairs);
    if (e8 < 0) {
        e8 = e8 + i32(params.pairs);
        head = head - 1u;
    } else if (e8 >= i32(params.pairs)) {
        e8 = e8 - i32(params.pairs);
        head = head + 1u;
    }
    // A head is `pairs` words: the first half's words e8/2.., the second half's pairs/2 later.
    let va = (params.src_base + token * params.token_words + head * params.pairs + u32(e8) / 2u) >> 2u;
    return vec2<u32>(va, table_entry(token, u32(e8)) >> 1u);
}

// Word m of `lo` pairs element 2m of each half (column e8 + 2m), of `hi` element 2m + 1; their
// table entries are (t0.xy, t1.xy, t2.xy, t3.xy) and (t0.zw, ...).
fn half_lo(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return (a & vec4<u32>(0xFFFFu)) | (b << vec4<u32>(16u));
}

fn half_hi(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return (a >> vec4<u32>(16u)) | (b & vec4<u32>(0xFFFF0000u));
}

// The outputs of `lo` (hi = false) or `hi` words that rotate4_fast left undecided (`pending`
// bit 2j + half), redone with integers one at a time from the elements and table entry loaded
// again (see rope.wgsl: the loaded operands need not stay live).
fn half_fix(p: vec2<u32>, y_in: vec4<u32>, pending_in: u32, hi: bool) -> vec4<u32> {
    var y = y_in;
    var pending = pending_in;
    while (pending != 0u) {
        let k = firstTrailingBit(pending);
        pending = pending & (pending - 1u);
        let j = k >> 1u;
        let a = src[p.x][j];
        let b = src[p.x + (params.pairs >> 3u)][j];
        let t = table[p.y + j];
        let w = select((a & 0xFFFFu) | (b << 16u), (a >> 16u) | (b & 0xFFFF0000u), hi);
        y = put_output(y, j, k & 1u, rotate_half_exact(w, select(t.xy, t.zw, hi), k & 1u));
    }
    return y;
}

fn half_store(va: u32, ylo: vec4<u32>, yhi: vec4<u32>) {
    dst[va] = (ylo & vec4<u32>(0xFFFFu)) | (yhi << vec4<u32>(16u));
    dst[va + (params.pairs >> 3u)] = (ylo >> vec4<u32>(16u)) | (yhi & vec4<u32>(0xFFFF0000u));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_vec4_half(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let u = unit_of(wid, nwg, lid);
    if (u.z == 0u) {
        return;
    }
    let p = half_place(u.x, u.y);
    let t0 = table[p.y];
    let t1 = table[p.y + 1u];
    let t2 = table[p.y + 2u];
    let t3 = table[p.y + 3u];
    let a = src[p.x];
    let b = src[p.x + (params.pairs >> 3u)];
    let lo = rotate4_fast(half_lo(a, b), vec4<u32>(t0.xy, t1.xy), vec4<u32>(t2.xy, t3.xy));
    let hi = rotate4_fast(half_hi(a, b), vec4<u32>(t0.zw, t1.zw), vec4<u32>(t2.zw, t3.zw));
    var ylo = lo.y;
    var yhi = hi.y;
    if ((lo.pending | hi.pending) != 0u) {
        ylo = half_fix(p, lo.y, lo.pending, false);
        yhi = half_fix(p, hi.y, hi.pending, true);
    }
    half_store(p.x, ylo, yhi);
}
