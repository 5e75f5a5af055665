//! Inverse frequencies for every rope type of transformers' `modeling_rope_utils.py`
//! (transformers 5.x), in both angle modes, and the attention factor some of them multiply
//! into cos and sin.
//!
//! - [`AngleMode::Torch`]: each tensor operation of transformers' code as PyTorch does it on
//!   float32 tensors: one f32 rounding per operation, Python scalars (`factor`, `2π`, ...)
//!   rounded to f32 when they meet a tensor, Python-side arithmetic (`math.log`, the YaRN
//!   correction range, the LongRoPE attention factor) in f64. `pow` is correctly rounded to
//!   f32 here (PyTorch's is within an ulp of it), so a few values may differ by 1 ulp.
//! - [`AngleMode::Exact`]: the same formulas in f64 with `libm`, never rounded to f32: the
//!   angle is rounded once, at the end, as cos and sin.

use super::AngleMode;
use crate::error::{Error, Result};

/// How the inverse frequencies are scaled: transformers' `rope_type`, or a user's vector.
#[derive(Debug, Clone, PartialEq)]
pub enum Variant {
    /// `1 / base^(2i/d)`.
    Default,
    /// Position interpolation: the default frequencies divided by `factor`.
    Linear {
        /// The interpolation factor (> 0).
        factor: f64,
    },
    /// Dynamic NTK: the base is rescaled when the largest position reaches beyond
    /// `max_position_embeddings`.
    Dynamic {
        /// The scaling factor (> 0).
        factor: f64,
        /// The context the model was configured for.
        max_position_embeddings: u64,
    },
    /// HunYuan's NTK-alpha: while the largest position stays within `max_position_embeddings`,
    /// the default frequencies of base `θ · alpha^(d/(d−2))`; beyond it, transformers'
    /// dynamic NTK of `θ` with `factor` (its rotary module recomputes them so).
    DynamicAlpha {
        /// HunYuan's `alpha` (> 0).
        alpha: f64,
        /// The dynamic NTK factor beyond the configured context (> 0).
        factor: f64,
        /// The context the model was configured for.
        max_position_embeddings: u64,
    },
    /// YaRN: a ramp between interpolated and extrapolated frequencies, and an attention
    /// factor multiplied into cos and sin.
    Yarn {
        /// The context extension factor (> 0).
        factor: f64,
        /// The pre-training context.
        original_max_position_embeddings: u64,
        /// Rotations where extrapolation stops (default 32).
        beta_fast: f64,
        /// Rotations where interpolation starts (default 1).
        beta_slow: f64,
        /// DeepSeek's `mscale` (with `mscale_all_dim`, the attention factor is their ratio).
        mscale: Option<f64>,
        /// DeepSeek's `mscale_all_dim`.
        mscale_all_dim: Option<f64>,
        /// An explicit attention factor (else `0.1·ln(factor) + 1`, or the mscale ratio).
        attention_factor: Option<f64>,
        /// Whether the correction range is rounded outwards to whole dims (default true).
        truncate: bool,
    },
    /// Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth ramp between.
    Llama3 {
        /// Divisor of the low frequencies (8 for Llama 3.1).
        factor: f64,
        /// `low_freq_factor` (1).
        low_freq_factor: f64,
        /// `high_freq_factor` (4).
        high_freq_factor: f64,
        /// The pre-training context (8192).
        original_max_position_embeddings: u64,
    },
    /// LongRoPE (Phi-3): per-frequency divisors, `short_factor` while the largest position
    /// stays inside `original_max_position_embeddings`, `long_factor` beyond it.
    LongRope {
        /// Divisors used within the original context (`R/2` of them).
        short_factor: Vec<f64>,
        /// Divisors used beyond it (`R/2` of them).
        long_factor: Vec<f64>,
        /// The pre-training context.
        original_max_position_embeddings: u64,
        /// `max_position_embeddings / original_max_position_embeddings` unless given.
        factor: f64,
        /// An explicit attention factor (else `sqrt(1 + ln(factor) / ln(original))`).
        attention_factor: Option<f64>,
    },
    /// Proportional RoPE (Gemma 4): the first `rotated` of the `R/2` frequencies are the
    /// default ones over the whole rotary dimension (`base^(-2i/R)`), the rest are zero (those
    /// pairs pass through unrotated), all divided by `factor`.
    Proportional {
        /// How many frequencies rotate: `int(partial_rotary_factor · head_dim // 2)`.
        rotated: usize,
        /// Divisor of every frequency (1 unless given).
        factor: f64,
    },
    /// The caller's own inverse frequencies (`R/2` values, e.g. the seed's audio-scaled ones).
    Custom(Vec<f64>),
}

