//! What selects a RoPE pipeline: the kernel module ([`Kernel`]) and the values of its
//! override constants ([`KernelKey`]), with the label that names the pipeline. Only the
//! dtype, shape and spec types go in: the planner picks keys, the pipeline owner builds one
//! pipeline per key.

use crate::dtype::Dtype;
use crate::shape::{Precision, RopeShape};
use crate::spec::Pairing;

/// Threads per workgroup of every kernel (the bench's copy yardstick included). 128 rather
/// than 256: on the H100 the exact vec4 kernels ran up to 2.5 points of a copy faster with it
/// and at most 0.7 slower on any row (BENCHMARKS.md) — plausibly because a workgroup whose
/// one lane runs the fix-up then keeps half as many thread slots waiting.
pub const WORKGROUP_SIZE: u32 = 128;

/// Which RoPE kernel module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Contiguous BSHD, interleaved, whole head: one word (pair) per invocation, any shape.
    Scalar,
    /// Contiguous BSHD, interleaved, whole head: four words per invocation, 16-byte accesses
    /// (pairs per head a multiple of 4).
    Vec4,
    /// Contiguous, half-split pairs over the whole head: 4 elements of each half per
    /// invocation, 8-byte accesses (pairs per head a multiple of 4).
    Vec4Half,
    /// Any view, pairing and rotary_dim, any positions: one pair per invocation, out of place
    /// or in place (its own module: WebGPU bindings may not alias), one view or two (q and k
    /// in one dispatch).
    General {
        /// Which elements pair up (the `HALF_SPLIT` override).
        pairing: Pairing,
        /// Whether input and output are the same buffer.
        in_place: bool,
        /// Views per dispatch: 1, or 2 for q and k.
        views: u32,
        /// Whole words (every head starts on a word; half-split pairs even) rather than
        /// 16-bit halves with atomic stores.
        words: bool,
    },
}

impl Kernel {
    /// Whether this is one of the contiguous kernels (scalar, vec4, half-split vec4).
    pub fn is_contiguous(self) -> bool {
        !matches!(self, Kernel::General { .. })
    }
}

/// What selects a RoPE pipeline: the module and the values of its override constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelKey {
    /// Exact (the contract), plain f32 or `hf`.
    pub precision: Precision,
    /// The tensor's dtype (the `DTYPE` override: bf16 or f16 in every module; f32 selects
    /// the general kernel's f32 modules, one element per word).
    pub dtype: Dtype,
    /// The kernel module.
    pub kernel: Kernel,
    /// The `TABLE_IN_RANGE` override: the table's values are known to be zero or normal
    /// below 2^16 ([`RopeArgs::table_in_range`](crate::gpu::RopeArgs::table_in_range)), so
    /// the kernel does not test them (also
    /// [`ViewArgs::table_in_range`](crate::gpu::ViewArgs::table_in_range)). Only the exact
    /// bf16 and f16 kernels set it.
    pub table_in_range: bool,
}

impl KernelKey {
    /// The widest contiguous variant the shape allows (interleaved pairs, bf16 or f16; f32
    /// has no contiguous kernel and takes the general one).
    pub fn for_shape(shape: &RopeShape, precision: Precision, dtype: Dtype) -> Option<Self> {
        Self::for_contiguous(shape, Pairing::Interleaved, precision, dtype)
    }

    /// The contiguous kernel for `shape` with `pairing` and `dtype`, if there is one: f32
    /// never (one element per word: the general kernel's f32 modules); for bf16 and f16,
    /// interleaved, the vec4 kernel (pairs per head a multiple of 4) or else the scalar one;
    /// half-split, the half-split vec4 kernel when pairs per head is a multiple of 4 (else
    /// `None`: the general kernel serves it).
    pub fn for_contiguous(
        shape: &RopeShape,
        pairing: Pairing,
        precision: Precision,
        dtype: Dtype,
    ) -> Option<Self> {
        if dtype == Dtype::F32 {
            return None;
        }
        // The vec4 kernels divide in-token indices with an f32 reciprocal: exact below 2^24.
        let token_words = shape.heads * shape.pairs();
        let small = token_words < (1 << 24);
        let kernel = match pairing {
            Pairing::Interleaved if shape.pairs() % 4 == 0 && small => Kernel::Vec4,
            Pairing::Interleaved => Kernel::Scalar,
            Pairing::HalfSplit if shape.pairs() % 4 == 0 && small => Kernel::Vec4Half,
            Pairing::HalfSplit => return None,
        };
        Some(Self {
            precision,
            dtype,
            kernel,
            table_in_range: false,
        })
    }

    /// This key with [`table_in_range`](Self::table_in_range) set as far as `claimed` (the
    /// caller's word on the table) applies: only the exact bf16/f16 arithmetic tests table
    /// values (`rotate4_fast`, `rotate_word_fast`), so every other key keeps one pipeline.
    pub(crate) fn with_table_in_range(mut self, claimed: bool) -> Self {
        self.table_in_range =
            claimed && self.precision == Precision::Exact && self.dtype != Dtype::F32;
        self
    }

    /// The values of the module's override constants for this key (shaders/rope.wgsl):
    /// `EXACT` the arithmetic, `DTYPE`, `TABLE_IN_RANGE`, `WORKGROUP_SIZE`, and the general
    /// kernel's `HALF_SPLIT`.
    pub(crate) fn overrides(&self) -> Vec<(&'static str, f64)> {
        let exact = match self.precision {
            Precision::Exact => 1.0,
            Precision::Fast => 0.0,
            Precision::Hf => 2.0,
        };
        let dtype = match self.dtype {
            Dtype::Bf16 => 0.0,
            Dtype::F16 => 1.0,
            Dtype::F32 => 2.0,
        };
        let mut constants = vec![
            ("EXACT", exact),
            ("DTYPE", dtype),
            ("TABLE_IN_RANGE", f64::from(u8::from(self.table_in_range))),
            ("WORKGROUP_SIZE", WORKGROUP_SIZE as f64),
        ];
        if let Kernel::General { pairing, .. } = self.kernel {
            let half = f64::from(u8::from(pairing == Pairing::HalfSplit));
            constants.push(("HALF_SPLIT", half));
        }
        constants
    }

    /// A label naming the kernel and its constants, shown in validation errors.
    pub fn label(&self) -> String {
        let mode = self.precision.name();
        let mode = match self.dtype {
            Dtype::Bf16 => mode.to_string(),
            other => format!("{other},{mode}"),
        };
        match self.kernel {
            Kernel::Scalar => format!("bfrope::rope_scalar[{mode},wg={WORKGROUP_SIZE}]"),
            Kernel::Vec4 => format!("bfrope::rope_vec4[{mode},wg={WORKGROUP_SIZE}]"),
            Kernel::Vec4Half => format!("bfrope::rope_vec4_half[{mode},wg={WORKGROUP_SIZE}]"),
            Kernel::General {
                pairing,
                in_place,
                views,
                words,
            } => format!(
                "bfrope::rope_general[{},{mode},{},{},views={views},wg={WORKGROUP_SIZE}]",
                pairing.name(),
                if in_place { "in place" } else { "out of place" },
                if words { "words" } else { "halves" },
            ),
        }
    }
}
