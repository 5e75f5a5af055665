//! What a rotation is asked to do: tensor shape, direction and arithmetic, checked on the host
//! before anything touches a GPU.

use crate::error::{Error, Result};

/// Shape of a `[batch, seq, heads, head_dim]` (BSHD) row-major bf16 tensor, rotated in
/// interleaved pairs `(x[2i], x[2i+1])` over the whole `head_dim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RopeShape {
    /// Batch size.
    pub batch: usize,
    /// Sequence length: tokens per batch row.
    pub seq: usize,
    /// Number of heads.
    pub heads: usize,
    /// Elements per head; must be even.
    pub head_dim: usize,
}

impl RopeShape {
    /// Checks and builds a shape: all dimensions non-zero, `head_dim` even, and the number of
    /// pairs representable in 32 bits (the kernels index words with u32).
    pub fn new(batch: usize, seq: usize, heads: usize, head_dim: usize) -> Result<Self> {
        let shape = Self {
            batch,
            seq,
            heads,
            head_dim,
        };
        let dims = shape.dims().to_vec();
        if dims.contains(&0) {
            return Err(Error::Shape {
                shape: dims,
                reason: "every dimension must be at least 1".into(),
            });
        }
        if head_dim % 2 != 0 {
            return Err(Error::Shape {
                shape: dims,
                reason: format!("head_dim {head_dim} is odd; RoPE rotates pairs of elements"),
            });
        }
        let words = batch
            .checked_mul(seq)
            .and_then(|n| n.checked_mul(heads))
            .and_then(|n| n.checked_mul(head_dim / 2));
        match words {
            Some(w) if w <= u32::MAX as usize => Ok(shape),
            _ => Err(Error::Shape {
                shape: dims,
                reason: "more than 2^32 - 1 pairs".into(),
            }),
        }
    }

    /// Builds a shape from a slice of exactly four dimensions.
    pub fn from_dims(dims: &[usize]) -> Result<Self> {
        match *dims {
            [b, s, h, d] => Self::new(b, s, h, d),
            _ => Err(Error::Shape {
                shape: dims.to_vec(),
                reason: format!(
                    "expected 4 dimensions [batch, seq, heads, head_dim], got {}",
                    dims.len()
                ),
            }),
        }
    }

    /// `[batch, seq, heads, head_dim]`.
    pub fn dims(&self) -> [usize; 4] {
        [self.batch, self.seq, self.heads, self.head_dim]
    }

    /// Number of bf16 elements.
    pub fn elements(&self) -> usize {
        self.batch * self.seq * self.heads * self.head_dim
    }

    /// Rotated pairs per head: the width of a table row.
    pub fn pairs(&self) -> usize {
        self.head_dim / 2
    }

    /// Number of pairs (u32 words) in the tensor.
    pub fn words(&self) -> usize {
        self.elements() / 2
    }

    /// Checks that `len` elements match this shape.
    pub fn check_len(&self, len: usize) -> Result<()> {
        if len == self.elements() {
            Ok(())
        } else {
            Err(Error::Length {
                shape: self.dims().to_vec(),
                expected: self.elements(),
                got: len,
            })
        }
    }
}

/// Which way to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// By +angle: the forward pass.
    #[default]
    Forward,
    /// By -angle (`sin -> -sin`): the backward pass, and the inverse of `Forward`.
    Inverse,
}

/// The arithmetic of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// The contract: the correctly rounded bf16 of the exact value, the same bits everywhere.
    #[default]
    Exact,
    /// Plain f32 arithmetic and one rounding, what other implementations do. Results depend
    /// on the driver (FMA contraction, flushed subnormals); for comparison and benchmarks.
    Fast,
    /// Bit-parity with Hugging Face transformers' eager `apply_rotary_pos_emb` on a bf16
    /// tensor (docs/CONTRACT.md §2), for validating a port against what a bf16 model computes:
    /// cos and sin are rounded to bf16, `x·cos` and `rotate_half(x)·sin` are each rounded
    /// to bf16, then their sum is rounded to bf16 (each step as torch does it on the CPU: f32
    /// arithmetic without flushing subnormals, then round to nearest even):
    /// `y0 = bf16(bf16(x0·c) + bf16(−x1·s))`, `y1 = bf16(bf16(x1·c) + bf16(x0·s))`. The same
    /// bits on every adapter and on the CPU path (the kernels emulate the f32 steps on
    /// integer bits); NaN results are the canonical `0x7FC0` (torch's payloads differ).
    ///
    /// A compatibility mode, never the default. Measured on the ten Hugging Face cases of
    /// `hf_models.safetensors` (real model configurations, each fed its own tables): `Hf` is
    /// bit-identical to every model's own bf16 forward, and differs from
    /// [`Exact`](Self::Exact) in 7.6–44.1% of outputs (11.9–44.1% of the rotated ones), by up
    /// to 30,546 ulp where `x0·c` and `x1·s` nearly cancel (README, "How far `hf` is from
    /// `exact`").
    Hf,
}

