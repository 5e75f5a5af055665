// bf16.wgsl — bfloat16 codec and the correctly rounded two-product sum.
//
// WGSL has no bf16 type, so bf16 values travel as 16-bit patterns inside u32 words and every
// decision that must be exact is made on integer bits. WGSL lets implementations flush
// subnormals, assume no NaN/inf and contract `a*b + c*d` into FMAs, so the f32 unit is only
// trusted where an error bound proves that the rounding cannot change (`dot2_fast`); every
// other case goes through `dot2_exact`, which uses u32 arithmetic only.
//
// Conventions: `a`, `c` are bf16 patterns (low 16 bits of a u32), `b`, `d` are f32 bit
// patterns. Results are bf16 patterns in the low 16 bits.

const BF16_QNAN: u32 = 0x7FC0u;
const BF16_INF: u32 = 0x7F80u;
const F32_INF: u32 = 0x7F800000u;
const UNDECIDED: u32 = 0xFFFFFFFFu;

// A finite magnitude as `sig * 2^exp`.
struct Decoded {
    sig: u32,
    exp: i32,
}

// Magnitude of a finite bf16 (sign already removed).
fn decode_bf16(m: u32) -> Decoded {
    let e = m >> 7u;
    let f = m & 0x7Fu;
    if (e == 0u) {
        return Decoded(f, -133);
    }
    return Decoded(f | 0x80u, i32(e) - 134);
}

// Magnitude of a finite f32 (sign already removed).
fn decode_f32(m: u32) -> Decoded {
    let e = m >> 23u;
    let f = m & 0x7FFFFFu;
    if (e == 0u) {
        return Decoded(f, -149);
    }
    return Decoded(f | 0x800000u, i32(e) - 150);
}

// 64-bit unsigned integers as vec2<u32>(low, high). WGSL masks shift amounts to 5 bits, so
// every helper handles shifts of 0 and >= 32 explicitly.

// x << k for k in [0, 63].
fn shl64(x: u32, k: u32) -> vec2<u32> {
    if (k == 0u) {
        return vec2<u32>(x, 0u);
    }
    if (k < 32u) {
        return vec2<u32>(x << k, x >> (32u - k));
    }
    return vec2<u32>(0u, x << (k - 32u));
}

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

// The low 32 bits of r >> k, for k in [1, 63] (the callers' results fit 9 bits).
fn shr64_low(r: vec2<u32>, k: u32) -> u32 {
    if (k < 32u) {
        return (r.x >> k) | (r.y << (32u - k));
    }
    return r.y >> (k - 32u);
}

// Bit j of r, for j in [0, 63].
fn bit64(r: vec2<u32>, j: u32) -> u32 {
    if (j < 32u) {
        return (r.x >> j) & 1u;
    }
    return (r.y >> (j - 32u)) & 1u;
}

// Whether r mod 2^j is non-zero, for j in [0, 63].
fn low_bits_nonzero(r: vec2<u32>, j: u32) -> bool {
    if (j == 0u) {
        return false;
    }
    if (j < 32u) {
        return (r.x << (32u - j)) != 0u;
    }
    if (j == 32u) {
        return r.x != 0u;
    }
    return r.x != 0u || (r.y << (64u - j)) != 0u;
}

