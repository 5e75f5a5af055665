//! The exact arithmetic of one pair (docs/CONTRACT.md §2): the correctly rounded bf16, f16 or
//! f32 (nearest, ties to even) of the exact `a·b + c·d`, `a`, `c` elements of the tensor's
//! dtype, `b`, `d` f32 table values, with IEEE special values and the canonical NaNs
//! `0x7FC0` / `0x7E00` / `0x7FC00000` ([`Dtype::canonical_nan`](crate::Dtype::canonical_nan)).
//!
//! Why it is exact (ARCHITECTURE.md, "f16 and f32 tensors"): a bf16 × f32 product has at most
//! 8 + 24 = 32 significant bits, an f16 × f32 product 11 + 24 = 35 and an f32 × f32 product
//! 48, all ≤ 53, and their magnitudes lie in [2⁻²⁹⁸, 2²⁵⁶], so each product is exact in f64
//! (no f64 subnormal, no overflow). The f64 sum `r` of the two is rounded once, and need not
//! be exact; but rounding is monotonic and every midpoint between two neighbours of the
//! output grid has P + 1 ≤ 25 significant bits, so it is an f64. If the exact value `v` lies
//! strictly on one side of a midpoint `μ`, `r` lies on the same side or on `μ` itself. Hence
//! rounding `r` to P bits gives the rounding of `v` except when `r == μ`; there Knuth's
//! TwoSum yields the exact error `v − r` (exact in f64 for finite operands without overflow,
//! subnormals included), whose sign decides, and a zero error is a true tie (ties to even).
//! The argument needs nothing but P ≤ 52, which is why f32 needs no 128-bit arithmetic. IEEE
//! f64 arithmetic gives the special values (inf·0 and inf − inf are NaN, signed zeros of
//! exact cancellations); NaNs are made canonical.
//!
//! These are the scalar reference: the vectorised blocks ([`super::simd`]) recompute every
//! output they cannot prove with them.

use half::f16;

use crate::dtype::{BF16_QNAN, F16_QNAN, F32_QNAN};
use crate::shape::Direction;

/// An output format: fraction bits, exponent bits and the canonical NaN.
#[derive(Clone, Copy)]
struct Format {
    mbits: u32,
    ebits: u32,
    nan: u64,
}

const BF16_FORMAT: Format = Format {
    mbits: 7,
    ebits: 8,
    nan: BF16_QNAN as u64,
};
const F16_FORMAT: Format = Format {
    mbits: 10,
    ebits: 5,
    nan: F16_QNAN as u64,
};
const F32_FORMAT: Format = Format {
    mbits: 23,
    ebits: 8,
    nan: F32_QNAN as u64,
};

impl Format {
    fn inf(self) -> u64 {
        ((1u64 << self.ebits) - 1) << self.mbits
    }
    fn sign_bit(self) -> u64 {
        1u64 << (self.mbits + self.ebits)
    }
}

