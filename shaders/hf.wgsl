// hf.wgsl — the `hf` mode (docs/CONTRACT.md §2): Hugging Face transformers' eager arithmetic
// on bf16 and f16 tensors, bit for bit.
//
// torch (CPU) computes a bf16 or f16 multiply or add in f32 (IEEE, subnormals kept) and rounds
// the f32 to the tensor's format with round-to-nearest-even. Drivers may flush f32 subnormals
// and fuse multiply-adds, so every step is emulated here on integer bits; no f32 unit is used.

// The f32 bit pattern nearest (ties to even) to (-1)^s (m + t) 2^e, with f32 subnormals and
// overflow to infinity. m > 0; t = 0 when !sticky, else 0 < t < 1 and m >= 2^29 (so the
// rounding position is above bit 5 and t only breaks ties).
fn round_to_f32(s: u32, m: u32, e: i32, sticky: bool) -> u32 {
    let top = e + 31 - i32(countLeadingZeros(m));
    if (top > 127) {
        return (s << 31u) | F32_INF;
    }
    // Exponent of the f32 quantum at this magnitude: 24 significant bits, or 2^-149.
    let q = max(top - 23, -149);
    let shift = q - e;
    var kept = 0u;
    if (shift <= 0) {
        kept = m << u32(-shift);
    } else if (shift <= 32) {
        let k = u32(shift);
        kept = select(m >> k, 0u, k == 32u);
        let half = (m >> (k - 1u)) & 1u;
        let rest = sticky || (k > 1u && (m << (33u - k)) != 0u);
        if (half == 1u && (rest || (kept & 1u) == 1u)) {
            kept = kept + 1u;
        }
    }
    // Below half the quantum (shift > 32 > position of the leading bit + 1): rounds to zero.
    // kept * 2^q: ((q + 149) << 23) + kept is the f32 pattern for normal (kept in [2^23, 2^24])
    // and subnormal (kept < 2^23) results alike; a carry bumps the exponent, up to infinity.
    return (s << 31u) | min((u32(q + 149) << 23u) + kept, F32_INF);
}

// torch's bf16 product: the f32 product of two bf16 values (exact except below the f32 normal
// range or past its largest value), rounded to bf16. IEEE specials, the canonical NaN.
fn hf_mul(a: u32, b: u32) -> u32 {
    let am = a & 0x7FFFu;
    let bm = b & 0x7FFFu;
    let s = ((a ^ b) >> 15u) & 1u;
    if (am > BF16_INF || bm > BF16_INF) {
        return BF16_QNAN;
    }
    if (am == BF16_INF || bm == BF16_INF) {
        return select((s << 15u) | BF16_INF, BF16_QNAN, am == 0u || bm == 0u);
    }
    if (am == 0u || bm == 0u) {
        return s << 15u;
    }
    let da = decode_bf16(am);
    let db = decode_bf16(bm);
    return f32_to_bf16_rne(round_to_f32(s, da.sig * db.sig, da.exp + db.exp, false));
}

// torch's bf16 sum: the f32 sum of two bf16 values (IEEE round to nearest even, subnormals
// kept), rounded to bf16. IEEE specials and signed zeros, the canonical NaN.
fn hf_add(p: u32, q: u32) -> u32 {
    let pm = p & 0x7FFFu;
    let qm = q & 0x7FFFu;
    if (pm > BF16_INF || qm > BF16_INF) {
        return BF16_QNAN;
    }
    let sp = (p >> 15u) & 1u;
    let sq = (q >> 15u) & 1u;
    if (pm == BF16_INF || qm == BF16_INF) {
        if (pm == BF16_INF && qm == BF16_INF && sp != sq) {
            return BF16_QNAN;
        }
        return select(q, p, pm == BF16_INF) & 0xFFFFu;
    }
    if (pm == 0u && qm == 0u) {
        // -0 only when both are -0.
        return (sp & sq) << 15u;
    }
    if (qm == 0u) {
        return p & 0xFFFFu;
    }
    if (pm == 0u) {
        return q & 0xFFFFu;
    }
    // The larger magnitude first (bf16 magnitudes order as integers).
    let swap = qm > pm;
    let db = decode_bf16(select(pm, qm, swap));
    let ds = decode_bf16(select(qm, pm, swap));
    let sb = select(sp, sq, swap);
    let ss = select(sq, sp, swap);
    // Leading ones at bit 30: m * 2^e; the smaller term aligned to the larger one's unit,
    // its lost bits (only when it lies 24 or more binades below) kept as a sticky bit.
    let nb = countLeadingZeros(db.sig) - 1u;
    let mb = db.sig << nb;
    let eb = db.exp - i32(nb);
    let ns = countLeadingZeros(ds.sig) - 1u;
    let ms = ds.sig << ns;
    let gap = u32(eb - (ds.exp - i32(ns)));
    var small = 0u;
    var sticky = true;
    if (gap < 32u) {
        small = ms >> gap;
        sticky = gap > 0u && (ms << (32u - gap)) != 0u;
    }
    var r = mb + small;
    if (sb != ss) {
        // The true difference is r - t with 0 < t < 1 under sticky: (r - 1) + (1 - t).
        r = mb - small - select(0u, 1u, sticky);
    }
    if (r == 0u && !sticky) {
        // Exact cancellation: +0.
        return 0u;
    }
    return f32_to_bf16_rne(round_to_f32(sb, r, eb, sticky));
}

// One output of the `hf` mode: bf16(bf16(a*b) + bf16(c*d)) with torch's f32 steps; a, b, c, d
// bf16 patterns (the table values already rounded to bf16).
fn dot2_hf(a: u32, b: u32, c: u32, d: u32) -> u32 {
    return hf_add(hf_mul(a, b), hf_mul(c, d));
}

// Transformers' arithmetic on f16 tensors (EXACT = 2, docs/CONTRACT.md §2), torch's steps emulated on
// the bits: the f16 product x·c is exact in f32 and then rounded to f16, so it is the
// correctly rounded f16 of x·c (the exact path with a -0 partner: x·c + (-0) keeps a -0
// product); the sum of two f16 is rounded to f32 (the exact f32 path), then to f16.
fn hf_mul_f16(x: u32, c32: u32) -> u32 {
    return dot2_exact_f16(x, c32, 0x8000u, 0u);
}

fn hf_add_f16(p: u32, q: u32) -> u32 {
    let s = dot2_exact_f32(f16_to_f32_bits(p), 0x3F800000u, f16_to_f32_bits(q), 0x3F800000u);
    return f32_to_f16_rne(s);
}
