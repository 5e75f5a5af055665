//! Rotation tables: the `(cos, sin)` pairs the kernel multiplies by, built on the host.
//!
//! The kernel's contract is relative to its table, so the table is where the angles are
//! decided. Three sources, each a named mode (docs/CONTRACT.md §3):
//!
//! - [`AngleMode::Exact`]: θᵢ = base^(−2i/d) and the angle `position·θᵢ` in f64, cos and sin
//!   in f64 by the pure-Rust `libm` crate, each rounded once to f32. Native and WASM builds
//!   give identical bits, and positions up to 2²⁴ and beyond stay accurate.
//! - [`AngleMode::Torch`]: what PyTorch/Meta code computes: inverse frequencies and angles in
//!   f32 (`1.0 / base ** (arange(0, d, 2).float() / d)`, `outer(t, inv_freq)`), then cos and
//!   sin of that f32 angle. A model trained in PyTorch saw these angles.
//! - [`RopeTable::from_cos_sin`]: tables the caller supplies, as flash-attn and vLLM accept.
//!
//! A [`TableRecipe`] says everything a model configures: base, rotary dimension, the scaling
//! [`Variant`] of transformers' `modeling_rope_utils.py` (`freq`), multi-axis positions
//! ([`Axes`], `axes`), and the angle mode; [`HfRope::from_config_json`] reads one from a
//! Hugging Face `config.json` (`config`). Tables are built here, on the host, never in the
//! kernel: one row per position ([`TableRecipe::table_rows`]) or one row per token
//! ([`TableRecipe::table_per_token`], for scattered or multi-axis positions).

mod axes;
mod config;
mod freq;
mod models;

pub use axes::{grid_positions, Axes};
pub use config::{Explanation, HfRope, Layer};
pub use freq::ShortFloat;
pub use freq::{frequencies, Frequencies, Variant};
pub use models::rope_model_types;

use crate::error::{Error, Result};

/// How angles are computed when a table is built from a base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AngleMode {
    /// f64 frequencies and angles, libm cos/sin, one rounding to f32.
    #[default]
    Exact,
    /// f32 frequencies and angles as PyTorch computes them; cos/sin of the f32 angle.
    Torch,
}

impl AngleMode {
    /// The mode's name as the CLI and the web page spell it.
    pub fn name(self) -> &'static str {
        match self {
            AngleMode::Exact => "exact",
            AngleMode::Torch => "torch",
        }
    }
}

impl std::str::FromStr for AngleMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(AngleMode::Exact),
            "torch" => Ok(AngleMode::Torch),
            other => Err(Error::Parameter(format!(
                "unknown angle mode {other:?}; expected exact or torch"
            ))),
        }
    }
}

/// What a built table covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableSpec {
    /// The RoPE base (θ), 10000 for the original, 500000 for Llama 3. Finite and > 0.
    pub base: f64,
    /// Rotated dimension (the head_dim for full rotation); even and non-zero.
    pub rotary_dim: usize,
    /// Position of row 0.
    pub first_position: u64,
    /// Number of rows (consecutive positions).
    pub rows: usize,
    /// How angles are computed.
    pub angles: AngleMode,
}

impl TableSpec {
    /// The recipe of this spec's rows: its base, rotary dimension and angle mode, the default
    /// frequencies, one axis.
    pub fn recipe(&self) -> TableRecipe {
        TableRecipe {
            base: self.base,
            rotary_dim: self.rotary_dim,
            variant: Variant::Default,
            angles: self.angles,
            axes: Axes::Single,
        }
    }

    /// A spec with the default base 10000 and exact angles, rows for positions `0..rows`.
    pub fn new(rotary_dim: usize, rows: usize) -> Self {
        Self {
            base: 10000.0,
            rotary_dim,
            first_position: 0,
            rows,
            angles: AngleMode::Exact,
        }
    }

