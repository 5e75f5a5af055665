// float.wgsl — f16 and f32 tensors: codecs and the correctly rounded two-product sum.
//
// Concatenated after bf16.wgsl (it reuses Decoded, decode_f32, the 64-bit helpers add64,
// sub64, shr64_low, bit64, low_bits_nonzero and UNDECIDED). f16 travels as 16-bit patterns,
// two per u32 word like bf16 (no `shader-f16` needed); f32 one per word. Why this is exact:
// ARCHITECTURE.md, "f16 and f32 tensors".
//
// Conventions: `a`, `c` are tensor patterns (f16 in the low 16 bits, or f32), `b`, `d` f32
// table patterns. Results are patterns of the tensor's format.

const F16_QNAN: u32 = 0x7E00u;
const F16_INF: u32 = 0x7C00u;
const F32_QNAN: u32 = 0x7FC00000u;

// Magnitude of a finite f16 (sign already removed): 11-bit significand.
fn decode_f16(m: u32) -> Decoded {
    let e = m >> 10u;
    let f = m & 0x3FFu;
    if (e == 0u) {
        return Decoded(f, -24);
    }
    return Decoded(f | 0x400u, i32(e) - 25);
}

// The exact 64-bit product of two u32 values, as vec2<u32>(low, high), from 16-bit limbs:
// a·b = a0·b0 + (a0·b1 + a1·b0)·2^16 + a1·b1·2^32, every partial product below 2^32.
fn mul64(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let lo = a0 * b0;
    let m1 = a0 * b1;
    let m2 = a1 * b0;
    let mid = m1 + m2;
    // A carry out of the middle sum is worth 2^48.
    let mid_carry = select(0u, 0x10000u, mid < m1);
    let x = lo + (mid << 16u);
    let carry = select(0u, 1u, x < lo);
    return vec2<u32>(x, a1 * b1 + (mid >> 16u) + mid_carry + carry);
}

// Leading zeros of a 64-bit value (64 for zero).
fn clz64(v: vec2<u32>) -> u32 {
    if (v.y != 0u) {
        return countLeadingZeros(v.y);
    }
    return 32u + countLeadingZeros(v.x);
}

// v << k for k in [0, 63] (WGSL masks shift amounts to 5 bits: k = 0 and k >= 32 apart).
fn shl64v(v: vec2<u32>, k: u32) -> vec2<u32> {
    if (k == 0u) {
        return v;
    }
    if (k < 32u) {
        return vec2<u32>(v.x << k, (v.y << k) | (v.x >> (32u - k)));
    }
    return vec2<u32>(0u, v.x << (k - 32u));
}

// v >> k for k in [0, 63].
fn shr64v(v: vec2<u32>, k: u32) -> vec2<u32> {
    if (k == 0u) {
        return v;
    }
    if (k < 32u) {
        return vec2<u32>((v.x >> k) | (v.y << (32u - k)), v.y >> k);
    }
    return vec2<u32>(v.y >> (k - 32u), 0u);
}

// Whether a > b, 64-bit.
fn gt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x > b.x);
}