impl Variant {
    /// transformers' name of the rope type (`custom` for a user's vector).
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Linear { .. } => "linear",
            Variant::Dynamic { .. } => "dynamic",
            Variant::DynamicAlpha { .. } => "dynamic-alpha",
            Variant::Yarn { .. } => "yarn",
            Variant::Llama3 { .. } => "llama3",
            Variant::LongRope { .. } => "longrope",
            Variant::Proportional { .. } => "proportional",
            Variant::Custom(_) => "custom",
        }
    }
}

impl Variant {
    /// The variant's parameters as `(transformers' key, value)` pairs, absent ones left out
    /// (`[("factor", "8"), ...]`); a custom vector gives its length.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let n = |x: f64| format!("{x}");
        let opt = |k: &'static str, x: &Option<f64>| x.map(|x| (k, n(x)));
        match self {
            Variant::Default => vec![],
            Variant::Linear { factor } => vec![("factor", n(*factor))],
            Variant::Dynamic {
                factor,
                max_position_embeddings,
            } => vec![
                ("factor", n(*factor)),
                (
                    "max_position_embeddings",
                    max_position_embeddings.to_string(),
                ),
            ],
            Variant::DynamicAlpha {
                alpha,
                factor,
                max_position_embeddings,
            } => vec![
                ("alpha", n(*alpha)),
                ("factor", n(*factor)),
                (
                    "max_position_embeddings",
                    max_position_embeddings.to_string(),
                ),
            ],
            Variant::Yarn {
                factor,
                original_max_position_embeddings,
                beta_fast,
                beta_slow,
                mscale,
                mscale_all_dim,
                attention_factor,
                truncate,
            } => [
                Some(("factor", n(*factor))),
                Some((
                    "original_max_position_embeddings",
                    original_max_position_embeddings.to_string(),
                )),
                Some(("beta_fast", n(*beta_fast))),
                Some(("beta_slow", n(*beta_slow))),
                opt("mscale", mscale),
                opt("mscale_all_dim", mscale_all_dim),
                opt("attention_factor", attention_factor),
                Some(("truncate", truncate.to_string())),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Variant::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => vec![
                ("factor", n(*factor)),
                ("low_freq_factor", n(*low_freq_factor)),
                ("high_freq_factor", n(*high_freq_factor)),
                (
                    "original_max_position_embeddings",
                    original_max_position_embeddings.to_string(),
                ),
            ],
            Variant::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings,
                factor,
                attention_factor,
            } => [
                Some(("short_factor", format!("[{} values]", short_factor.len()))),
                Some(("long_factor", format!("[{} values]", long_factor.len()))),
                Some((
                    "original_max_position_embeddings",
                    original_max_position_embeddings.to_string(),
                )),
                Some(("factor", n(*factor))),
                opt("attention_factor", attention_factor),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Variant::Proportional { rotated, factor } => vec![
                ("rotated_frequencies", rotated.to_string()),
                ("factor", n(*factor)),
            ],
            Variant::Custom(v) => vec![("inv_freq", format!("[{} values]", v.len()))],
        }
    }
}

/// The inverse frequencies of one table and the factor multiplied into cos and sin.
#[derive(Debug, Clone, PartialEq)]
pub struct Frequencies {
    /// `R/2` inverse frequencies; in torch mode each is an f32 value.
    pub inv_freq: Vec<f64>,
    /// The attention factor (1 for most variants).
    pub attention: f64,
}

/// f32 `pow` of f32 operands, correctly rounded (PyTorch's is within an ulp).
fn powf(b: f32, e: f32) -> f32 {
    libm::pow(b as f64, e as f64) as f32
}

