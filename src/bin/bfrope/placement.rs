//! Where each token of a tensor sits in its table, from the CLI's flags: `--position-offset`,
//! `--positions NAME` (I32/I64 `[S]`, `[B,S]`, or `[T]` for `thd`), `--cu-seqlens NAME`
//! (packed sequences), and the table forms: `[rows, N/2]` or HF's `[rows, N]` (halves
//! repeated) indexed by position, or `[B, S, N/2|N]` one row per token (`[1, T, ..]` for
//! `thd`). Built tables cover just the positions used.

use bfrope::{Positions, RopeTable};
use safetensors::tensor::Dtype;

use crate::stream::Input;
use crate::{CliError, CliResult};

/// The table rows of a tensor's tokens: consecutive rows from an offset in every sequence,
/// or one row per token (in `[batch, seq]` order of the tensor as the file holds it).
#[derive(Debug, Clone)]
pub enum Rows {
    /// Token `(b, s)` at row `offset + s`.
    Offset(usize),
    /// Token `(b, s)` at row `rows[b · seq + s]`.
    PerToken(Vec<usize>),
}

/// The I32/I64 tensor `name` of the input as non-negative values, with its shape.
pub fn read_ids(input: &Input, name: &str, flag: &str) -> CliResult<(Vec<usize>, Vec<usize>)> {
    let t = input.info(name).ok_or_else(|| {
        CliError::usage(format!(
            "{flag} names tensor {name:?}, which is not in the input"
        ))
    })?;
    let data = input.data(t);
    let raw: Vec<i64> = match t.dtype {
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
            .collect(),
        other => {
            return Err(CliError::usage(format!(
                "{flag} tensor {name:?} is {other:?}, but positions must be I32 or I64"
            )))
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, &v) in raw.iter().enumerate() {
        let v = usize::try_from(v).map_err(|_| {
            CliError::usage(format!(
                "{flag} tensor {name:?} holds {v} at index {i}; positions must be non-negative"
            ))
        })?;
        out.push(v);
    }
    Ok((out, t.shape.clone()))
}

/// Per-token positions of a tensor with `batch × seq` tokens from `--positions` values of
/// `shape` (`[seq]` shared by every batch row, or `[batch, seq]`).
pub fn positions_for(
    ids: &[usize],
    shape: &[usize],
    name: &str,
    tensor: &str,
    batch: usize,
    seq: usize,
) -> CliResult<Vec<usize>> {
    match *shape {
        [s] if s == seq => Ok((0..batch).flat_map(|_| ids.iter().copied()).collect()),
        [b, s] if b == batch && s == seq => Ok(ids.to_vec()),
        _ => Err(CliError::usage(format!(
            "--positions {name} has shape {shape:?}, but tensor {tensor:?} needs [{seq}] or [{batch}, {seq}]"
        ))),
    }
}

/// Per-token positions of packed sequences: `cu_seqlens` I32/I64 `[B+1]`.
pub fn positions_from_cu_seqlens(
    cu: &[usize],
    name: &str,
    tokens: usize,
    offset: usize,
) -> CliResult<Vec<usize>> {
    match Positions::from_cu_seqlens(cu, tokens, offset) {
        Ok(Positions::PerToken(ids)) => Ok(ids),
        Ok(_) => unreachable!("from_cu_seqlens gives per-token ids"),
        Err(e) => Err(CliError::usage(format!("--cu-seqlens {name}: {e}"))),
    }
}

/// `rotary_dim` with the halves repeated.
pub fn user_table(
    cos: &[f32],
    sin: &[f32],
    rows: usize,
    width: usize,
    rotary_dim: usize,
    names: (&str, &str),
) -> CliResult<RopeTable> {
    let what =
        |e: bfrope::Error| CliError::usage(format!("--cos {} / --sin {}: {e}", names.0, names.1));
    if width == rotary_dim / 2 {
        RopeTable::from_cos_sin(cos, sin, rows, width).map_err(what)
    } else if width == rotary_dim {
        RopeTable::from_repeated_halves(cos, sin, rows, width).map_err(what)
    } else {
        Err(CliError::usage(format!(
            "--cos {} has {width} values per row, but rotary_dim {rotary_dim} needs {} (or {rotary_dim} with the halves repeated)",
            names.0,
            rotary_dim / 2
        )))
    }
}
