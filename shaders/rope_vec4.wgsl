// rope_vec4.wgsl — four consecutive words (pairs) per invocation with 16-byte loads and
// stores: the fast layout when pairs per head is a multiple of 4 (every real head_dim).

@group(0) @binding(1) var<storage, read> table: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // A 2-D grid keeps every dimension under max_compute_workgroups_per_dimension.
    let v = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    let w = v * 4u;
    if (w >= params.words) {
        return;
    }
    // The four words share a table row: `pairs` is a multiple of 4.
    let i = w % params.pairs;
    let s = (w / params.token_words) % params.seq;
    let t = ((params.row_offset + s) * params.pairs + i) >> 1u;
    let cs01 = table[t];
    let cs23 = table[t + 1u];
    let x = src[v];
    dst[v] = vec4<u32>(
        rotate_word(x.x, cs01.xy),
        rotate_word(x.y, cs01.zw),
        rotate_word(x.z, cs23.xy),
        rotate_word(x.w, cs23.zw),
    );
}
