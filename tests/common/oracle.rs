//! The independent exact oracle: slow, obvious, and sharing no code with `src/`.
//!
//! Every finite input is decoded to `integer × 2^exponent`; the two products are exact
//! integers times powers of two; their sum is formed exactly as a `BigInt` at the smaller
//! exponent, and rounded once to bf16 (nearest, ties to even) with the quantum chosen from the
//! sum's magnitude, clamped at the subnormal quantum (2^−133 for bf16, 2^−24 for f16,
//! 2^−149 for f32). Special values follow IEEE arithmetic of `a·b + c·d`, and every NaN is the
//! canonical one of the output format (`0x7FC0`, `0x7E00`, `0x7FC00000`).

use num_bigint::{BigInt, Sign};
use num_traits::{One, Signed, Zero};

/// The canonical quiet NaN of the contract.
pub const QNAN: u16 = 0x7FC0;

/// A decoded IEEE value: NaN, a signed infinity, or `(-1)^neg · mant · 2^exp` (mant may be 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val {
    Nan,
    Inf { neg: bool },
    Fin { neg: bool, mant: u64, exp: i64 },
}

/// Decodes a binary floating-point pattern with `ebits` exponent and `mbits` fraction bits.
fn decode(bits: u64, ebits: u32, mbits: u32) -> Val {
    let neg = (bits >> (ebits + mbits)) & 1 == 1;
    let e = (bits >> mbits) & ((1 << ebits) - 1);
    let f = bits & ((1 << mbits) - 1);
    let bias = (1i64 << (ebits - 1)) - 1;
    if e == (1 << ebits) - 1 {
        return if f == 0 { Val::Inf { neg } } else { Val::Nan };
    }
    if e == 0 {
        // Subnormal (or zero): f · 2^(1 − bias − mbits).
        Val::Fin {
            neg,
            mant: f,
            exp: 1 - bias - mbits as i64,
        }
    } else {
        Val::Fin {
            neg,
            mant: f | (1 << mbits),
            exp: e as i64 - bias - mbits as i64,
        }
    }
}

/// Decodes a bf16 bit pattern.
pub fn decode_bf16(bits: u16) -> Val {
    decode(bits as u64, 8, 7)
}

/// Decodes an f32 bit pattern.
pub fn decode_f32(bits: u32) -> Val {
    decode(bits as u64, 8, 23)
}

/// The exact IEEE product.
fn mul(x: Val, y: Val) -> Val {
    match (x, y) {
        (Val::Nan, _) | (_, Val::Nan) => Val::Nan,
        (Val::Inf { neg: a }, Val::Inf { neg: b }) => Val::Inf { neg: a ^ b },
        (Val::Inf { neg: a }, Val::Fin { neg: b, mant, .. })
        | (Val::Fin { neg: b, mant, .. }, Val::Inf { neg: a }) => {
            if mant == 0 {
                Val::Nan // inf · 0
            } else {
                Val::Inf { neg: a ^ b }
            }
        }
        (
            Val::Fin {
                neg: a,
                mant: m,
                exp: e,
            },
            Val::Fin {
                neg: b,
                mant: n,
                exp: f,
            },
        ) => Val::Fin {
            neg: a ^ b,
            mant: m * n,
            exp: e + f,
        },
    }
}

/// An IEEE binary interchange format: `ebits` exponent bits, `mbits` fraction bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Format {
    pub ebits: u32,
    pub mbits: u32,
}

/// bfloat16.
pub const BF16: Format = Format { ebits: 8, mbits: 7 };
/// IEEE binary16.
pub const F16: Format = Format {
    ebits: 5,
    mbits: 10,
};
/// IEEE binary32.
pub const F32: Format = Format {
    ebits: 8,
    mbits: 23,
};

impl Format {
    fn bias(self) -> i64 {
        (1i64 << (self.ebits - 1)) - 1
    }
    fn sign_bit(self) -> u64 {
        1u64 << (self.ebits + self.mbits)
    }
    fn inf(self) -> u64 {
        ((1u64 << self.ebits) - 1) << self.mbits
    }
    /// The canonical quiet NaN: all exponent bits and the top fraction bit.
    pub fn qnan(self) -> u64 {
        self.inf() | (1u64 << (self.mbits - 1))
    }
    /// Decodes a pattern of this format.
    pub fn decode(self, bits: u64) -> Val {
        decode(bits, self.ebits, self.mbits)
    }
}

