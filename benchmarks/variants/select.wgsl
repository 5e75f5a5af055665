// Variant: rope_vec4.wgsl with the fallback loop's dynamic indexing (x[j], cs[j], y[j]: a
// private array in local memory on NVIDIA) replaced by select chains. Exact.
@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

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
    var head = u32(f32(w_in_token) * params.inv_pairs);
    var i = i32(w_in_token) - i32(head * params.pairs);
    if (i < 0) {
        i = i + i32(params.pairs);
    } else if (i >= i32(params.pairs)) {
        i = i - i32(params.pairs);
    }
    let v = (params.src_base + token * params.token_words + w_in_token) >> 2u;
    let t = table_entry(token, u32(i)) >> 1u;
    let cs01 = table[t];
    let cs23 = table[t + 1u];
    let x = src[v];
    let r0 = rotate_word_fast(x.x, cs01.xy);
    let r1 = rotate_word_fast(x.y, cs01.zw);
    let r2 = rotate_word_fast(x.z, cs23.xy);
    let r3 = rotate_word_fast(x.w, cs23.zw);
    var y = vec4<u32>(r0.x, r1.x, r2.x, r3.x);
    var pending = r0.y | (r1.y << 2u) | (r2.y << 4u) | (r3.y << 6u);
    while (pending != 0u) {
        let k = firstTrailingBit(pending);
        pending = pending & (pending - 1u);
        let j = k >> 1u;
        let half = k & 1u;
        let xw = select(select(x.x, x.y, j == 1u), select(x.z, x.w, j == 3u), j >= 2u);
        let c = select(select(cs01.xy, cs01.zw, j == 1u), select(cs23.xy, cs23.zw, j == 3u), j >= 2u);
        let e = rotate_half_exact(xw, c, half);
        let keep = select(0x0000FFFFu, 0xFFFF0000u, half == 0u);
        let put = (y & vec4<u32>(keep)) | vec4<u32>(e << (16u * half));
        y = select(y, put, vec4<u32>(j) == vec4<u32>(0u, 1u, 2u, 3u));
    }
    dst[v] = y;
}
