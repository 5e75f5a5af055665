// rope_general_f32.wgsl — the general kernel on f32 tensors: one element per u32 word, so
// every element is its own word and plain stores never race. One invocation per (view,
// token, head, slot): slot k < pairs rotates pair k (either pairing), slot k >= pairs (out of
// place) copies the two pass-through elements 2k and 2k + 1. Composed by src/shaders.rs with
// the word io part (`load_word`/`store_word`, a word being an element here). The arithmetic
// is `rotate_pair_f32` (rope.wgsl), chosen by the EXACT override.

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
    let k = p.slot;
    if (k >= params.pairs) {
        let e = p.head + 2u * k;
        store_word(p.view, e, load_word(p.view, e));
        store_word(p.view, e + 1u, load_word(p.view, e + 1u));
        return;
    }
    var e0 = p.head + 2u * k;
    var e1 = e0 + 1u;
    if (HALF_SPLIT != 0u) {
        e0 = p.head + k;
        e1 = p.head + k + params.pairs;
    }
    let cs = cos_sin(p, k);
    let y = rotate_pair_f32(load_word(p.view, e0), load_word(p.view, e1), cs.x,
                            cs.y ^ params.sin_sign, EXACT);
    store_word(p.view, e0, y.x);
    store_word(p.view, e1, y.y);
}