// The correctly rounded (nearest, ties to even) sum of two exact, finite products
// (-1)^s1 · m1 · 2^e1 + (-1)^s2 · m2 · 2^e2 (m1, m2 < 2^63), onto the grid of a format with
// `mbits` fraction bits, subnormal quantum 2^qmin and infinity pattern `inf`; the sign goes
// to bit `sbit`. IEEE zeros: -0 only when both products are -0; an exact cancellation is +0.
fn round_sum_wide(s1: u32, m1_in: vec2<u32>, e1_in: i32, s2: u32, m2_in: vec2<u32>, e2_in: i32,
                  mbits: u32, qmin: i32, inf: u32, sbit: u32) -> u32 {
    var m1 = m1_in;
    var e1 = e1_in;
    var m2 = m2_in;
    var e2 = e2_in;
    let z1 = m1.x == 0u && m1.y == 0u;
    let z2 = m2.x == 0u && m2.y == 0u;
    if (z1 && z2) {
        return (s1 & s2) << sbit;
    }
    // Normalise so that the leading one sits at bit 62: value = m · 2^e.
    if (!z1) {
        let n = clz64(m1) - 1u;
        m1 = shl64v(m1, n);
        e1 = e1 - i32(n);
    }
    if (!z2) {
        let n = clz64(m2) - 1u;
        m2 = shl64v(m2, n);
        e2 = e2 - i32(n);
    }
    // Order by magnitude: (mb, eb, sb) is the larger term.
    let swap = z1 || (!z2 && (e2 > e1 || (e2 == e1 && gt64(m2, m1))));
    let mb = select(m1, m2, swap);
    let eb = select(e1, e2, swap);
    let sb = select(s1, s2, swap);
    let ms = select(m2, m1, swap);
    let es = select(e2, e1, swap);
    let ss = select(s2, s1, swap);
    let zs = select(z2, z1, swap);

    // Fixed point with the unit 2^eb: the smaller term shifted right by the exponent gap; the
    // bits it loses (only for gaps > 15: a product has at most 48 bits) are a sticky bit, and
    // the true sum then lies strictly between R and R + 1.
    var small = vec2<u32>(0u, 0u);
    var sticky = false;
    if (!zs) {
        let gap = u32(eb - es);
        if (gap < 63u) {
            small = shr64v(ms, gap);
            sticky = low_bits_nonzero(ms, gap);
        } else {
            sticky = true;
        }
    }
    var r: vec2<u32>;
    if (sb != ss) {
        r = sub64(mb, small);
        if (sticky) {
            r = sub64(r, vec2<u32>(1u, 0u));
        }
    } else {
        r = add64(mb, small);
    }
    if (r.x == 0u && r.y == 0u && !sticky) {
        return 0u;
    }

    // Round R (plus sticky) to mbits + 1 significant bits, or to the subnormal quantum.
    let lead = 63 - i32(clz64(r));
    let shift = max(lead - i32(mbits), qmin - eb);
    var q: u32;
    if (shift <= 0) {
        // Exact: R has at most mbits + 1 bits and no sticky (sticky implies lead >= 61).
        q = r.x << u32(-shift);
    } else if (shift >= 65) {
        q = 0u;
    } else {
        let k = u32(shift);
        let half = bit64(r, k - 1u);
        q = select(shr64_low(r, k), 0u, k == 64u);
        let rest = sticky || low_bits_nonzero(r, k - 1u);
        if (half == 1u && (rest || (q & 1u) == 1u)) {
            q = q + 1u;
        }
    }
    // value = q · 2^(shift + eb); (shift + eb − qmin) << mbits plus q is the pattern of normal
    // (q in [2^mbits, 2^(mbits+1)]) and subnormal (shift + eb == qmin) results alike; a carry
    // bumps the exponent, and reaching `inf` is the IEEE overflow.
    let biased = shift + eb - qmin;
    var mag = inf;
    if (biased < i32(inf >> mbits)) {
        mag = min((u32(biased) << mbits) + q, inf);
    }
    return (sb << sbit) | mag;
}

// Correctly rounded f16 of the exact a·b + c·d (a, c f16; b, d f32), IEEE special values and
// the canonical NaN 0x7E00. Integer arithmetic only.
fn dot2_exact_f16(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFu;
    let bm = b & 0x7FFFFFFFu;
    let cm = c & 0x7FFFu;
    let dm = d & 0x7FFFFFFFu;
    if (am > F16_INF || bm > F32_INF || cm > F16_INF || dm > F32_INF) {
        return F16_QNAN;
    }
    let s1 = ((a >> 15u) ^ (b >> 31u)) & 1u;
    let s2 = ((c >> 15u) ^ (d >> 31u)) & 1u;
    let inf1 = am == F16_INF || bm == F32_INF;
    let inf2 = cm == F16_INF || dm == F32_INF;
    if ((inf1 && (am == 0u || bm == 0u)) || (inf2 && (cm == 0u || dm == 0u))) {
        return F16_QNAN;
    }
    if (inf1 || inf2) {
        if (inf1 && inf2 && s1 != s2) {
            return F16_QNAN;
        }
        return (select(s2, s1, inf1) << 15u) | F16_INF;
    }
    let da = decode_f16(am);
    let db = decode_f32(bm);
    let dc = decode_f16(cm);
    let dd = decode_f32(dm);
    return round_sum_wide(s1, mul64(da.sig, db.sig), da.exp + db.exp,
                          s2, mul64(dc.sig, dd.sig), dc.exp + dd.exp,
                          10u, -24, F16_INF, 15u);
}

