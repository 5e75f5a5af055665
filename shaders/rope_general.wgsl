// rope_general.wgsl — any view, pairing and rotary_dim: one invocation per (token, head,
// slot); slot k < pairs rotates pair k, slot k >= pairs copies two pass-through elements, so
// out of place every element of the view is written exactly once. Elements are 16-bit halves
// of u32 words and two invocations may own the two halves of one word (half-split pairs, odd
// strides or offsets), so each store clears and sets only its own half, atomically.
// Mirrored by ViewParams in src/gpu/plan.rs.

// 1: pairs (x[i], x[i + pairs]) (half-split, rotate_half); 0: (x[2i], x[2i+1]) (interleaved).
override HALF_SPLIT: u32 = 0u;

struct Params {
    batch: u32,
    seq: u32,
    heads: u32,
    head_dim: u32,
    // rotary_dim / 2: rotated pairs per head, the width of a table row.
    pairs: u32,
    // head_dim / 2: invocations per head.
    slots: u32,
    // Element strides of batch, seq and head (head_dim is contiguous).
    stride_b: u32,
    stride_s: u32,
    stride_h: u32,
    // Element offset of [0, 0, 0, 0] in the bound tensor window.
    offset: u32,
    // 0x80000000 to rotate backwards (flips the sign of sin), else 0.
    sin_sign: u32,
    // Table entries before the bound table window.
    table_base: u32,
    // Rows in the table: a row beyond it (only possible for ids the host never saw, in a GPU
    // buffer) reads the last row instead of out of bounds.
    table_rows: u32,
    // batch * seq * heads * slots.
    invocations: u32,
    // 1: `rows` holds one table row per token (b * seq + s); 0: one start row per batch row,
    // token (b, s) at rows[b] + s.
    per_token: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<atomic<u32>>;
// Table rows: the first of each batch row, or one per token (`per_token`).
@group(0) @binding(4) var<storage, read> rows: array<u32>;

fn load_half(e: u32) -> u32 {
    return (src[e >> 1u] >> ((e & 1u) * 16u)) & 0xFFFFu;
}

fn store_half(e: u32, v: u32) {
    let shift = (e & 1u) * 16u;
    atomicAnd(&dst[e >> 1u], ~(0xFFFFu << shift));
    atomicOr(&dst[e >> 1u], v << shift);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_general(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let invocation = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    if (invocation >= params.invocations) {
        return;
    }
    let k = invocation % params.slots;
    let t = invocation / params.slots;
    let h = t % params.heads;
    let bs = t / params.heads;
    let s = bs % params.seq;
    let b = bs / params.seq;
    let head = params.offset + b * params.stride_b + s * params.stride_s + h * params.stride_h;
    if (k >= params.pairs) {
        let e = head + 2u * k;
        store_half(e, load_half(e));
        store_half(e + 1u, load_half(e + 1u));
        return;
    }
    var e0 = head + 2u * k;
    var e1 = e0 + 1u;
    if (HALF_SPLIT != 0u) {
        e0 = head + k;
        e1 = head + k + params.pairs;
    }
    var row = rows[b] + s;
    if (params.per_token != 0u) {
        row = rows[bs];
    }
    // Rows past the table (ids only the GPU saw) read its last row, never out of bounds.
    row = min(row, params.table_rows - 1u);
    let cs = table[row * params.pairs + k - params.table_base];
    let y = rotate_word(load_half(e0) | (load_half(e1) << 16u), cs);
    store_half(e0, y & 0xFFFFu);
    store_half(e1, y >> 16u);
}