/// Rounds the exact `p + q` (both exact f64 products) to `fmt`, nearest, ties to even.
/// Always inlined, so that each format's constants fold into its own copy.
#[inline(always)]
fn round_sum(p: f64, q: f64, fmt: Format) -> u64 {
    let r = p + q;
    let bits = r.to_bits();
    let sign = if bits >> 63 == 1 { fmt.sign_bit() } else { 0 };
    let mag = bits & 0x7FFF_FFFF_FFFF_FFFF;
    if mag >= 0x7FF0_0000_0000_0000 {
        return if mag == 0x7FF0_0000_0000_0000 {
            sign | fmt.inf()
        } else {
            fmt.nan
        };
    }
    if mag == 0 {
        // An exact zero: f64 arithmetic already gave IEEE's sign (−0 only from −0 + −0).
        return sign;
    }
    // No f64 subnormal can occur (|p|, |q| ≥ 2⁻²⁹⁸ or 0, and r == 0 only when p + q == 0).
    let e = (mag >> 52) as i64;
    let m = (mag & ((1u64 << 52) - 1)) | (1u64 << 52);
    // value = m · 2^(e − 1075); keep P = mbits + 1 bits, or stop at the subnormal quantum
    // 2^qmin, qmin = 2 − 2^(ebits−1) − mbits.
    let p_bits = fmt.mbits as i64 + 1;
    let bias = (1i64 << (fmt.ebits - 1)) - 1;
    let qmin = 1 - bias - fmt.mbits as i64;
    let shift = (53 - p_bits).max(qmin + 1075 - e);
    if shift > 53 {
        // Below half the smallest subnormal: rounds to a signed zero.
        return sign;
    }
    let kept = m >> shift;
    let rem = m & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    let up = if rem != half {
        rem > half
    } else {
        // r sits on a midpoint: the exact error of the addition (TwoSum) decides.
        let pv = r - q;
        let qv = r - pv;
        let err = (p - pv) + (q - qv);
        if err == 0.0 {
            kept & 1 == 1
        } else {
            (err > 0.0) == (r > 0.0)
        }
    };
    let kept = kept + up as u64;
    // value = kept · 2^u, u = e − 1075 + shift. For a normal result kept ∈ [2^(P−1), 2^P] and
    // the pattern is (biased exponent << mbits) + kept − 2^(P−1) = ((u + P − 1 + bias − 1)
    // << mbits) + kept; for a subnormal one u = qmin makes that shift count 0 and the pattern
    // kept. A carry to 2^P bumps the exponent; reaching the infinity pattern is RNE overflow.
    let field = e - 1075 + shift + p_bits - 2 + bias;
    let inf_field = (1i64 << fmt.ebits) - 1;
    let m_out = if field >= inf_field {
        fmt.inf()
    } else {
        (((field as u64) << fmt.mbits) + kept).min(fmt.inf())
    };
    sign | m_out
}

/// bf16 bits widened exactly to f64.
#[inline(always)]
pub(super) fn widen(h: u16) -> f64 {
    f32::from_bits((h as u32) << 16) as f64
}

/// Correctly rounded bf16 (nearest, ties to even) of `a·b + c·d`, `a`, `c` bf16 patterns.
#[inline]
pub fn dot2(a: u16, b: f32, c: u16, d: f32) -> u16 {
    // The products have ≤ 32 bits.
    let p = widen(a) * b as f64;
    let q = widen(c) * d as f64;
    round_sum(p, q, BF16_FORMAT) as u16
}

/// Correctly rounded f16 of `a·b + c·d`, `a`, `c` f16 patterns, `b`, `d` f32 table values.
#[inline]
pub fn dot2_f16(a: u16, b: f32, c: u16, d: f32) -> u16 {
    // f16 → f64 is exact; the products have ≤ 35 bits.
    let p = f16::from_bits(a).to_f64() * b as f64;
    let q = f16::from_bits(c).to_f64() * d as f64;
    round_sum(p, q, F16_FORMAT) as u16
}

/// Correctly rounded f32 of `a·b + c·d`, `a`, `c` f32 patterns, `b`, `d` f32 table values.
#[inline]
pub fn dot2_f32(a: u32, b: f32, c: u32, d: f32) -> u32 {
    // The products have ≤ 48 bits; decoding through the bits keeps subnormal inputs exact.
    let p = f32::from_bits(a) as f64 * b as f64;
    let q = f32::from_bits(c) as f64 * d as f64;
    round_sum(p, q, F32_FORMAT) as u32
}

#[inline]
fn signed_sin(sin: f32, direction: Direction) -> f32 {
    match direction {
        Direction::Forward => sin,
        Direction::Inverse => -sin,
    }
}

/// Rotates one pair: `(x0·cos − x1·sin, x0·sin + x1·cos)`, or by −angle for `Inverse`.
#[inline]
pub fn rotate_pair(x0: u16, x1: u16, cos: f32, sin: f32, direction: Direction) -> (u16, u16) {
    let sin = signed_sin(sin, direction);
    (dot2(x0, cos, x1, -sin), dot2(x0, sin, x1, cos))
}