/// Rounds the exact value `(-1)^neg · |s| · 2^exp` (`s != 0`) to a pattern of `fmt`, RNE.
fn round_to(fmt: Format, neg: bool, s: &BigInt, exp: i64) -> u64 {
    let sign = if neg { fmt.sign_bit() } else { 0 };
    let p = fmt.mbits as i64 + 1; // significant bits
    let sub_quantum = 1 - fmt.bias() - fmt.mbits as i64; // exponent of the subnormal unit
    let mag = s.abs();
    // |s| lies in [2^(n−1), 2^n), so the value's binade exponent is n − 1 + exp.
    let n = mag.bits() as i64;
    let binade = n - 1 + exp;
    // Keep p significant bits; the quantum never goes below the subnormal unit.
    let quantum = (binade - (p - 1)).max(sub_quantum);
    let mut k: BigInt = if exp >= quantum {
        &mag << ((exp - quantum) as usize)
    } else {
        let shift = (quantum - exp) as usize;
        let kept: BigInt = &mag >> shift;
        let rem: BigInt = &mag - (&kept << shift);
        let half: BigInt = BigInt::one() << (shift - 1);
        let odd = (&kept % 2u32) == BigInt::one();
        if rem > half || (rem == half && odd) {
            kept + 1
        } else {
            kept
        }
    };
    let mut q = quantum;
    if k == BigInt::one() << (p as usize) {
        // Rounding carried into the next binade.
        k = BigInt::one() << ((p - 1) as usize);
        q += 1;
    }
    let k: u64 = k.try_into().expect("k fits");
    let min_normal = 1u64 << (p - 1);
    if k == 0 {
        return sign; // rounded below half the smallest subnormal: a zero of the sum's sign
    }
    if k < min_normal {
        assert_eq!(q, sub_quantum);
        return sign | k; // subnormal
    }
    // value = k · 2^q with k in [2^(p−1), 2^p): biased exponent q + (p − 1) + bias.
    let biased = q + (p - 1) + fmt.bias();
    if biased >= (1i64 << fmt.ebits) - 1 {
        return sign | fmt.inf(); // overflow: RNE goes to infinity
    }
    sign | ((biased as u64) << fmt.mbits) | (k - min_normal)
}

/// The exact IEEE sum of two exact values, rounded once to `fmt`.
fn add_round_to(fmt: Format, p: Val, q: Val) -> u64 {
    let inf = |neg: bool| {
        if neg {
            fmt.sign_bit() | fmt.inf()
        } else {
            fmt.inf()
        }
    };
    match (p, q) {
        (Val::Nan, _) | (_, Val::Nan) => fmt.qnan(),
        (Val::Inf { neg: a }, Val::Inf { neg: b }) => {
            if a != b {
                fmt.qnan() // inf − inf
            } else {
                inf(a)
            }
        }
        (Val::Inf { neg }, _) | (_, Val::Inf { neg }) => inf(neg),
        (
            Val::Fin {
                neg: a,
                mant: m,
                exp: e,
            },
            Val::Fin {
                neg: b,
                mant: n,
                exp: f,
            },
        ) => {
            let emin = e.min(f);
            let term = |neg: bool, mant: u64, exp: i64| {
                let v = BigInt::from(mant) << ((exp - emin) as usize);
                if neg {
                    -v
                } else {
                    v
                }
            };
            let s = term(a, m, e) + term(b, n, f);
            if s.is_zero() {
                // Exact zero: −0 only if both terms are −0 (RNE), else +0.
                return if m == 0 && n == 0 && a && b {
                    fmt.sign_bit()
                } else {
                    0
                };
            }
            round_to(fmt, s.sign() == Sign::Minus, &s, emin)
        }
    }
}

/// The exact IEEE sum of two exact values, rounded once to bf16.
fn add_round(p: Val, q: Val) -> u16 {
    add_round_to(BF16, p, q) as u16
}

/// Correctly rounded `fmt` value of `a·b + c·d`: `a`, `c` patterns of `fmt`, `b`, `d` f32
/// patterns (the table).
pub fn oracle_dot2_in(fmt: Format, a: u64, b: u32, c: u64, d: u32) -> u64 {
    add_round_to(
        fmt,
        mul(fmt.decode(a), decode_f32(b)),
        mul(fmt.decode(c), decode_f32(d)),
    )
}