// Correctly rounded f32 of the exact a·b + c·d (all f32), IEEE special values and the
// canonical NaN 0x7FC00000; subnormal inputs and results exact. Integer arithmetic only.
fn dot2_exact_f32(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFFFFFu;
    let bm = b & 0x7FFFFFFFu;
    let cm = c & 0x7FFFFFFFu;
    let dm = d & 0x7FFFFFFFu;
    if (am > F32_INF || bm > F32_INF || cm > F32_INF || dm > F32_INF) {
        return F32_QNAN;
    }
    let s1 = ((a ^ b) >> 31u) & 1u;
    let s2 = ((c ^ d) >> 31u) & 1u;
    let inf1 = am == F32_INF || bm == F32_INF;
    let inf2 = cm == F32_INF || dm == F32_INF;
    if ((inf1 && (am == 0u || bm == 0u)) || (inf2 && (cm == 0u || dm == 0u))) {
        return F32_QNAN;
    }
    if (inf1 || inf2) {
        if (inf1 && inf2 && s1 != s2) {
            return F32_QNAN;
        }
        return (select(s2, s1, inf1) << 31u) | F32_INF;
    }
    let da = decode_f32(am);
    let db = decode_f32(bm);
    let dc = decode_f32(cm);
    let dd = decode_f32(dm);
    return round_sum_wide(s1, mul64(da.sig, db.sig), da.exp + db.exp,
                          s2, mul64(dc.sig, dd.sig), dc.exp + dd.exp,
                          23u, -149, F32_INF, 31u);
}

// Widen a finite f16 pattern to the f32 of the same value, on the bits (f16 subnormals are
// normal f32: normalised with countLeadingZeros, never by float arithmetic).
fn widen_f16(h: u32) -> f32 {
    let m = h & 0x7FFFu;
    let sign = (h & 0x8000u) << 16u;
    if (m >= 0x400u) {
        return bitcast<f32>(sign | ((m << 13u) + 0x38000000u));
    }
    if (m == 0u) {
        return bitcast<f32>(sign);
    }
    // m · 2^-24 with the leading one of m at bit `lead`.
    let lead = 31u - countLeadingZeros(m);
    return bitcast<f32>(sign | ((lead + 103u) << 23u) | ((m << (23u - lead)) & 0x7FFFFFu));
}

// a·b + c·d in f32 arithmetic, rounded to f16 when that rounding is proven correct, else
// UNDECIDED. As for bf16 (dot2_fast), the f32 result r is within 2^-23 M (1 + 2^-22) (+ 2^-125
// for flushed tiny products, below 2^-45 M for the M >= 2^-80 accepted) of the exact value,
// M = |p1| + |p2|; it is accepted only when r is an f32 whose exponent lies in the f16 normal
// range [2^-14, 2^16) and r is further than twice that bound (PROOF_MARGIN, as for bf16) from
// the midpoint of its f16 interval (r's bits with the low 13 replaced by 0x1000: r − mid is
// exact). The exact value is then on r's side of that midpoint, and it cannot reach the
// midpoint on the other side of r's truncation T either: that one is at least a quarter of an
// f16 ulp from r (half an ulp below a power of two T), while |r − mid| <= half an ulp and
// |r − mid| > twice the bound make the bound less than a quarter. (Before session 9 the margin
// was 2^-21 M, twice this, leaving twice the near-midpoint outputs to the integer path.) Then
// r + half an f16 ulp truncated is the correct f16, a carry into 2^16 being RNE's overflow
// (r ≥ 65520). Non-finite inputs are rejected on the bits; callers ensure the table
// values are zero or normal and at most 2^16 (f32_fast_ok).
fn dot2_fast_f16(a: u32, b: u32, c: u32, d: u32) -> u32 {
    if ((a & 0x7FFFu) >= F16_INF || (c & 0x7FFFu) >= F16_INF) {
        return UNDECIDED;
    }
    let p1 = widen_f16(a) * bitcast<f32>(b);
    let p2 = widen_f16(c) * bitcast<f32>(d);
    let r = p1 + p2;
    let m = abs(p1) + abs(p2);
    let rb = bitcast<u32>(r);
    let re = (rb >> 23u) & 0xFFu;
    let mid = bitcast<f32>((rb & 0xFFFFE000u) | 0x1000u);
    let range_ok = (re - 113u) < 30u;
    let m_ok = ((bitcast<u32>(m) & 0x7FFFFFFFu) - 0x17800000u) < 0x67000000u;
    let ok = range_ok && m_ok && abs(r - mid) > m * PROOF_MARGIN;
    let y = ((((rb & 0x7FFFFFFFu) + 0x1000u) >> 13u) - 0x1C000u) | ((rb >> 16u) & 0x8000u);
    return select(UNDECIDED, y, ok);
}