    /// Checks the parameters; every message names the value.
    pub fn validate(&self) -> Result<()> {
        if !self.base.is_finite() || self.base <= 0.0 {
            return Err(Error::Parameter(format!(
                "base {} must be finite and greater than 0",
                ShortFloat(self.base)
            )));
        }
        if self.rotary_dim == 0 || self.rotary_dim % 2 != 0 {
            return Err(Error::Parameter(format!(
                "rotary dimension {} must be even and non-zero",
                self.rotary_dim
            )));
        }
        if self.rows == 0 {
            return Err(Error::Parameter("a table needs at least one row".into()));
        }
        let last = self.first_position.checked_add(self.rows as u64 - 1);
        if last.is_none_or(|p| p > MAX_POSITION) {
            return Err(Error::Parameter(format!(
                "positions {}..{} exceed the supported maximum {MAX_POSITION}",
                self.first_position,
                self.first_position as u128 + self.rows as u128
            )));
        }
        Ok(())
    }
}

/// Largest position a built table accepts (2^53: every position is exact in f64).
pub const MAX_POSITION: u64 = 1 << 53;

/// `rows × pairs` pairs of `(cos, sin)` as f32, row-major: row `r`, frequency `i` at
/// `r * pairs + i`. This is the kernel's table binding byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable {
    rows: usize,
    pairs: usize,
    cos_sin: Vec<[f32; 2]>,
}

impl RopeTable {
    /// Builds a table from a base (see [`AngleMode`]): the default frequencies, one row per
    /// position from `first_position`.
    pub fn build(spec: &TableSpec) -> Result<Self> {
        spec.validate()?;
        spec.recipe().table_rows(spec.first_position, spec.rows)
    }

    /// A table from caller-supplied `cos` and `sin`, each `rows × pairs` row-major f32.
    pub fn from_cos_sin(cos: &[f32], sin: &[f32], rows: usize, pairs: usize) -> Result<Self> {
        if rows == 0 || pairs == 0 {
            return Err(Error::Table(format!(
                "table shape [{rows}, {pairs}] has an empty dimension"
            )));
        }
        let n = rows
            .checked_mul(pairs)
            .ok_or_else(|| Error::Table(format!("table shape [{rows}, {pairs}] overflows")))?;
        if cos.len() != n || sin.len() != n {
            return Err(Error::Table(format!(
                "cos has {} and sin has {} values but the table shape [{rows}, {pairs}] needs {n}",
                cos.len(),
                sin.len()
            )));
        }
        let cos_sin = cos.iter().zip(sin).map(|(&c, &s)| [c, s]).collect();
        Ok(Self {
            rows,
            pairs,
            cos_sin,
        })
    }

    /// A table from Hugging Face's form: `cos` and `sin` of `rows × rotary_dim` each, the
    /// `rotary_dim / 2` frequencies repeated in both halves (`torch.cat((freqs, freqs))`).
    /// The halves must hold the same bits; the error names the first row and index where
    /// they differ.
    pub fn from_repeated_halves(
        cos: &[f32],
        sin: &[f32],
        rows: usize,
        rotary_dim: usize,
    ) -> Result<Self> {
        if rotary_dim == 0 || rotary_dim % 2 != 0 {
            return Err(Error::Table(format!(
                "a last dimension of {rotary_dim} cannot hold repeated halves"
            )));
        }
        let n = rows
            .checked_mul(rotary_dim)
            .ok_or_else(|| Error::Table(format!("table shape [{rows}, {rotary_dim}] overflows")))?;
        if cos.len() != n || sin.len() != n {
            return Err(Error::Table(format!(
                "cos has {} and sin has {} values but the table shape [{rows}, {rotary_dim}] needs {n}",
                cos.len(),
                sin.len()
            )));
        }
        let half = rotary_dim / 2;
        let mut c = Vec::with_capacity(rows * half);
        let mut s = Vec::with_capacity(rows * half);
        for r in 0..rows {
            for (name, v, out) in [("cos", cos, &mut c), ("sin", sin, &mut s)] {
                let row = &v[r * rotary_dim..(r + 1) * rotary_dim];
                if let Some(i) = (0..half).find(|&i| row[i].to_bits() != row[half + i].to_bits()) {
                    return Err(Error::Table(format!(
                        "{name} row {r} is not two equal halves: index {i} holds {} but index {} holds {}",
                        row[i],
                        half + i,
                        row[half + i]
                    )));
                }
                out.extend_from_slice(&row[..half]);
            }
        }
        Self::from_cos_sin(&c, &s, rows, half)
    }

