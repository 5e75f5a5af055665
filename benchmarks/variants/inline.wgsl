// Variant: the s3-perf vec4 kernel of the second device call (rotate4_fast with the table
// check once per vec4 and shared products, then the integer fallback inline in the same
// kernel through select chains); the built-in kernel moved that fallback to a second pass.
@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

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
    let token = u.x;
    let w_in_token = 4u * u.y;
    let head = u32(f32(w_in_token) * params.inv_pairs);
    var i = i32(w_in_token) - i32(head * params.pairs);
    if (i < 0) {
        i = i + i32(params.pairs);
    } else if (i >= i32(params.pairs)) {
        i = i - i32(params.pairs);
    }
    let v = (params.src_base + token * params.token_words + w_in_token) >> 2u;
    let t = table_entry(token, u32(i)) >> 1u;
    dst[v] = rotate4(src[v], table[t], table[t + 1u]);
}
