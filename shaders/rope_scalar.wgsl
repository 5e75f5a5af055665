// rope_scalar.wgsl — one word (pair) per invocation: any shape.

@group(0) @binding(1) var<storage, read> table: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

// The index of word w's (cos, sin) pair in the bound table window.
fn table_index(w: u32) -> u32 {
    let i = w % params.pairs;
    let token = w / params.token_words;
    let s = (token + params.seq_start) % params.seq;
    return (params.row_offset + s) * params.pairs + i - params.table_base;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // A 2-D grid keeps every dimension under max_compute_workgroups_per_dimension.
    let invocation = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    if (invocation >= params.words) {
        return;
    }
    let w = params.src_base + invocation;
    dst[w] = rotate_word(src[w], table[table_index(invocation)]);
}
