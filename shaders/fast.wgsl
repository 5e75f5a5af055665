// fast.wgsl — the `fast` mode's arithmetic: plain f32 and one rounding, what other
// implementations do. Not exact (double rounding, driver FMA contraction, flushed subnormals).

// Plain f32 arithmetic and one round to nearest even: what other implementations do. Not
// exact (double rounding, driver FMA contraction, flushed subnormals); for comparison.
fn dot2_plain(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let rb = bitcast<u32>(widen(a) * bitcast<f32>(b) + widen(c) * bitcast<f32>(d));
    if ((rb & 0x7FFFFFFFu) > F32_INF) {
        return BF16_QNAN;
    }
    return ((rb + 0x7FFFu + ((rb >> 16u) & 1u)) >> 16u) & 0xFFFFu;
}
