//! The independent oracle of the `hf` mode (docs/CONTRACT.md §2): transformers' eager bf16
//! `apply_rotary_pos_emb`, step by step, from first principles and sharing no code with
//! `src/` (nor host f32 arithmetic, which the CPU path uses).
//!
//! Each torch step is "the exact value, rounded to f32 (nearest even, f32 subnormals kept),
//! then rounded to bf16" — the exact value formed with `BigInt`s, the f32 rounding written
//! out here, the bf16 rounding `half::bf16::from_f32` (round to nearest even):
//!
//!   c = bf16(cos), s = bf16(sin); y0 = bf16(bf16(x0·c) + bf16(−x1·s)); y1 = bf16(bf16(x1·c) + bf16(x0·s))
//!
//! Every NaN is the canonical `0x7FC0`.

use num_bigint::BigInt;
use num_traits::{One, Zero};

use super::oracle::{decode_bf16, OracleView, Val, QNAN};

/// Rounds `(-1)^neg · mag · 2^exp` (exact, `mag >= 0`) to the nearest f32, ties to even,
/// with f32 subnormals (quantum 2^−149) and overflow to infinity; returns the f32.
fn round_to_f32(neg: bool, mag: &BigInt, exp: i64) -> f32 {
    let sign = if neg { -1.0f32 } else { 1.0 };
    if mag.is_zero() {
        return sign * 0.0;
    }
    let top = mag.bits() as i64 - 1 + exp;
    let quantum = (top - 23).max(-149);
    let mut k: BigInt = if exp >= quantum {
        mag << ((exp - quantum) as usize)
    } else {
        let shift = (quantum - exp) as usize;
        let kept: BigInt = mag >> shift;
        let rem: BigInt = mag - (&kept << shift);
        let half: BigInt = BigInt::one() << (shift - 1);
        let odd = (&kept % 2u32) == BigInt::one();
        if rem > half || (rem == half && odd) {
            kept + 1
        } else {
            kept
        }
    };
    let mut q = quantum;
    if k == BigInt::one() << 24 {
        k = BigInt::one() << 23;
        q += 1;
    }
    let k: u64 = k.try_into().expect("fits");
    if q + 23 > 127 {
        return sign * f32::INFINITY;
    }
    // k · 2^q, k < 2^24 and q >= −149: exact in f64, and exactly an f32.
    let v = k as f64 * 2f64.powi(q as i32);
    let f = v as f32;
    assert_eq!(f as f64, v, "the rounded value is an f32");
    sign * f
}

/// torch's f32 → bf16 step (round to nearest even); NaN → the canonical NaN.
fn to_bf16(f: f32) -> u16 {
    if f.is_nan() {
        QNAN
    } else {
        half::bf16::from_f32(f).to_bits()
    }
}

/// An exact finite value as `(negative, mantissa, exponent)`.
fn fin(v: Val) -> Option<(bool, BigInt, i64)> {
    match v {
        Val::Fin { neg, mant, exp } => Some((neg, BigInt::from(mant), exp)),
        _ => None,
    }
}

/// torch's bf16 product `a * b`: exact product → f32 → bf16.
pub fn hf_mul(a: u16, b: u16) -> u16 {
    let (x, y) = (decode_bf16(a), decode_bf16(b));
    match (x, y) {
        (Val::Nan, _) | (_, Val::Nan) => QNAN,
        (Val::Inf { neg: p }, Val::Inf { neg: q }) => to_bf16(if p ^ q {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        }),
        (Val::Inf { neg: p }, Val::Fin { neg: q, mant, .. })
        | (Val::Fin { neg: q, mant, .. }, Val::Inf { neg: p }) => {
            if mant == 0 {
                QNAN
            } else {
                to_bf16(if p ^ q {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                })
            }
        }
        _ => {
            let (p, m, e) = fin(x).unwrap();
            let (q, n, f) = fin(y).unwrap();
            to_bf16(round_to_f32(p ^ q, &(m * n), e + f))
        }
    }
}

/// torch's bf16 sum `a + b`: exact sum → f32 → bf16, IEEE specials and signed zeros.
pub fn hf_add(a: u16, b: u16) -> u16 {
    let (x, y) = (decode_bf16(a), decode_bf16(b));
    match (x, y) {
        (Val::Nan, _) | (_, Val::Nan) => QNAN,
        (Val::Inf { neg: p }, Val::Inf { neg: q }) if p != q => QNAN,
        (Val::Inf { neg }, _) | (_, Val::Inf { neg }) => {
            if neg {
                0xFF80
            } else {
                0x7F80
            }
        }
        _ => {
            let (p, m, e) = fin(x).unwrap();
            let (q, n, f) = fin(y).unwrap();
            let lo = e.min(f);
            let sm = |neg: bool, m: BigInt, e: i64| {
                let v = m << ((e - lo) as usize);
                if neg {
                    -v
                } else {
                    v
                }
            };
            let sum = sm(p, m.clone(), e) + sm(q, n.clone(), f);
            if sum.is_zero() {
                // IEEE: −0 only when both terms are −0 (zeros); an exact cancellation is +0.
                let both_neg_zero = m.is_zero() && n.is_zero() && p && q;
                return if both_neg_zero { 0x8000 } else { 0x0000 };
            }
            let neg = sum < BigInt::zero();
            let mag = if neg { -sum } else { sum };
            to_bf16(round_to_f32(neg, &mag, lo))
        }
    }
}