/// Rotates one f16 pair: `(x0·cos − x1·sin, x0·sin + x1·cos)`, or by −angle for `Inverse`.
#[inline]
pub fn rotate_pair_f16(x0: u16, x1: u16, cos: f32, sin: f32, direction: Direction) -> (u16, u16) {
    let sin = signed_sin(sin, direction);
    (dot2_f16(x0, cos, x1, -sin), dot2_f16(x0, sin, x1, cos))
}

/// Rotates one f32 pair: `(x0·cos − x1·sin, x0·sin + x1·cos)`, or by −angle for `Inverse`.
#[inline]
pub fn rotate_pair_f32(x0: u32, x1: u32, cos: f32, sin: f32, direction: Direction) -> (u32, u32) {
    let sin = signed_sin(sin, direction);
    (dot2_f32(x0, cos, x1, -sin), dot2_f32(x0, sin, x1, cos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_edges() {
        // 1·1 + 0 = 1; 65504 + 16 = 65520 is the tie between 65504 (odd) and 2¹⁶ (even):
        // RNE overflows to inf; just below it stays 65504.
        assert_eq!(dot2_f16(0x3C00, 1.0, 0, 0.0), 0x3C00);
        assert_eq!(dot2_f16(0x7BFF, 1.0, 0x4C00, 1.0), 0x7C00);
        assert_eq!(dot2_f16(0x7BFF, 1.0, 0x4C00, 1.0 - f32::EPSILON), 0x7BFF);
        // The smallest subnormal times 0.5 is a tie between 0 and 2⁻²⁴: even, so +0.
        assert_eq!(dot2_f16(0x0001, 0.5, 0, 0.0), 0);
        assert_eq!(dot2_f16(0x0001, 0.75, 0, 0.0), 0x0001);
        // inf · 0 and inf − inf are the canonical NaN; −0 only from −0 + −0.
        assert_eq!(dot2_f16(0x7C00, 0.0, 0, 0.0), F16_QNAN);
        assert_eq!(dot2_f16(0x7C00, 1.0, 0x7C00, -1.0), F16_QNAN);
        assert_eq!(dot2_f16(0x8000, 1.0, 0x8000, 1.0), 0x8000);
        assert_eq!(dot2_f16(0x3C00, 1.0, 0x3C00, -1.0), 0);
    }

    #[test]
    fn f32_edges() {
        // (1 + 2⁻²³)·1 + 2⁻²⁴(1 + 2⁻²³)·(1 − 2⁻²³) = 1 + 3·2⁻²⁴ − 2⁻⁷⁰: just below the midpoint
        // between 1 + 2⁻²³ and 1 + 2⁻²², but the f64 sum lands on it (2⁻⁷⁰ is lost), where ties
        // to even would say 1 + 2⁻²². Only the TwoSum error gets 1 + 2⁻²³.
        let d = f32::from_bits(0x3F7F_FFFE);
        assert_eq!(dot2_f32(0x3F80_0001, 1.0, 0x3380_0001, d), 0x3F80_0001);
        // The same with the tail above the midpoint rounds up.
        assert_eq!(dot2_f32(0x3F80_0001, 1.0, 0x3380_0001, 1.0), 0x3F80_0002);
        // Subnormal inputs and results are kept, not flushed; 1.5 quanta is a tie to even.
        assert_eq!(dot2_f32(1, 1.0, 0, 0.0), 1);
        assert_eq!(dot2_f32(3, 0.5, 0, 0.0), 2);
        assert_eq!(dot2_f32(0x7F80_0000, 0.0, 0, 0.0), F32_QNAN);
        assert_eq!(
            dot2_f32(f32::MAX.to_bits(), 1.0, f32::MAX.to_bits(), 1.0),
            0x7F80_0000
        );
    }
}
