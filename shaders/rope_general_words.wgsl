// rope_general_words.wgsl — the general kernel when every head starts on a word (even
// element offset and strides) and, half-split, pairs is even: whole words, plain loads and
// stores, each word owned by one invocation. Slots per head: `rot_slots` rotating (pair j
// interleaved; pairs 2j and 2j + 1 half-split, whose x0 share word j and x1 share word
// pairs/2 + j), then one per pass-through word (out of place only).

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_general(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = grid_invocation(wid, nwg, lid);
    if (i >= params.invocations) {
        return;
    }
    let p = locate(i);
    let hw = p.head >> 1u;
    let j = p.slot;
    if (j >= params.rot_slots) {
        // A pass-through word: rotary words end at pairs (either pairing).
        let w = hw + params.pairs + (j - params.rot_slots);
        store_word(p.view, w, load_word(p.view, w));
        return;
    }
    if (HALF_SPLIT == 0u) {
        store_word(p.view, hw + j, rotate_word(load_word(p.view, hw + j), cos_sin(p, j)));
        return;
    }
    let wa = hw + j;
    let wb = hw + (params.pairs >> 1u) + j;
    let a = load_word(p.view, wa);
    let b = load_word(p.view, wb);
    let y0 = rotate_word((a & 0xFFFFu) | (b << 16u), cos_sin(p, 2u * j));
    let y1 = rotate_word((a >> 16u) | (b & 0xFFFF0000u), cos_sin(p, 2u * j + 1u));
    store_word(p.view, wa, (y0 & 0xFFFFu) | (y1 << 16u));
    store_word(p.view, wb, (y0 >> 16u) | (y1 & 0xFFFF0000u));
}