/// One rotated pair in the `hf` mode, `c`, `s` the f32 table bits; `s → −s` when `inverse`.
pub fn hf_pair(x0: u16, x1: u16, c: u32, s: u32, inverse: bool) -> (u16, u16) {
    let s = if inverse { s ^ 0x8000_0000 } else { s };
    let cb = to_bf16(f32::from_bits(c));
    let sb = to_bf16(f32::from_bits(s));
    let neg_x1 = x1 ^ 0x8000;
    (
        hf_add(hf_mul(x0, cb), hf_mul(neg_x1, sb)),
        hf_add(hf_mul(x1, cb), hf_mul(x0, sb)),
    )
}

/// The buffer `x` with the view rotated in the `hf` mode; everything else unchanged.
pub fn hf_rotate_view(
    x: &[u16],
    v: &OracleView,
    table: impl Fn(usize, usize) -> (u32, u32),
) -> Vec<u16> {
    let mut y = x.to_vec();
    let [nb, ns, nh, _] = v.dims;
    let half = v.rotary_dim / 2;
    for b in 0..nb {
        for s in 0..ns {
            for h in 0..nh {
                let base = v.offset + b * v.strides[0] + s * v.strides[1] + h * v.strides[2];
                for i in 0..half {
                    let (a, c) = if v.half_split {
                        (base + i, base + half + i)
                    } else {
                        (base + 2 * i, base + 2 * i + 1)
                    };
                    let (cs, sn) = table(v.rows[b * ns + s], i);
                    let (y0, y1) = hf_pair(x[a], x[c], cs, sn, v.inverse);
                    y[a] = y0;
                    y[c] = y1;
                }
            }
        }
    }
    y
}

#[cfg(test)]
mod hf_oracle_self_tests {
    use super::*;

    /// `(a, b, torch's a*b in bf16)`: hand-derived.
    #[rustfmt::skip]
    const MUL: &[(u16, u16, u16)] = &[
        (0x3F80, 0x3F80, 0x3F80), // 1·1 = 1
        (0x3FC0, 0x3FC0, 0x4010), // 1.5·1.5 = 2.25, exact
        (0x3F81, 0x3F81, 0x3F82), // (1+2^-7)^2 = 1 + 2^-6 + 2^-14: rounds down to 1+2^-6
        (0x3F83, 0x3FC0, 0x3FC4), // (1+3·2^-7)·1.5 = 1.5 + 4.5·2^-7 = 1.5 + 2^-5 + 2^-8: tie, even -> 1.5+2^-5
        (0x0080, 0x3F00, 0x0040), // 2^-126 · 0.5 = 2^-127: bf16 subnormal, exact
        // 2^-133 · 2^-16·(1+2^-7) = 2^-149·(1+2^-7): f32 rounds it to 2^-149 (its smallest
        // subnormal), bf16 then to +0.
        (0x0001, 0x3781, 0x0000),
        // 2^-126·(1+2^-7) · 2^-1·(1+2^-7) = 2^-127·(1 + 2^-6 + 2^-14): an f32 subnormal (exact),
        // then bf16's subnormal grid 2^-133: 64 + 1 + 2^-8 units -> 65 (0x0041).
        (0x0081, 0x3F01, 0x0041),
        (0x8000, 0x3F80, 0x8000), // -0 · 1 = -0
        (0x7F80, 0x0000, 0x7FC0), // inf · 0 = NaN
        (0x7F80, 0xBF80, 0xFF80), // inf · -1 = -inf
        (0x7F7F, 0x4000, 0x7F80), // max · 2 overflows
    ];

    #[test]
    fn hf_oracle_products() {
        for &(a, b, want) in MUL {
            assert_eq!(hf_mul(a, b), want, "{a:#06x} * {b:#06x}");
        }
    }

    #[test]
    fn hf_oracle_sums() {
        assert_eq!(hf_add(0x3F80, 0xBF80), 0x0000); // 1 - 1 = +0
        assert_eq!(hf_add(0x8000, 0x8000), 0x8000); // -0 + -0 = -0
        assert_eq!(hf_add(0x8000, 0x0000), 0x0000); // -0 + +0 = +0
        assert_eq!(hf_add(0x7F80, 0xFF80), QNAN); // inf - inf
                                                  // 1 + 2^-8: exact in f32, a bf16 tie -> even (1).
        assert_eq!(hf_add(0x3F80, 0x3B80), 0x3F80);
        // 1 + 2^-8·(1+2^-7): above the tie -> 1 + 2^-7.
        assert_eq!(hf_add(0x3F80, 0x3B81), 0x3F81);
        // 2^-126 - 2^-127·1.5 = 2^-128: a subnormal result, kept.
        assert_eq!(hf_add(0x0080, 0x8040 | 0x0020), 0x0020);
    }

    #[test]
    fn hf_oracle_matches_f64_on_random_normal_values() {
        // Products and sums of these values (exponents within 40 binades) are exact in f64
        // and in f32, so bf16 of the f64 is torch's answer.
        use rand::Rng;
        let mut r = super::super::rng(0x4F);
        for _ in 0..20_000 {
            let a = half::bf16::from_bits(r.random_range(0x3800..0x4800u16));
            let b = r.random_range(0x3800..0x4000u16) | (r.random::<u16>() & 0x8000);
            let b = half::bf16::from_bits(b);
            let p = half::bf16::from_f64(a.to_f64() * b.to_f64());
            assert_eq!(hf_mul(a.to_bits(), b.to_bits()), p.to_bits());
            let s = half::bf16::from_f64(a.to_f64() + b.to_f64());
            assert_eq!(hf_add(a.to_bits(), b.to_bits()), s.to_bits(), "{a} + {b}");
        }
    }
}
