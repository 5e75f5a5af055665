// rope_scalar.wgsl — one word (pair) per invocation: any shape.

@group(0) @binding(1) var<storage, read> table: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let invocation = grid_invocation(wid, nwg, lid);
    if (invocation >= params.words) {
        return;
    }
    let w = params.src_base + invocation;
    let cs = table[table_entry(invocation / params.token_words, invocation % params.pairs)];
    dst[w] = rotate_word(src[w], cs);
}