/// `arange(0, d, 2).float() / d` in f32.
fn torch_exponents(dim: usize) -> impl Iterator<Item = f32> {
    (0..dim / 2).map(move |i| (2 * i) as f32 / dim as f32)
}

/// `base ** (arange(0, d, 2).float() / d)` with a Python-float base: f32 throughout.
fn torch_pos_freqs(base: f32, dim: usize) -> Vec<f32> {
    torch_exponents(dim).map(|e| powf(base, e)).collect()
}

/// `base^(2i/d)` in f64.
fn exact_pos_freqs(base: f64, dim: usize) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| libm::pow(base, (2 * i) as f64 / dim as f64))
        .collect()
}

/// A float as messages show it: the shortest digits that read back as the same value, in
/// scientific notation where plain digits would be long (below 1e-5 or from 1e16 on in
/// magnitude): `10000`, `0.25`, `1e-300`, `1.5e20`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShortFloat(pub f64);

impl std::fmt::Display for ShortFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        let a = v.abs();
        if !v.is_finite() || v == 0.0 || (1e-5..1e16).contains(&a) {
            write!(f, "{v}")
        } else {
            write!(f, "{v:e}")
        }
    }
}

fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::Parameter(format!(
            "{name} {} must be finite and greater than 0",
            ShortFloat(v)
        )))
    }
}

/// YaRN's attention factor (transformers' `get_mscale` logic), in f64.
fn yarn_attention(
    factor: f64,
    mscale: Option<f64>,
    mscale_all_dim: Option<f64>,
    given: Option<f64>,
) -> f64 {
    let get_mscale = |scale: f64, m: f64| {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * m * scale.ln() + 1.0
        }
    };
    if let Some(a) = given {
        return a;
    }
    match (mscale, mscale_all_dim) {
        // Python's `if mscale and mscale_all_dim`: both present and non-zero.
        (Some(m), Some(a)) if m != 0.0 && a != 0.0 => get_mscale(factor, m) / get_mscale(factor, a),
        _ => get_mscale(factor, 1.0),
    }
}

