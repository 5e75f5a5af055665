// codec.wgsl — bf16, f16 and f32 bit patterns: special values, decoding a finite magnitude,
// exact widening to f32, and round-to-nearest-even narrowing on the bits.
//
// WGSL has no bf16 type (and f16 needs an extension), so bf16 and f16 values travel as 16-bit
// patterns, two per u32 word (x[2i] in the low half); f32 one per word. Conventions in every
// arithmetic file: `a`, `c` are tensor patterns, `b`, `d` f32 table patterns; results are
// patterns of the tensor's format.

const BF16_QNAN: u32 = 0x7FC0u;
const BF16_INF: u32 = 0x7F80u;
const F32_INF: u32 = 0x7F800000u;
const F16_QNAN: u32 = 0x7E00u;
const F16_INF: u32 = 0x7C00u;
const F32_QNAN: u32 = 0x7FC00000u;
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

// Magnitude of a finite f16 (sign already removed): 11-bit significand.
fn decode_f16(m: u32) -> Decoded {
    let e = m >> 10u;
    let f = m & 0x3FFu;
    if (e == 0u) {
        return Decoded(f, -24);
    }
    return Decoded(f | 0x400u, i32(e) - 25);
}

// Widen a bf16 pattern to the f32 with the same value (exact).
fn widen(h: u32) -> f32 {
    return bitcast<f32>(h << 16u);
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

// torch's f32 -> bf16 rounding (c10's round_to_nearest_even, vectorised the same way): add
// 0x7FFF plus the kept lsb and truncate. Correct for subnormals; carries into infinity on
// overflow. NaN -> the canonical NaN.
fn f32_to_bf16_rne(u: u32) -> u32 {
    if ((u & 0x7FFFFFFFu) > F32_INF) {
        return BF16_QNAN;
    }
    return (u + 0x7FFFu + ((u >> 16u) & 1u)) >> 16u;
}

// f32 -> f16, round to nearest, ties to even, on the bits: the same result as the exact path's
// 1·v + (-0)·0 (signed zeros, subnormals, overflow to infinity, the canonical NaN 0x7E00 for
// every NaN), in a few integer steps. For the `fast` and `hf` modes (through the exact path it
// would cost `fast` on f16 three quarters of a copy's speed).
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