/// One rotated pair of `fmt` values: `(x0·c − x1·s, x0·s + x1·c)`, `s → −s` when `inverse`.
pub fn oracle_pair_in(fmt: Format, x0: u64, x1: u64, c: u32, s: u32, inverse: bool) -> (u64, u64) {
    let s = if inverse { s ^ 0x8000_0000 } else { s };
    (
        oracle_dot2_in(fmt, x0, c, x1, s ^ 0x8000_0000),
        oracle_dot2_in(fmt, x0, s, x1, c),
    )
}

/// [`oracle_pair_in`] for f16 tensors.
pub fn oracle_pair_f16(x0: u16, x1: u16, c: u32, s: u32, inverse: bool) -> (u16, u16) {
    let (y0, y1) = oracle_pair_in(F16, x0 as u64, x1 as u64, c, s, inverse);
    (y0 as u16, y1 as u16)
}

/// [`oracle_pair_in`] for f32 tensors.
pub fn oracle_pair_f32(x0: u32, x1: u32, c: u32, s: u32, inverse: bool) -> (u32, u32) {
    let (y0, y1) = oracle_pair_in(F32, x0 as u64, x1 as u64, c, s, inverse);
    (y0 as u32, y1 as u32)
}

/// Correctly rounded bf16 of `a·b + c·d`: `a`, `c` bf16 patterns, `b`, `d` f32 patterns.
pub fn oracle_dot2(a: u16, b: u32, c: u16, d: u32) -> u16 {
    add_round(
        mul(decode_bf16(a), decode_f32(b)),
        mul(decode_bf16(c), decode_f32(d)),
    )
}

/// One rotated pair: `(x0·c − x1·s, x0·s + x1·c)`, with `s → −s` when `inverse`.
pub fn oracle_pair(x0: u16, x1: u16, c: u32, s: u32, inverse: bool) -> (u16, u16) {
    let s = if inverse { s ^ 0x8000_0000 } else { s };
    (
        oracle_dot2(x0, c, x1, s ^ 0x8000_0000),
        oracle_dot2(x0, s, x1, c),
    )
}

/// [`oracle_rotate_view`] on a contiguous `[batch, seq, heads, head_dim]` tensor in
/// interleaved pairs over the whole head, token `s` of every batch row at table row
/// `row_offset + s`.
pub fn oracle_rotate(
    x: &[u16],
    dims: [usize; 4],
    table: impl Fn(usize, usize) -> (u32, u32),
    row_offset: usize,
    inverse: bool,
) -> Vec<u16> {
    let [b, s, h, d] = dims;
    assert_eq!(
        x.len(),
        b * s * h * d,
        "oracle_rotate: data length vs shape {dims:?}"
    );
    let rows: Vec<usize> = (0..b).flat_map(|_| row_offset..row_offset + s).collect();
    let view = OracleView {
        dims,
        strides: [s * h * d, h * d, d],
        offset: 0,
        half_split: false,
        rotary_dim: d,
        rows: &rows,
        inverse,
    };
    oracle_rotate_view(x, &view, table)
}

/// Whether a bf16 pattern is a NaN.
pub fn is_nan(h: u16) -> bool {
    h & 0x7F80 == 0x7F80 && h & 0x7F != 0
}

/// Distance in ulps between two non-NaN bf16 patterns, on the ordered integer line
/// (−0 and +0 are the same point).
pub fn ulp_distance(a: u16, b: u16) -> u32 {
    let ordered = |h: u16| -> i32 {
        if h & 0x8000 != 0 {
            -((h & 0x7FFF) as i32)
        } else {
            h as i32
        }
    };
    (ordered(a) - ordered(b)).unsigned_abs()
}

/// A general call for the oracle, from first principles: a `[batch, seq, heads, head_dim]`
/// view with element strides of batch, seq and head and an element offset, the first
/// `rotary_dim` dims rotated in interleaved `(2i, 2i+1)` or half-split `(i, i + R/2)` pairs,
/// token `(b, s)` at table row `rows[b * seq + s]`.
pub struct OracleView<'a> {
    pub dims: [usize; 4],
    pub strides: [usize; 3],
    pub offset: usize,
    pub half_split: bool,
    pub rotary_dim: usize,
    pub rows: &'a [usize],
    pub inverse: bool,
}

/// The buffer `x` with the view rotated by the oracle; everything else unchanged.
pub fn oracle_rotate_view(
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
                    let (y0, y1) = oracle_pair(x[a], x[c], cs, sn, v.inverse);
                    y[a] = y0;
                    y[c] = y1;
                }
            }
        }
    }
    y
}