/// YaRN's correction range `(low, high)` over `dim` dims (Python floats).
fn yarn_range(
    beta_fast: f64,
    beta_slow: f64,
    dim: usize,
    base: f64,
    orig: u64,
    truncate: bool,
) -> (f64, f64) {
    let correction_dim = |rot: f64| {
        (dim as f64 * (orig as f64 / (rot * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * base.ln())
    };
    let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
    if truncate {
        low = low.floor();
        high = high.ceil();
    }
    (low.max(0.0), high.min((dim - 1) as f64))
}

/// The inverse frequencies of `variant` for a rotary dimension `dim` and `base`, in `mode`,
/// for a call whose largest position is `max_position` (dynamic and LongRoPE depend on it,
/// as transformers' `seq_len = max(position_ids) + 1`).
pub fn frequencies(
    variant: &Variant,
    base: f64,
    dim: usize,
    mode: AngleMode,
    max_position: u64,
) -> Result<Frequencies> {
    positive("base", base)?;
    if dim < 2 || dim % 2 != 0 {
        return Err(Error::Parameter(format!(
            "rotary dimension {dim} must be even and non-zero"
        )));
    }
    let half = dim / 2;
    let torch = mode == AngleMode::Torch;
    let seq_len = max_position.saturating_add(1);
    let default = |b: f64| -> Vec<f64> {
        if torch {
            torch_pos_freqs(b as f32, dim)
                .into_iter()
                .map(|p| (1.0f32 / p) as f64)
                .collect()
        } else {
            (0..half)
                .map(|i| libm::pow(b, -((2 * i) as f64) / dim as f64))
                .collect()
        }
    };
    // `inv_freq / factor`: an f32 division in torch mode (the Python float meets an f32 tensor).
    let divide = |f: f64, factor: f64| -> f64 {
        if torch {
            (f as f32 / factor as f32) as f64
        } else {
            f / factor
        }
    };
    // Dynamic NTK's rescaled base for a call beyond the configured context, in f64 (Python).
    let ntk_base = |factor: f64, mpe: u64| -> f64 {
        let scale = factor * seq_len as f64 / mpe as f64 - (factor - 1.0);
        base * libm::pow(scale, dim as f64 / (dim - 2) as f64)
    };
    let context = |mpe: u64| -> Result<()> {
        if mpe == 0 {
            Err(Error::Parameter(
                "max_position_embeddings 0 must be at least 1".into(),
            ))
        } else {
            Ok(())
        }
    };
    let (inv_freq, attention) = match variant {
        Variant::Default => (default(base), 1.0),
        Variant::Linear { factor } => {
            positive("factor", *factor)?;
            let v = default(base).iter().map(|&f| divide(f, *factor)).collect();
            (v, 1.0)
        }
        Variant::Dynamic {
            factor,
            max_position_embeddings: mpe,
        } => {
            positive("factor", *factor)?;
            context(*mpe)?;
            if seq_len <= *mpe || dim == 2 {
                (default(base), 1.0)
            } else {
                // The rescaled base in f64, then `base ** (arange / d)` as the mode computes it.
                (default(ntk_base(*factor, *mpe)), 1.0)
            }
        }
        Variant::DynamicAlpha {
            alpha,
            factor,
            max_position_embeddings: mpe,
        } => {
            positive("alpha", *alpha)?;
            positive("factor", *factor)?;
            context(*mpe)?;
            if dim <= 2 {
                return Err(Error::Parameter(format!(
                    "alpha scaling needs a rotary dimension above 2, not {dim}"
                )));
            }
            let b = if seq_len <= *mpe {
                base * libm::pow(*alpha, dim as f64 / (dim - 2) as f64)
            } else {
                ntk_base(*factor, *mpe)
            };
            (default(b), 1.0)
        }
        Variant::Yarn {
            factor,
            original_max_position_embeddings: orig,
            beta_fast,
            beta_slow,
            mscale,
            mscale_all_dim,
            attention_factor,
            truncate,
        } => {
            positive("factor", *factor)?;
            positive("beta_fast", *beta_fast)?;
            positive("beta_slow", *beta_slow)?;
            if *orig == 0 {
                return Err(Error::Parameter(
                    "original_max_position_embeddings 0 must be at least 1".into(),
                ));
            }
            let attention = yarn_attention(*factor, *mscale, *mscale_all_dim, *attention_factor);
            let (low, mut high) = yarn_range(*beta_fast, *beta_slow, dim, base, *orig, *truncate);
            if low == high {
                high += 0.001;
            }
            let v = if torch {
                let pos = torch_pos_freqs(base as f32, dim);
                let f = *factor as f32;
                let (low32, span32) = (low as f32, (high - low) as f32);
                pos.iter()
                    .enumerate()
                    .map(|(i, &p)| {
                        let extra = 1.0f32 / p;
                        let inter = 1.0f32 / (f * p);
                        let ramp = ((i as f32 - low32) / span32).clamp(0.0, 1.0);
                        let ef = 1.0f32 - ramp;
                        let a = inter * (1.0f32 - ef);
                        let b = extra * ef;
                        (a + b) as f64
                    })
                    .collect()
            } else {
                exact_pos_freqs(base, dim)
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| {
                        let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                        let ef = 1.0 - ramp;
                        (1.0 / (factor * p)) * (1.0 - ef) + (1.0 / p) * ef
                    })
                    .collect()
            };
            (v, attention)
        }
        Variant::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: orig,
        } => {
            positive("factor", *factor)?;
            positive("low_freq_factor", *low_freq_factor)?;
            positive("high_freq_factor", *high_freq_factor)?;
            // Equal factors (Llama 4) leave no medium band: every frequency is kept or divided.
            if high_freq_factor < low_freq_factor {
                return Err(Error::Parameter(format!(
                    "high_freq_factor {} must not be less than low_freq_factor {}",
                    ShortFloat(*high_freq_factor),
                    ShortFloat(*low_freq_factor)
                )));
            }
            let low_wl = *orig as f64 / low_freq_factor;
            let high_wl = *orig as f64 / high_freq_factor;
            let d = default(base);
            let v = if torch {
                let two_pi = (2.0 * std::f64::consts::PI) as f32;
                let (f, lo, hi) = (
                    *factor as f32,
                    *low_freq_factor as f32,
                    (high_freq_factor - low_freq_factor) as f32,
                );
                let (low_wl, high_wl) = (low_wl as f32, high_wl as f32);
                d.iter()
                    .map(|&inv| {
                        let inv = inv as f32;
                        let wl = two_pi / inv;
                        let scaled = if wl > low_wl { inv / f } else { inv };
                        let smooth = ((*orig as f32 / wl) - lo) / hi;
                        let smoothed = (1.0f32 - smooth) * scaled / f + smooth * scaled;
                        let medium = wl >= high_wl && wl <= low_wl;
                        if medium && hi == 0.0 {
                            // transformers divides 0 by 0 here: a NaN frequency.
                            return f64::NAN;
                        }
                        (if medium { smoothed } else { scaled }) as f64
                    })
                    .collect()
            } else {
                d.iter()
                    .map(|&inv| {
                        let wl = 2.0 * std::f64::consts::PI / inv;
                        if wl < high_wl {
                            inv
                        } else if wl > low_wl {
                            inv / factor
                        } else if high_freq_factor == low_freq_factor {
                            f64::NAN
                        } else {
                            let s = (*orig as f64 / wl - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - s) * inv / factor + s * inv
                        }
                    })
                    .collect()
            };
            (v, 1.0)
        }
        Variant::LongRope {
            short_factor,
            long_factor,
            original_max_position_embeddings: orig,
            factor,
            attention_factor,
        } => {
            for (name, v) in [("short_factor", short_factor), ("long_factor", long_factor)] {
                if v.len() != half {
                    return Err(Error::Parameter(format!(
                        "{name} holds {} values but rotary dimension {dim} needs {half}",
                        v.len()
                    )));
                }
                if let Some(bad) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                    return Err(Error::Parameter(format!(
                        "{name} value {} must be finite and greater than 0",
                        ShortFloat(*bad)
                    )));
                }
            }
            if *orig < 2 {
                return Err(Error::Parameter(format!(
                    "original_max_position_embeddings {orig} must be at least 2"
                )));
            }
            let attention = attention_factor.unwrap_or_else(|| {
                if *factor <= 1.0 {
                    1.0
                } else {
                    (1.0 + factor.ln() / (*orig as f64).ln()).sqrt()
                }
            });
            let ext = if seq_len > *orig {
                long_factor
            } else {
                short_factor
            };
            let v = if torch {
                torch_pos_freqs(base as f32, dim)
                    .iter()
                    .zip(ext)
                    .map(|(&p, &e)| (1.0f32 / (e as f32 * p)) as f64)
                    .collect()
            } else {
                exact_pos_freqs(base, dim)
                    .iter()
                    .zip(ext)
                    .map(|(&p, &e)| 1.0 / (e * p))
                    .collect()
            };
            (v, attention)
        }
        Variant::Proportional { rotated, factor } => {
            positive("factor", *factor)?;
            if *rotated > half {
                return Err(Error::Parameter(format!(
                    "proportional RoPE rotates {rotated} frequencies but rotary dimension {dim} has {half}"
                )));
            }
            let d = default(base);
            let v = (0..half)
                .map(|i| divide(if i < *rotated { d[i] } else { 0.0 }, *factor))
                .collect();
            (v, 1.0)
        }
        Variant::Custom(v) => {
            if v.len() != half {
                return Err(Error::Parameter(format!(
                    "the inverse-frequency vector holds {} values but rotary dimension {dim} needs {half}",
                    v.len()
                )));
            }
            if let Some((i, bad)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(Error::Parameter(format!(
                    "inverse frequency {i} is {}; every value must be finite",
                    ShortFloat(*bad)
                )));
            }
            let v = if torch {
                v.iter().map(|&x| x as f32 as f64).collect()
            } else {
                v.clone()
            };
            (v, 1.0)
        }
    };
    if !(attention.is_finite() && attention > 0.0) {
        return Err(Error::Parameter(format!(
            "attention factor {} must be finite and greater than 0",
            ShortFloat(attention)
        )));
    }
    if let Some(i) = inv_freq.iter().position(|f| !f.is_finite()) {
        return Err(Error::Parameter(format!(
            "the {} scaling gives frequency {i} no finite value (its wavelength sits exactly on a boundary where transformers divides 0 by 0)",
            variant.name()
        )));
    }
    Ok(Frequencies {
        inv_freq,
        attention,
    })
}

