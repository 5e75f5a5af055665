// proof.wgsl — the f32 stages in front of exact.wgsl: outputs whose rounding is proven from
// f32 arithmetic, and an error-free second stage (TwoSum, split products) for the rest.
//
// Each function returns the correctly rounded result or UNDECIDED; the caller then falls back
// to the integer path. The proofs hold whatever the driver does with FMA contraction and
// subnormal flushing (each function says why); they assume IEEE f32 rounding of each
// operation that is not contracted.

// a*b + c*d in f32 arithmetic, rounded to bf16 when that rounding is proven correct, else
// UNDECIDED. Whatever the driver does (FMA contraction or not, flushed tiny products), the f32
// result r is within 2^-24 (|p1| + |p2|) + ulp(r)/2 <= 2^-23 M (1 + 2^-22) of the exact
// value, with M = |p1| + |p2|. The bf16 rounding of r is the correct one when r is further
// than twice that bound (PROOF_MARGIN says why twice) from the midpoint mid above its bf16
// truncation (same bf16 pattern, low half 0x8000; r - mid is exact) and M is normal, not tiny
// and well inside the f32 range. A flushed subnormal bf16 operand errs by at most
// 2^-126 |table value| <= 2^-110, inside the margin; callers ensure the table values are
// normal (or zero) and at most 2^16.
// Non-finite values are rejected on the bits, never by float comparisons.
fn dot2_fast(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let p1 = widen(a) * bitcast<f32>(b);
    let p2 = widen(c) * bitcast<f32>(d);
    let r = p1 + p2;
    let m = abs(p1) + abs(p2);
    let rb = bitcast<u32>(r);
    let mid = bitcast<f32>((rb & 0xFFFF0000u) | 0x8000u);
    // M in [2^-64, 2^128 (1 - 2^-8)): finite, and the midpoint test below then forces
    // |r| > 2^8 |r - mid| > 2^-78 (|r - mid| <= 2^-8 |r| within one bf16 interval), so r is
    // normal and tiny flushed terms (<= 2^-109 together) are inside the margin; at the top,
    // |r| <= |p1| + |p2| < M (1 + 2^-22) stays finite (fused or not), so mid is finite too,
    // and r's bf16 rounding may reach infinity only past bf16's largest value plus half an
    // ulp, the midpoint the test keeps r away from.
    let m_ok = ((bitcast<u32>(m) & 0x7FFFFFFFu) - FAST_MIN) < FAST_SPAN;
    let ok = m_ok && abs(r - mid) > m * PROOF_MARGIN;
    return select(UNDECIDED, (rb + 0x8000u) >> 16u, ok);
}

// The range of M (as f32 bits) where the proof decides: [2^-64, 2^128 (1 - 2^-8)), the top
// being bf16's largest value (0x7F7F0000).
const FAST_MIN: u32 = 0x1F800000u;

const FAST_SPAN: u32 = 0x7F7F0000u - FAST_MIN;

// The proof's threshold on |r - mid| per unit of M = |p1| + |p2|: 2^-22 (1 + 2^-20), twice
// the bound on |r - exact|. The f32 result is within 2^-24 (|p1| + |p2|) + ulp(r)/2 <=
// 2^-23 M (1 + 2^-22) of the exact value (fused or not); computed M is at least
// M (1 - 2^-23) and its product with the threshold rounds down by at most 2^-24, so
// |r - exact| stays below half the threshold, flushed subnormal terms (<= 2^-109, below
// 2^-43 M (1 - 2^-19) for M >= 2^-64) included. Twice, not once: r - mid is only the distance
// to the midpoint above r's bf16 truncation T; the other midpoint near r, below T, is at least
// a quarter of T's bf16 ulp from r (T a power of two: the ulp below T is half), while the test
// passing means the threshold is below half an ulp, so |r - exact| < a quarter ulp can cross
// neither midpoint.
const PROOF_MARGIN: f32 = 0x1.00001p-22;

// Whether an f32 table value lets `dot2_fast` be trusted: zero, or normal with |v| < 2^16.
fn f32_fast_ok(v: u32) -> bool {
    let m = v & 0x7FFFFFFFu;
    return m == 0u || (m - 0x00800000u) < 0x47000000u;
}

// x * t exactly as (hi, lo), hi = fl(x * t): x a widened bf16 (8 significant bits), t an f32
// split into its top 8 significant bits and the rest (at most 16 bits), so both partial
// products are exact; hi - p1 is exact (|p2| < 2^-7 |p1|) and lo is the rounding error of hi.
// Exact whatever the driver contracts into FMAs (every product is exact), given no result
// below 2^-126 (callers scale so that every product is a multiple of 2^-120).
fn two_prod_split(x: f32, t: f32) -> vec2<f32> {
    let th = bitcast<f32>(bitcast<u32>(t) & 0xFFFF0000u);
    let tl = t - th;
    let p1 = x * th;
    let p2 = x * tl;
    let h = opaque(p1 + p2);
    return vec2<f32>(h, (p1 - h) + p2);
}

// a + b exactly as (s, e), s = fl(a + b) (Knuth's TwoSum: additions only).
fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    let bb = opaque(s - a);
    return vec2<f32>(s, (a - (s - bb)) + (b - bb));
}

// x, through a value the compiler cannot know (a runtime zero of the kernel's uniforms,
// `runtime_zero`): shader compilers treat f32 arithmetic as real-number algebra where the
// SPIR-V does not forbid it (Mesa's NIR folds (a + b) - a into b), which would erase the
// rounding errors these steps compute.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ runtime_zero());
}

