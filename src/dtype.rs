//! The element type of a rotated tensor (docs/CONTRACT.md §8): bf16 (the headline), f16 or f32. The
//! output has the input's dtype; the table is always f32. bf16 and f16 travel two per `u32`
//! word (element `2k` in the low half), f32 one per word.

use crate::error::{Error, Result};

/// The canonical quiet NaN of bf16 results ([`Dtype::canonical_nan`]).
pub const BF16_QNAN: u16 = 0x7FC0;
/// The canonical quiet NaN of f16 results ([`Dtype::canonical_nan`]).
pub const F16_QNAN: u16 = 0x7E00;
/// The canonical quiet NaN of f32 results ([`Dtype::canonical_nan`]).
pub const F32_QNAN: u32 = 0x7FC0_0000;

/// The dtype of a tensor's elements, and so of the rotation's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dtype {
    /// bfloat16: 8 significant bits, f32's exponent range.
    #[default]
    Bf16,
    /// IEEE binary16: 11 significant bits, normal from 2⁻¹⁴, largest finite 65504.
    F16,
    /// IEEE binary32.
    F32,
}

impl Dtype {
    /// The name used by the CLI, the JS API and safetensors headers (lower case here).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
            Dtype::F32 => "f32",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Bf16 | Dtype::F16 => 2,
            Dtype::F32 => 4,
        }
    }

    /// Significant bits of the format (the implicit leading one included).
    pub fn precision_bits(self) -> u32 {
        match self {
            Dtype::Bf16 => 8,
            Dtype::F16 => 11,
            Dtype::F32 => 24,
        }
    }

    /// The canonical quiet NaN every NaN result is: `0x7FC0`, `0x7E00`, `0x7FC00000`.
    pub fn canonical_nan(self) -> u32 {
        match self {
            Dtype::Bf16 => BF16_QNAN as u32,
            Dtype::F16 => F16_QNAN as u32,
            Dtype::F32 => F32_QNAN,
        }
    }

    /// Checks that host elements of type `E` hold this dtype's bits: `u16` for bf16 and f16,
    /// `u32` for f32.
    pub fn check_bits<E: Bits>(self) -> Result<()> {
        if E::BYTES == self.size() {
            return Ok(());
        }
        Err(Error::Argument(format!(
            "dtype {self} elements travel as {} but the buffer holds {}-byte elements",
            match self {
                Dtype::F32 => "u32 words",
                _ => "u16 values",
            },
            E::BYTES
        )))
    }
}

/// The raw bits of one element as host buffers hold them: `u16` (bf16 and f16 patterns) or
/// `u32` (f32 patterns). [`Rotation::dtype`](crate::Rotation::dtype) says which format
/// they are; the buffer's element type must match its size ([`Dtype::check_bits`]).
pub trait Bits: bytemuck::Pod + Send + Sync + Default + std::fmt::Debug {
    /// Bytes per element.
    const BYTES: usize;
}

impl Bits for u16 {
    const BYTES: usize = 2;
}

impl Bits for u32 {
    const BYTES: usize = 4;
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "bf16" | "bfloat16" => Ok(Dtype::Bf16),
            "f16" | "float16" | "half" => Ok(Dtype::F16),
            "f32" | "float32" | "float" => Ok(Dtype::F32),
            _ => Err(Error::Parameter(format!(
                "dtype {s:?} cannot be rotated; expected bf16, f16 or f32"
            ))),
        }
    }
}