// x * t exactly as (hi, lo), hi = fl(x * t), for x with at most 11 significant bits (a scaled
// f16): t split into its top 12 significant bits and the rest (at most 12 bits, below 2^-11 |t|),
// so both partial products have at most 23 bits and are exact; hi - p1 is exact (Sterbenz:
// |p2| < 2^-11 |p1|) and lo, the rounding error of hi, is representable. Exact whatever the
// driver contracts into FMAs (every product is exact), given no result below 2^-126 (the
// caller's scaling keeps every value a multiple of 2^-113).
fn two_prod_split_f16(x: f32, t: f32) -> vec2<f32> {
    let th = bitcast<f32>(bitcast<u32>(t) & 0xFFFFF000u);
    let tl = t - th;
    let p1 = x * th;
    let p2 = x * tl;
    let h = opaque(p1 + p2);
    return vec2<f32>(h, (p1 - h) + p2);
}

// Correctly rounded f16 of a·b + c·d (a, c f16 patterns; b, d f32 table patterns) with
// error-free f32 steps, or UNDECIDED where this stage cannot prove the rounding
// (dot2_exact_f16 then decides): an infinite or NaN x, a table value not zero and not in
// [2^-90, 2^16), a result below 2^-14 (subnormal or zero f16), cancellation of 20 bits or
// more, an exact or near tie. The f16 analogue of dot2_split (bf16.wgsl), whose error
// argument it follows.
//
// Both x are scaled by 2^24 (exact: x' = x · 2^24 is an integer in [1, 2^40) or zero), so with
// table values t >= 2^-90 every partial product, exact sum and rounding error below is a
// multiple of 2^-113 (t's ulp is at least 2^-113) and below 2^57: no subnormal arises, so
// flushing cannot change anything, and nothing overflows. With A = x0'·b = Ah + Al and
// B = x1'·d = Bh + Bl exactly (two_prod_split_f16), (S, E) the TwoSum of Ah and Bh,
// tau = fl(fl(E + Al) + Bl) and (H, L) the TwoSum of S and tau, the exact scaled value is
// H + L + err with |err| <= 2^-46 (|Ah| + |Bh|)(1 + 2^-22). The f16 grid, scaled, has 11
// significant bits from 2^10 (2^-14 unscaled) up; f16 midpoints are f32 values, so if H is not
// one, the nearest is at least ulp(H) away and |L| <= ulp(H)/2: H's rounding is correct when
// |err| < 2^-24 |H| (checked as |H| > 2^-20 m). If H is a midpoint, the sign of L decides when
// |L| > |err| (checked as 2^44 |L| > m).
fn dot2_split_f16(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFu;
    let cm = c & 0x7FFFu;
    let bm = b & 0x7FFFFFFFu;
    let dm = d & 0x7FFFFFFFu;
    let bf = bm >> 23u;
    let df = dm >> 23u;
    if ((bm != 0u && (bf - 37u) > 105u) || (dm != 0u && (df - 37u) > 105u)
        || am >= F16_INF || cm >= F16_INF) {
        return UNDECIDED;
    }
    let x0 = widen_f16(a) * 0x1p24;
    let x1 = widen_f16(c) * 0x1p24;
    let pa = two_prod_split_f16(x0, bitcast<f32>(b));
    let pb = two_prod_split_f16(x1, bitcast<f32>(d));
    let se = two_sum(pa.x, pb.x);
    let tau = (se.y + pa.y) + pb.y;
    let hl = two_sum(se.x, tau);
    let m = abs(pa.x) + abs(pb.x);
    let hb = bitcast<u32>(hl.x);
    let hm = hb & 0x7FFFFFFFu;
    // Below 2^10 scaled (an f16 subnormal or zero result): the integer path.
    if (hm < 0x44800000u) {
        return UNDECIDED;
    }
    var q: u32;
    if ((hm & 0x1FFFu) != 0x1000u) {
        if (!(abs(hl.x) > m * 0x1p-20)) {
            return UNDECIDED;
        }
        q = (hm + 0x1000u) >> 13u;
    } else {
        if (!(abs(hl.y) * 0x1p44 > m)) {
            return UNDECIDED;
        }
        q = (hm >> 13u) + select(0u, 1u, (bitcast<u32>(hl.y) >> 31u) == (hb >> 31u));
    }
    // q is the rounded scaled value's f32 pattern >> 13: unscale (the exponent field less 24)
    // and rebias to f16 (less 112) in one step, 136 << 10 = 0x22000; 2^16 and above
    // (RNE's overflow) is infinity.
    return ((hb >> 16u) & 0x8000u) | min(q - 0x22000u, F16_INF);
}