impl Precision {
    /// The name used by the CLI (`--precision`) and the JS API: `exact`, `fast` or `hf`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
            Precision::Hf => "hf",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(Precision::Exact),
            "fast" => Ok(Precision::Fast),
            "hf" => Ok(Precision::Hf),
            other => Err(Error::Parameter(format!(
                "precision {other:?} is not an arithmetic mode; expected exact, fast or hf"
            ))),
        }
    }
}

/// Consecutive whole tokens of a tensor: what one GPU dispatch or one streamed piece covers.
///
/// A range either holds whole sequences (`seq_start == 0`, `tokens` a multiple of `seq`) or
/// lies inside one sequence; [`Positions::piece`](crate::Positions::piece) says where its
/// tokens are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRange {
    /// Index of the first token in the flattened `batch × seq` tokens.
    pub first_token: usize,
    /// Number of tokens.
    pub tokens: usize,
    /// Sequence index of the first token.
    pub seq_start: usize,
}

impl TokenRange {
    /// The range as a tensor of its own: `[tokens / seq, seq, heads, head_dim]` for whole
    /// sequences, else `[1, tokens, heads, head_dim]`; rotated at the parent's positions cut to
    /// it ([`Positions::piece`](crate::Positions::piece)) it gives the parent's result.
    pub fn shape(&self, parent: &RopeShape) -> RopeShape {
        let (batch, seq) = if self.seq_start == 0 && self.tokens % parent.seq == 0 {
            (self.tokens / parent.seq, parent.seq)
        } else {
            (1, self.tokens)
        };
        RopeShape {
            batch,
            seq,
            heads: parent.heads,
            head_dim: parent.head_dim,
        }
    }

    /// The table rows the range reads, relative to the parent's row offset.
    pub fn rows(&self, parent: &RopeShape) -> std::ops::Range<usize> {
        let shape = self.shape(parent);
        self.seq_start..self.seq_start + shape.seq
    }

    /// The elements of the parent tensor the range covers.
    pub fn elements(&self, parent: &RopeShape) -> std::ops::Range<usize> {
        let token = parent.heads * parent.head_dim;
        self.first_token * token..(self.first_token + self.tokens) * token
    }
}

impl RopeShape {
    /// Number of tokens: `batch × seq`.
    pub fn tokens(&self) -> usize {
        self.batch * self.seq
    }

    /// Splits the tokens into consecutive [`TokenRange`]s of at most `max_tokens` tokens
    /// (at least one): whole sequences while a sequence fits, else pieces of one sequence.
    pub fn token_ranges(&self, max_tokens: usize) -> Vec<TokenRange> {
        let max_tokens = max_tokens.max(1);
        let mut out = Vec::new();
        if max_tokens >= self.seq {
            let per = max_tokens / self.seq * self.seq;
            let mut first = 0;
            while first < self.tokens() {
                let tokens = per.min(self.tokens() - first);
                out.push(TokenRange {
                    first_token: first,
                    tokens,
                    seq_start: 0,
                });
                first += tokens;
            }
        } else {
            for b in 0..self.batch {
                let mut s = 0;
                while s < self.seq {
                    let tokens = max_tokens.min(self.seq - s);
                    out.push(TokenRange {
                        first_token: b * self.seq + s,
                        tokens,
                        seq_start: s,
                    });
                    s += tokens;
                }
            }
        }
        out
    }
}