    /// Number of rows (positions).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Pairs per row (rotary_dim / 2).
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// The `(cos, sin)` pairs, row-major.
    pub fn cos_sin(&self) -> &[[f32; 2]] {
        &self.cos_sin
    }

    /// The `(cos, sin)` of row `row`, frequency `i`.
    pub fn get(&self, row: usize, i: usize) -> [f32; 2] {
        self.cos_sin[row * self.pairs + i]
    }

    /// The table as raw bytes, the layout of the kernel's `array<vec2<u32>>` binding.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.cos_sin)
    }

    /// Whether every value is ±0 or a normal f32 below 2^16 in magnitude: the table values
    /// the GPU kernels' f32 proof accepts (a subnormal one may be flushed, a huge one makes
    /// a flushed subnormal element matter). Tables built from a base are, in practice (cos
    /// and sin, scaled by at most a few units); one from [`from_cos_sin`](Self::from_cos_sin)
    /// may not be. The GPU path passes this as
    /// [`RopeArgs::table_in_range`](crate::gpu::RopeArgs::table_in_range).
    ///
    /// ```
    /// use bfrope::RopeTable;
    /// let t = RopeTable::from_cos_sin(&[1.0, 0.5], &[0.0, -0.25], 2, 1).unwrap();
    /// assert!(t.in_fast_range());
    /// let tiny = RopeTable::from_cos_sin(&[1.0, 1e-40], &[0.0, 1.0], 2, 1).unwrap();
    /// assert!(!tiny.in_fast_range());
    /// let huge = RopeTable::from_cos_sin(&[65536.0], &[0.0], 1, 1).unwrap();
    /// assert!(!huge.in_fast_range());
    /// ```
    pub fn in_fast_range(&self) -> bool {
        self.cos_sin.iter().flatten().all(|v| f32_in_fast_range(*v))
    }
}

/// Whether `v` is ±0 or a normal f32 below 2^16 in magnitude (`f32_fast_ok` in
/// shaders/proof.wgsl).
fn f32_in_fast_range(v: f32) -> bool {
    let m = v.to_bits() & 0x7FFF_FFFF;
    m == 0 || (0x0080_0000..0x4780_0000).contains(&m)
}

/// PyTorch's f32 inverse frequencies: `1.0 / (base ** (arange(0, d, 2).float() / d))`.
/// The exponent is an f32 division; the power is correctly rounded to f32 (PyTorch's own is
/// within an ulp of it); the reciprocal is an f32 division.
pub fn torch_inv_freq(base: f64, rotary_dim: usize) -> Vec<f32> {
    let base32 = base as f32;
    (0..rotary_dim / 2)
        .map(|i| {
            let e = (2 * i) as f32 / rotary_dim as f32;
            let p = libm::pow(base32 as f64, e as f64) as f32;
            1.0f32 / p
        })
        .collect()
}

/// Everything a model configures about its table: base, rotary dimension, scaling variant,
/// multi-axis sections and the angle mode. Build tables with [`TableRecipe::table_rows`]
/// (one row per position) or [`TableRecipe::table_per_token`] (one row per token).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRecipe {
    /// The RoPE base θ (`rope_theta`).
    pub base: f64,
    /// Rotated dimension `R` (even); the table has `R/2` pairs per row.
    pub rotary_dim: usize,
    /// How the inverse frequencies are scaled.
    pub variant: Variant,
    /// How the numbers are computed.
    pub angles: AngleMode,
    /// Which position axis each frequency takes.
    pub axes: Axes,
}

impl TableRecipe {
    /// Default frequencies, base 10000, exact angles, one axis.
    pub fn new(rotary_dim: usize) -> Self {
        Self {
            base: 10000.0,
            rotary_dim,
            variant: Variant::Default,
            angles: AngleMode::Exact,
            axes: Axes::Single,
        }
    }