// f16 output: the proven f32 path where the table allows it, else (or when undecided) the
// error-free second stage, then the exact integer path. f32 output has no f32 fast path
// (ARCHITECTURE.md): always exact.
fn dot2_f16(a: u32, b: u32, c: u32, d: u32) -> u32 {
    if (f32_fast_ok(b) && f32_fast_ok(d)) {
        let y = dot2_fast_f16(a, b, c, d);
        if (y != UNDECIDED) {
            return y;
        }
    }
    let y = dot2_split_f16(a, b, c, d);
    if (y != UNDECIDED) {
        return y;
    }
    return dot2_exact_f16(a, b, c, d);
}

// f32 -> f16, round to nearest, ties to even, on the bits: the same result as the exact path's
// 1·v + (-0)·0 (signed zeros, subnormals, overflow to infinity, the canonical NaN 0x7E00 for
// every NaN), in a few integer steps. For the `fast` and `hf` modes (through the exact path it
// cost `fast` on f16 three quarters of a copy's speed: BENCHMARKS.md, session 9).
fn f32_to_f16_rne(v: u32) -> u32 {
    let sign = (v >> 16u) & 0x8000u;
    let m = v & 0x7FFFFFFFu;
    if (m > F32_INF) {
        return F16_QNAN;
    }
    // 65520 (0x477FF000) and above, infinity included: the midpoint between 65504, the
    // largest f16, and 2^16 rounds to the even side, 2^16, which is past the range.
    if (m >= 0x477FF000u) {
        return sign | F16_INF;
    }
    // Normal f16 (2^-14 and above): rebias the exponent (127 - 15 = 112) and round the 13
    // bits dropped, ties to the even kept bit; a carry moves into the exponent as it should.
    if (m >= 0x38800000u) {
        let t = m - 0x38000000u;
        return sign | ((t + 0x0FFFu + ((t >> 13u) & 1u)) >> 13u);
    }
    // Below 2^-14: the multiple q of 2^-24 nearest to s · 2^(e - 150) (s the significand with
    // its leading one, e the biased exponent), q = s >> (126 - e) rounded; below 2^-25
    // (e < 102, f32 subnormals too) that is 0, and 2^-25 itself ties to 0.
    let e = m >> 23u;
    if (e < 102u) {
        return sign;
    }
    let s = (m & 0x7FFFFFu) | 0x800000u;
    let k = 126u - e;
    let q = s >> k;
    let rest = s & ((1u << k) - 1u);
    let half = 1u << (k - 1u);
    let up = rest > half || (rest == half && (q & 1u) == 1u);
    return sign | (q + select(0u, 1u, up));
}