/// The f32 nearest to the exact product `a·b` of two f64 (one rounding: the f64 product's
/// error, from an FMA, decides a tie that double rounding would get wrong).
pub(crate) fn mul_round_f32(a: f64, b: f64) -> f32 {
    let p = a * b;
    let r = p as f32;
    if !p.is_finite() || p == 0.0 || r.is_infinite() {
        return r;
    }
    let err = libm::fma(a, b, -p);
    let diff = p - r as f64;
    if diff == 0.0 || err == 0.0 {
        return r;
    }
    // p is exactly halfway between r and its neighbour beyond p: the exact product
    // p + err lies on err's side of that midpoint.
    let other = if diff > 0.0 {
        libm::nextafterf(r, f32::INFINITY)
    } else {
        libm::nextafterf(r, f32::NEG_INFINITY)
    };
    if other as f64 - p == diff && (err > 0.0) == (diff > 0.0) {
        other
    } else {
        r
    }
}

impl Frequencies {
    /// `(cos, sin)` of frequency `i` at `position`, times the attention factor, in `mode`.
    #[inline]
    pub fn cos_sin(&self, i: usize, position: u64, mode: AngleMode) -> [f32; 2] {
        let f = self.inv_freq[i];
        match mode {
            AngleMode::Torch => {
                // `position_ids.float()`, an f32 product, cos/sin of that f32 angle.
                let angle = (position as f32 * f as f32) as f64;
                let (c, s) = (libm::cos(angle) as f32, libm::sin(angle) as f32);
                if self.attention == 1.0 {
                    [c, s]
                } else {
                    // `emb.cos() * attention_scaling`: the Python float meets an f32 tensor.
                    let a = self.attention as f32;
                    [c * a, s * a]
                }
            }
            AngleMode::Exact => {
                let angle = position as f64 * f;
                let (c, s) = (libm::cos(angle), libm::sin(angle));
                if self.attention == 1.0 {
                    [c as f32, s as f32]
                } else {
                    [
                        mul_round_f32(c, self.attention),
                        mul_round_f32(s, self.attention),
                    ]
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mul_round_f32;

    /// The exact product of two f64 as an integer significand and exponent (u128 holds it).
    fn exact_product(a: f64, b: f64) -> (u128, i32) {
        let parts = |x: f64| {
            let bits = x.to_bits();
            let e = ((bits >> 52) & 0x7FF) as i32;
            ((bits & ((1 << 52) - 1)) | (1 << 52), e - 1075)
        };
        let ((ma, ea), (mb, eb)) = (parts(a), parts(b));
        (ma as u128 * mb as u128, ea + eb)
    }

    /// Correct rounding to f32 of m·2^e (positive, normal range), ties to even, in integers.
    fn round_f32(m: u128, e: i32) -> f32 {
        let shift = 128 - m.leading_zeros() as i32 - 24;
        let q = m >> shift;
        let rem = m & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let q = if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        };
        (q as f64 * 2f64.powi(e + shift)) as f32
    }

    #[test]
    fn attention_product_is_rounded_once() {
        // b ≈ (1 + 2^-24)/3: the f64 product 3·b lands on the f32 midpoint 1 + 2^-24 while the
        // exact product lies just off it, where rounding the f64 product (ties to even, down
        // to 1.0) would be wrong on one side.
        let mut checked = 0;
        for k in -40i64..40 {
            let b = f64::from_bits(
                ((1.0 + 2f64.powi(-24)) / 3.0)
                    .to_bits()
                    .wrapping_add_signed(k),
            );
            for a in [3.0, 3.0 + 2f64.powi(-50), 0.75, 1.138_629_436_111_989] {
                let (m, e) = exact_product(a, b);
                let want = round_f32(m, e);
                let p = a * b;
                assert_eq!(
                    mul_round_f32(a, b),
                    want,
                    "{a:e} x {b:e}: p {p:e} err {:e} want {want:e}",
                    libm::fma(a, b, -p)
                );
                checked += ((a * b) as f32 != want) as usize;
            }
        }
        assert!(
            checked > 0,
            "no case where rounding the f64 product twice goes wrong"
        );
    }
}