    /// The inverse frequencies, the attention factor and the axis of each frequency, for a
    /// call whose largest position is `max_position` (dynamic NTK and LongRoPE depend on it).
    pub fn frequencies(&self, max_position: u64) -> Result<(Frequencies, Vec<usize>)> {
        if self.rotary_dim < 2 || self.rotary_dim % 2 != 0 {
            return Err(Error::Parameter(format!(
                "rotary dimension {} must be even and non-zero",
                self.rotary_dim
            )));
        }
        let pairs = self.rotary_dim / 2;
        let axis = self.axes.axis_map(pairs)?;
        let all = || {
            frequencies(
                &self.variant,
                self.base,
                self.rotary_dim,
                self.angles,
                max_position,
            )
        };
        let freqs = match (&self.axes, &self.variant) {
            (Axes::Axial(sections), Variant::Default) => {
                // Each section has its own frequencies over its own 2·n dims.
                let mut inv_freq = Vec::with_capacity(pairs);
                for &n in sections {
                    let f = frequencies(&Variant::Default, self.base, 2 * n, self.angles, max_position)?;
                    inv_freq.extend(f.inv_freq);
                }
                Frequencies {
                    inv_freq,
                    attention: 1.0,
                }
            }
            (Axes::Axial(_), Variant::Custom(_)) => all()?,
            (Axes::Axial(_), variant) => {
                return Err(Error::Parameter(format!(
                    "axes {} build their own per-section frequencies; the {} variant does not apply (use default or an inverse-frequency vector)",
                    self.axes.name(),
                    variant.name()
                )))
            }
            _ => all()?,
        };
        Ok((freqs, axis))
    }

    /// A table with one row per position, `first .. first + rows` (one axis only).
    pub fn table_rows(&self, first: u64, rows: usize) -> Result<RopeTable> {
        if self.axes != Axes::Single {
            return Err(Error::Parameter(format!(
                "axes {} need one position per axis and token: build a table per token",
                self.axes.name()
            )));
        }
        TableSpec {
            base: self.base,
            rotary_dim: self.rotary_dim,
            first_position: first,
            rows,
            angles: self.angles,
        }
        .validate()?;
        let last = first + rows as u64 - 1;
        let (f, _) = self.frequencies(last)?;
        let pairs = self.rotary_dim / 2;
        let mut cos_sin = Vec::with_capacity(rows * pairs);
        for r in 0..rows as u64 {
            for i in 0..pairs {
                cos_sin.push(f.cos_sin(i, first + r, self.angles));
            }
        }
        Ok(RopeTable {
            rows,
            pairs,
            cos_sin,
        })
    }

    /// A table with one row per token (use it with `Positions::PerToken(0..tokens)`):
    /// `positions` holds `A` positions per token, axis-major (`[A, tokens]`, as a `[A, S]`
    /// or `[A, B, S]` tensor is laid out); `A` is the number of axes (1 for a single axis).
    pub fn table_per_token(&self, positions: &[u64]) -> Result<RopeTable> {
        let a = self.axes.count();
        if positions.is_empty() || positions.len() % a != 0 {
            return Err(Error::Parameter(format!(
                "{} positions cannot be split into {a} axes of at least one token (axes {})",
                positions.len(),
                self.axes.name()
            )));
        }
        let tokens = positions.len() / a;
        let max = *positions.iter().max().expect("non-empty");
        if max > MAX_POSITION {
            return Err(Error::Parameter(format!(
                "position {max} exceeds the supported maximum {MAX_POSITION}"
            )));
        }
        let (f, axis) = self.frequencies(max)?;
        let pairs = self.rotary_dim / 2;
        let mut cos_sin = Vec::with_capacity(tokens * pairs);
        for t in 0..tokens {
            for (i, &ax) in axis.iter().enumerate() {
                cos_sin.push(f.cos_sin(i, positions[ax * tokens + t], self.angles));
            }
        }
        Ok(RopeTable {
            rows: tokens,
            pairs,
            cos_sin,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_range_is_zero_or_normal_below_2_16() {
        use super::f32_in_fast_range as ok;
        for v in [
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1.0,
            -0.5,
            65535.996,
        ] {
            assert!(ok(v), "{v:e} is in range");
        }
        let below = f32::from_bits(0x4780_0000 - 1);
        assert!(ok(below) && below < 65536.0);
        for v in [
            f32::from_bits(1),
            -f32::from_bits(0x007F_FFFF),
            65536.0,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ] {
            assert!(!ok(v), "{v:e} is out of range");
        }
    }
}
