// rope_general_halves.wgsl — the general kernel on any view: one invocation per (view,
// token, head, slot); slot k < pairs rotates pair k, slot k >= pairs copies two pass-through
// elements. Two invocations may own the two halves of one word (half-split pairs, odd
// strides or offsets), so the io part's stores are atomic and touch only their own half.

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
        store_half(p.view, e, load_half(p.view, e));
        store_half(p.view, e + 1u, load_half(p.view, e + 1u));
        return;
    }
    var e0 = p.head + 2u * k;
    var e1 = e0 + 1u;
    if (HALF_SPLIT != 0u) {
        e0 = p.head + k;
        e1 = p.head + k + params.pairs;
    }
    let y = rotate_word(load_half(p.view, e0) | (load_half(p.view, e1) << 16u), cos_sin(p, k));
    store_half(p.view, e0, y & 0xFFFFu);
    store_half(p.view, e1, y >> 16u);
}