// The f32 pattern of the value of an f16 pattern, infinities and NaNs included.
fn f16_to_f32_bits(h: u32) -> u32 {
    if ((h & 0x7FFFu) >= F16_INF) {
        return ((h & 0x8000u) << 16u) | F32_INF | ((h & 0x3FFu) << 13u);
    }
    return bitcast<u32>(widen_f16(h));
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

// One f16 pair (x0 low, x1 high half of `w`) in the `fast` (0) or `hf` (2) arithmetic, with
// sinb already signed for the direction; the rotated pair packed the same way.
//   fast: plain f32 arithmetic (driver-dependent: FMA contraction, flushed subnormals), one
//         rounding to f16;
//   hf:   c = f16(cos), s = f16(sin); y0 = f16(f16(x0·c) + f16(-x1·s)), y1 = f16(f16(x1·c) + f16(x0·s)).
fn rotate_word_f16_mode(w: u32, cosb: u32, sinb: u32, mode: u32) -> u32 {
    let x0 = w & 0xFFFFu;
    let x1 = w >> 16u;
    if (mode == 0u) {
        let a = bitcast<f32>(f16_to_f32_bits(x0));
        let b = bitcast<f32>(f16_to_f32_bits(x1));
        let c = bitcast<f32>(cosb);
        let s = bitcast<f32>(sinb);
        let y0 = f32_to_f16_rne(bitcast<u32>(a * c - b * s));
        let y1 = f32_to_f16_rne(bitcast<u32>(a * s + b * c));
        return y0 | (y1 << 16u);
    }
    let c = f16_to_f32_bits(f32_to_f16_rne(cosb));
    let s = f16_to_f32_bits(f32_to_f16_rne(sinb));
    let y0 = hf_add_f16(hf_mul_f16(x0, c), hf_mul_f16(x1 ^ 0x8000u, s));
    let y1 = hf_add_f16(hf_mul_f16(x1, c), hf_mul_f16(x0, s));
    return y0 | (y1 << 16u);
}

// One f32 pair, sinb already signed for the direction: (x0·cos - x1·sin, x0·sin + x1·cos) in
// the arithmetic `mode` names: 1 exact (the contract, integer path always: ARCHITECTURE.md),
// 0 plain f32 (driver-dependent), 2 torch's f32 steps (`hf` on an f32 tensor: each product
// rounded to f32, then the sum; emulated on the bits with -0 partners so -0 products stay -0).
fn rotate_pair_f32(x0: u32, x1: u32, cosb: u32, sinb: u32, mode: u32) -> vec2<u32> {
    let nsinb = sinb ^ 0x80000000u;
    if (mode == 0u) {
        let a = bitcast<f32>(x0);
        let b = bitcast<f32>(x1);
        let c = bitcast<f32>(cosb);
        let s = bitcast<f32>(sinb);
        return vec2<u32>(bitcast<u32>(a * c - b * s), bitcast<u32>(a * s + b * c));
    }
    if (mode == 2u) {
        let one = 0x3F800000u;
        let p0 = dot2_exact_f32(x0, cosb, 0x80000000u, 0u);
        let q0 = dot2_exact_f32(x1, nsinb, 0x80000000u, 0u);
        let p1 = dot2_exact_f32(x1, cosb, 0x80000000u, 0u);
        let q1 = dot2_exact_f32(x0, sinb, 0x80000000u, 0u);
        return vec2<u32>(dot2_exact_f32(p0, one, q0, one), dot2_exact_f32(p1, one, q1, one));
    }
    return vec2<u32>(dot2_exact_f32(x0, cosb, x1, nsinb), dot2_exact_f32(x0, sinb, x1, cosb));
}