// ---------------------------------------------------------------------------------------------
// The `hf` mode on f16 and f32 tensors (docs/CONTRACT.md §2), from first principles: transformers'
// eager `apply_rotary_pos_emb` on a tensor of that dtype, each torch operation "the exact
// value, rounded to f32 (torch computes a reduced-precision op in f32), then rounded to the
// tensor's dtype", every rounding to nearest, ties to even, by `round_to` above (BigInt):
//
//   c = T(cos), s = T(sin)            (the f32 table rounded to the dtype T)
//   y0 = T(f32(T(f32(x0·c)) + T(f32(−x1·s))))
//   y1 = T(f32(T(f32(x1·c)) + T(f32(x0·s))))          (inverse: sin → −sin first)
//
// For T = f32 the outer roundings are the identity: fl(fl(x0·c) + fl(−x1·s)), no FMA. For
// T = f16 the products are exact in f32 (22 bits) but a sum of two f16 need not be (their
// exponents may lie 40 binades apart), so the f32 step of the sum is a real rounding before
// the f16 one (double rounding, as torch does it). Every NaN is the dtype's canonical one.

/// The exact value `v` rounded to `fmt`: NaN → the canonical NaN, infinities kept, a zero
/// keeps its sign, a finite value rounded once (overflow to infinity, subnormals kept).
pub fn round_val(fmt: Format, v: Val) -> u64 {
    match v {
        Val::Nan => fmt.qnan(),
        Val::Inf { neg } => {
            if neg {
                fmt.sign_bit() | fmt.inf()
            } else {
                fmt.inf()
            }
        }
        Val::Fin { neg, mant: 0, .. } => {
            if neg {
                fmt.sign_bit()
            } else {
                0
            }
        }
        Val::Fin { neg, mant, exp } => round_to(fmt, neg, &BigInt::from(mant), exp),
    }
}

/// One torch operation's result on a tensor of `fmt`: the exact value `v` rounded to f32,
/// then that f32 rounded to `fmt`.
fn torch_round(fmt: Format, v: Val) -> u64 {
    round_val(fmt, F32.decode(round_val(F32, v)))
}

/// torch's product `a * b` of two `fmt` patterns.
pub fn hf_mul_in(fmt: Format, a: u64, b: u64) -> u64 {
    torch_round(fmt, mul(fmt.decode(a), fmt.decode(b)))
}

/// torch's sum `a + b` of two `fmt` patterns (IEEE specials and signed zeros: the exact sum
/// rounded to f32 by [`add_round_to`], then to `fmt`).
pub fn hf_add_in(fmt: Format, a: u64, b: u64) -> u64 {
    let f = add_round_to(F32, fmt.decode(a), fmt.decode(b));
    round_val(fmt, F32.decode(f))
}

/// `fmt(cos)` and `fmt(±sin)` as transformers hands them to the tensor's arithmetic.
pub fn hf_table_in(fmt: Format, c: u32, s: u32, inverse: bool) -> (u64, u64) {
    let s = if inverse { s ^ 0x8000_0000 } else { s };
    (round_val(fmt, decode_f32(c)), round_val(fmt, decode_f32(s)))
}

/// The two outputs of one pair from the four rounded products: `y0 = x0·c + (−x1)·s`,
/// `y1 = x1·c + x0·s`.
pub fn hf_sums_in(fmt: Format, x0c: u64, nx1s: u64, x1c: u64, x0s: u64) -> (u64, u64) {
    (hf_add_in(fmt, x0c, nx1s), hf_add_in(fmt, x1c, x0s))
}

/// One rotated pair of `fmt` values in the `hf` mode; `c`, `s` the f32 table bits, `s → −s`
/// when `inverse`. `rotate_half` negates x1 in the dtype (exact: the sign bit).
pub fn hf_pair_in(fmt: Format, x0: u64, x1: u64, c: u32, s: u32, inverse: bool) -> (u64, u64) {
    let (cb, sb) = hf_table_in(fmt, c, s, inverse);
    let neg_x1 = x1 ^ fmt.sign_bit();
    hf_sums_in(
        fmt,
        hf_mul_in(fmt, x0, cb),
        hf_mul_in(fmt, neg_x1, sb),
        hf_mul_in(fmt, x1, cb),
        hf_mul_in(fmt, x0, sb),
    )
}
