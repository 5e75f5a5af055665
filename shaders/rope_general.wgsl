// rope_general.wgsl — any view, pairing and rotary_dim, for one tensor or for q and k in one
// dispatch (different head counts, strides and offsets; the same tokens, positions and
// table): one invocation per (view, token, head, slot); slot k < pairs rotates pair k, slot
// k >= pairs copies two pass-through elements, so every element of a view is written
// exactly once. Elements are 16-bit halves of u32 words and two invocations may own the two
// halves of one word (half-split pairs, odd strides or offsets), so each store clears and
// sets only its own half, atomically.
//
// Followed by an entry file — rope_general_halves.wgsl (any view: 16-bit halves, atomic
// stores) or rope_general_words.wgsl (heads starting on a word, half-split rotary_dim a
// multiple of 4: whole words, plain stores) — and by the io part src/shaders.rs writes
// (`general_io`: out of place or in place, one view or two), which declares the tensor
// bindings and their loads and stores. Mirrored by ViewParams in src/gpu/plan.rs.

// 1: pairs (x[i], x[i + pairs]) (half-split, rotate_half); 0: (x[2i], x[2i+1]) (interleaved).
override HALF_SPLIT: u32 = 0u;

struct Params {
    batch: u32,
    seq: u32,
    head_dim: u32,
    // rotary_dim / 2: rotated pairs per head, the width of a table row.
    pairs: u32,
    // head_dim / 2: invocations per head.
    slots: u32,
    // 0x80000000 to rotate backwards (flips the sign of sin), else 0.
    sin_sign: u32,
    // Table entries before the bound table window.
    table_base: u32,
    // Rows in the table: a row beyond it (only possible for ids the host never saw, in a GPU
    // buffer) reads the last row instead of out of bounds.
    table_rows: u32,
    // 1: `rows` holds one table row per token (b * seq + s); 0: one start row per batch row,
    // token (b, s) at rows[b] + s.
    per_token: u32,
    // Invocations of the first view (q), then of the second (k): batch * seq * heads * slots.
    invocations_q: u32,
    invocations: u32,
    // Per view (q, k): heads, element strides of batch, seq and head (head_dim is
    // contiguous), and the element offset of [0, 0, 0, 0] in its bound window.
    heads_q: u32,
    stride_b_q: u32,
    stride_s_q: u32,
    stride_h_q: u32,
    offset_q: u32,
    heads_k: u32,
    stride_b_k: u32,
    stride_s_k: u32,
    stride_h_k: u32,
    offset_k: u32,
    // Word kernel: rotating invocations per head (pairs interleaved, pairs / 2 half-split);
    // the rest of the slots copy pass-through words.
    rot_slots: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec2<u32>>;
// Table rows: the first of each batch row, or one per token (`per_token`).
@group(0) @binding(4) var<storage, read> rows: array<u32>;

// Where invocation `invocation` works: (view, slot in the head, element index of the head's
// first element, b, s, b * seq + s).
struct Place {
    view: u32,
    slot: u32,
    head: u32,
    b: u32,
    s: u32,
    bs: u32,
}

fn locate(invocation: u32) -> Place {
    var i = invocation;
    var view = 0u;
    var heads = params.heads_q;
    var stride = vec3<u32>(params.stride_b_q, params.stride_s_q, params.stride_h_q);
    var offset = params.offset_q;
    if (i >= params.invocations_q) {
        view = 1u;
        i = i - params.invocations_q;
        heads = params.heads_k;
        stride = vec3<u32>(params.stride_b_k, params.stride_s_k, params.stride_h_k);
        offset = params.offset_k;
    }
    let slot = i % params.slots;
    let t = i / params.slots;
    let h = t % heads;
    let bs = t / heads;
    let s = bs % params.seq;
    let b = bs / params.seq;
    let head = offset + b * stride.x + s * stride.y + h * stride.z;
    return Place(view, slot, head, b, s, bs);
}

// The (cos, sin) bits of frequency `pair` for token (b, s).
fn cos_sin(p: Place, pair: u32) -> vec2<u32> {
    var row = rows[p.b] + p.s;
    if (params.per_token != 0u) {
        row = rows[p.bs];
    }
    // Rows past the table (ids only the GPU saw) read its last row, never out of bounds.
    row = min(row, params.table_rows - 1u);
    return table[row * params.pairs + pair - params.table_base];
}