// Correctly rounded bf16 (nearest, ties to even) of the exact value a*b + c*d, with IEEE
// special values and the canonical NaN. Integer arithmetic only.
fn dot2_exact(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFu;
    let bm = b & 0x7FFFFFFFu;
    let cm = c & 0x7FFFu;
    let dm = d & 0x7FFFFFFFu;
    if (am > BF16_INF || bm > F32_INF || cm > BF16_INF || dm > F32_INF) {
        return BF16_QNAN;
    }
    let s1 = ((a >> 15u) ^ (b >> 31u)) & 1u;
    let s2 = ((c >> 15u) ^ (d >> 31u)) & 1u;

    // Infinite products: inf * 0 is NaN, inf - inf is NaN, otherwise the infinity wins.
    let inf1 = am == BF16_INF || bm == F32_INF;
    let inf2 = cm == BF16_INF || dm == F32_INF;
    if ((inf1 && (am == 0u || bm == 0u)) || (inf2 && (cm == 0u || dm == 0u))) {
        return BF16_QNAN;
    }
    if (inf1 || inf2) {
        if (inf1 && inf2 && s1 != s2) {
            return BF16_QNAN;
        }
        return (select(s2, s1, inf1) << 15u) | BF16_INF;
    }

    // Exact products: 8-bit by 24-bit significands fit in 32 bits.
    let da = decode_bf16(am);
    let db = decode_f32(bm);
    let dc = decode_bf16(cm);
    let dd = decode_f32(dm);
    var m1 = da.sig * db.sig;
    var e1 = da.exp + db.exp;
    var m2 = dc.sig * dd.sig;
    var e2 = dc.exp + dd.exp;
    if (m1 == 0u && m2 == 0u) {
        // IEEE: the sum of two zeros is -0 only when both are -0.
        return (s1 & s2) << 15u;
    }
    // Normalise so that the leading one sits at bit 31: value = m * 2^e.
    if (m1 != 0u) {
        let n = countLeadingZeros(m1);
        m1 = m1 << n;
        e1 = e1 - i32(n);
    }
    if (m2 != 0u) {
        let n = countLeadingZeros(m2);
        m2 = m2 << n;
        e2 = e2 - i32(n);
    }
    // Order by magnitude: (mb, eb, sb) is the larger term.
    let swap = m1 == 0u || (m2 != 0u && (e2 > e1 || (e2 == e1 && m2 > m1)));
    let mb = select(m1, m2, swap);
    let eb = select(e1, e2, swap);
    let sb = select(s1, s2, swap);
    let ms = select(m2, m1, swap);
    let es = select(e2, e1, swap);
    let ss = select(s2, s1, swap);

    // Fixed point with the unit 2^(eb - 31): A = mb * 2^31 < 2^63, B <= A, so A + B < 2^64.
    // When the smaller term reaches below the unit, its lost bits are a sticky bit: the true
    // sum lies strictly between R and R + 1.
    let big = shl64(mb, 31u);
    var small = vec2<u32>(0u, 0u);
    var sticky = false;
    if (ms != 0u) {
        let gap = u32(eb - es);
        if (gap <= 31u) {
            small = shl64(ms, 31u - gap);
        } else if (gap < 63u) {
            small = vec2<u32>(ms >> (gap - 31u), 0u);
            sticky = (ms << (63u - gap)) != 0u;
        } else {
            sticky = true;
        }
    }
    var r: vec2<u32>;
    if (sb != ss) {
        r = sub64(big, small);
        if (sticky) {
            r = sub64(r, vec2<u32>(1u, 0u));
        }
    } else {
        r = add64(big, small);
    }
    if (r.x == 0u && r.y == 0u && !sticky) {
        // Exact cancellation rounds to +0.
        return 0u;
    }

    // Round R (plus sticky) to 8 significant bits, or to the subnormal grid 2^-133.
    var lead: i32;
    if (r.y != 0u) {
        lead = 63 - i32(countLeadingZeros(r.y));
    } else {
        lead = 31 - i32(countLeadingZeros(r.x));
    }
    let shift = max(lead - 7, -102 - eb);
    var q: u32;
    if (shift <= 0) {
        // Exact: at most 8 significant bits and no sticky (sticky implies lead >= 62).
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
    // value = q * 2^u with u = shift + eb - 31; q in [128, 256] is normal, q < 128 subnormal,
    // and ((u + 133) << 7) + q is the bf16 pattern in both cases (a carry to 256 bumps the
    // exponent; reaching 0x7F80 is the IEEE overflow to infinity).
    let biased = shift + eb + 102;
    var mag = BF16_INF;
    if (biased < 255) {
        mag = min((u32(biased) << 7u) + q, BF16_INF);
    }
    return (sb << 15u) | mag;
}

// The second stage: error-free f32 steps for the outputs dot2_fast leaves undecided.

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

// Widen a bf16 pattern to the f32 with the same value (exact).
fn widen(h: u32) -> f32 {
    return bitcast<f32>(h << 16u);
}

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

// Plain f32 arithmetic and one round to nearest even: what other implementations do. Not
// exact (double rounding, driver FMA contraction, flushed subnormals); for comparison.
fn dot2_plain(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let rb = bitcast<u32>(widen(a) * bitcast<f32>(b) + widen(c) * bitcast<f32>(d));
    if ((rb & 0x7FFFFFFFu) > F32_INF) {
        return BF16_QNAN;
    }
    return ((rb + 0x7FFFu + ((rb >> 16u) & 1u)) >> 16u) & 0xFFFFu;
}

// ---------------------------------------------------------------------------------------------
// The `hf` mode (docs/CONTRACT.md §2): Hugging Face transformers' eager bf16 arithmetic, bit for bit.
// torch (CPU) computes a bf16 multiply or add in f32 (IEEE, subnormals kept) and rounds the f32
// to bf16 with round-to-nearest-even on the bits. Drivers may flush f32 subnormals and fuse
// multiply-adds, so every step is emulated here on integer bits; no f32 unit is used.

// torch's f32 -> bf16 rounding (c10's round_to_nearest_even, vectorised the same way): add
// 0x7FFF plus the kept lsb and truncate. Correct for subnormals; carries into infinity on
// overflow. NaN -> the canonical NaN.
fn f32_to_bf16_rne(u: u32) -> u32 {
    if ((u & 0x7FFFFFFFu) > F32_INF) {
        return BF16_QNAN;
    }
    return (u + 0x7FFFu + ((u >> 16u) & 1u)) >> 16u;
}

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
