// rope_vec4_half.wgsl — contiguous tensors with half-split pairs (x[i], x[i + pairs]),
// rotate_half: per invocation 4 consecutive elements of the first half of a head and the
// matching 4 of the second half (two 8-byte loads and stores) with their 4 table entries (two
// 16-byte loads): the same 4 words and 2 table loads per invocation as rope_vec4.wgsl, so the
// same registers (an earlier form with 8 + 8 elements held twice the operands: 39 registers
// on the H100, above the 32 that let every thread slot of an SM run). The host keeps pairs per
// head a multiple of 4 (the unit's 4 columns stay in one half; both halves' vec2 and the 4
// table entries' two vec4 stay aligned).

@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec2<u32>>;

// Where unit `unit` of token `token` lies: (first half's vec2 index, table vec4 index of its
// first entry); the second half's vec2 is pairs / 4 later.
fn half_place(token: u32, unit: u32) -> vec2<u32> {
    // Element column e4 (a multiple of 4) of head `head`: 4 * unit = head * pairs + e4.
    let e = 4u * unit;
    var head = u32(f32(e) * params.inv_pairs);
    var e4 = i32(e) - i32(head * params.pairs);
    if (e4 < 0) {
        e4 = e4 + i32(params.pairs);
        head = head - 1u;
    } else if (e4 >= i32(params.pairs)) {
        e4 = e4 - i32(params.pairs);
        head = head + 1u;
    }
    // A head is `pairs` words: the first half's words e4/2.., the second half's pairs/2 later.
    let va = (params.src_base + token * params.token_words + head * params.pairs + u32(e4) / 2u) >> 1u;
    return vec2<u32>(va, table_entry(token, u32(e4)) >> 1u);
}

// The four rotated words of a unit from its elements a (first half, columns e4..e4 + 3) and b
// (second half): words 0 and 1 pair columns e4 and e4 + 2 (the low halves of a and b), words 2
// and 3 columns e4 + 1 and e4 + 3 (the high halves); their table entries are t0.xy, t1.xy,
// t0.zw, t1.zw.
fn half_words(a: vec2<u32>, b: vec2<u32>) -> vec4<u32> {
    let lo = (a & vec2<u32>(0xFFFFu)) | (b << vec2<u32>(16u));
    let hi = (a >> vec2<u32>(16u)) | (b & vec2<u32>(0xFFFF0000u));
    return vec4<u32>(lo, hi);
}

// The outputs that rotate4_fast left undecided (`pending` bit 2j + half for word j of
// half_words), redone one at a time from the elements and table entry loaded again (see
// rope.wgsl: the loaded operands need not stay live).
fn half_fix(p: vec2<u32>, y_in: vec4<u32>, pending_in: u32) -> vec4<u32> {
    var y = y_in;
    var pending = pending_in;
    while (pending != 0u) {
        let k = firstTrailingBit(pending);
        pending = pending & (pending - 1u);
        let j = k >> 1u;
        let m = j & 1u;
        let hi = j >= 2u;
        let a = src[p.x][m];
        let b = src[p.x + (params.pairs >> 2u)][m];
        let t = table[p.y + m];
        let w = select((a & 0xFFFFu) | (b << 16u), (a >> 16u) | (b & 0xFFFF0000u), hi);
        y = put_output(y, j, k & 1u, rotate_half_exact(w, select(t.xy, t.zw, hi), k & 1u));
    }
    return y;
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
    let r = rotate4_fast(
        half_words(src[p.x], src[p.x + (params.pairs >> 2u)]),
        vec4<u32>(t0.xy, t1.xy),
        vec4<u32>(t0.zw, t1.zw),
    );
    var y = r.y;
    if (r.pending != 0u) {
        y = half_fix(p, r.y, r.pending);
    }
    // Back to the halves: element 2m of a half is word m's output, element 2m + 1 word m + 2's.
    dst[p.x] = (y.xy & vec2<u32>(0xFFFFu)) | (y.zw << vec2<u32>(16u));
    dst[p.x + (params.pairs >> 2u)] = (y.xy >> vec2<u32>(16u)) | (y.zw & vec2<u32>(0xFFFF0000u));
}