// Correctly rounded bf16 of a*b + c*d (a, c bf16 patterns; b, d f32 patterns) with
// error-free f32 steps, or UNDECIDED where this stage cannot prove the rounding (dot2_exact
// then decides): table values not zero and not in [2^-90, 2^16), both x tiny, cancellation of
// 20 bits or more, an exact or near tie, a subnormal result.
//
// The x are scaled by a power of two so that the larger one with a nonzero product lies in
// [1, 2); a smaller one whose product would fall below 2^-89 there (or a subnormal one) is left
// out and counted in the error bound. Every product kept is then a multiple of 2^-120 and at
// least 2^-90, and so is every exact sum and error below: no subnormal arises, so flushing
// cannot change anything. With A = x0*b = Ah + Al and B = x1*d = Bh + Bl exactly, (S, E) the
// TwoSum of Ah and Bh, tau = fl(fl(E + Al) + Bl) and (H, L) the TwoSum of S and tau, the exact
// value is H + L + err with |err| <= 2^-46 (|Ah| + |Bh|)(1 + 2^-22) (+ 2^-89 for a term left
// out). If H is not a bf16 midpoint, the nearest midpoint is at least ulp(H) away and
// |L| <= ulp(H)/2, so H's rounding is correct when |err| < 2^-24 |H|. If H is a midpoint, the
// sign of L decides when |L| > |err|.
fn dot2_split(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFu;
    let cm = c & 0x7FFFu;
    let bm = b & 0x7FFFFFFFu;
    let dm = d & 0x7FFFFFFFu;
    let bf = bm >> 23u;
    let df = dm >> 23u;
    if ((bm != 0u && (bf - 37u) > 105u) || (dm != 0u && (df - 37u) > 105u)) {
        return UNDECIDED;
    }
    let s1 = ((a >> 15u) ^ (b >> 31u)) & 1u;
    let s2 = ((c >> 15u) ^ (d >> 31u)) & 1u;
    if (am >= BF16_INF || cm >= BF16_INF) {
        // An infinite x times a nonzero (finite) table value is infinite, times zero NaN.
        let n1 = am > BF16_INF || (am == BF16_INF && bm == 0u);
        let n2 = cm > BF16_INF || (cm == BF16_INF && dm == 0u);
        let i1 = am == BF16_INF && bm != 0u;
        let i2 = cm == BF16_INF && dm != 0u;
        if (n1 || n2 || (i1 && i2 && s1 != s2)) {
            return BF16_QNAN;
        }
        return (select(s2, s1, i1) << 15u) | BF16_INF;
    }
    let z1 = am == 0u || bm == 0u;
    let z2 = cm == 0u || dm == 0u;
    if (z1 && z2) {
        // IEEE: the sum of two zeros is -0 only when both are -0.
        return (s1 & s2) << 15u;
    }
    // Exponent fields: k of the larger x with a nonzero product (0: only subnormal x).
    let ar = am >> 7u;
    let cr = cm >> 7u;
    let k = max(select(ar, 0u, z1), select(cr, 0u, z2));
    if (k == 0u) {
        return UNDECIDED;
    }
    // Scaled fields f' = f + 127 - k (a subnormal x counts as field 0): a product is kept when
    // f' + (table field) >= 164, else it is below 2^(f' + field - 252) <= 2^-89 and left out.
    // A subnormal x whose product matters is left to dot2_exact.
    let keep1 = !z1 && ar + bf >= 37u + k;
    let keep2 = !z2 && cr + df >= 37u + k;
    let a2 = ar + 127u - k;
    let c2 = cr + 127u - k;
    if ((keep1 && ar == 0u) || (keep2 && cr == 0u)) {
        return UNDECIDED;
    }
    let dropped = (!z1 && !keep1) || (!z2 && !keep2);
    let x0 = select(0.0, bitcast<f32>(((a & 0x807Fu) | (a2 << 7u)) << 16u), keep1);
    let x1 = select(0.0, bitcast<f32>(((c & 0x807Fu) | (c2 << 7u)) << 16u), keep2);
    let pa = two_prod_split(x0, bitcast<f32>(b));
    let pb = two_prod_split(x1, bitcast<f32>(d));
    let se = two_sum(pa.x, pb.x);
    let tau = (se.y + pa.y) + pb.y;
    let hl = two_sum(se.x, tau);
    let m = abs(pa.x) + abs(pb.x);
    let hb = bitcast<u32>(hl.x);
    let mid = (hb & 0xFFFF0000u) | 0x8000u;
    var r: u32;
    if (hb != mid) {
        // |err| < 2^-24 |H|, checked as 2^24 |err| <= 2^-20 m (+ 2^-64) < |H|.
        if (!(abs(hl.x) > m * 0x1p-20 + select(0.0, 0x1p-64, dropped))) {
            return UNDECIDED;
        }
        r = (hb + 0x8000u) >> 16u;
    } else {
        // |L| > |err|, checked as 2^44 |L| > m (+ 2^-44).
        if (!(abs(hl.y) * 0x1p44 > m + select(0.0, 0x1p-44, dropped))) {
            return UNDECIDED;
        }
        r = (hb >> 16u) + select(0u, 1u, (bitcast<u32>(hl.y) >> 31u) == (hb >> 31u));
    }
    // Back to the true exponent: field + k - 127; 255 or more overflows to infinity (the
    // rounding with an unbounded exponent reached 2^128), 0 or less is a subnormal result.
    let rf = i32((r >> 7u) & 0xFFu) + i32(k) - 127;
    if (rf >= 255) {
        return (r & 0x8000u) | BF16_INF;
    }
    if (rf <= 0) {
        return UNDECIDED;
    }
    return (r & 0x807Fu) | (u32(rf) << 7u);
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
// |r − mid| > twice the bound make the bound less than a quarter. Then
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
// more, an exact or near tie. The f16 analogue of dot2_split, whose error
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
