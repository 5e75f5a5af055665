//! Plan, then record: a call is checked against its buffers and the device's limits, and
//! split into dispatches that each fit one storage binding and one dispatch grid.
//!
//! A dispatch covers a [`TokenRange`] of whole tokens. Its tensor window (input and output
//! alike) and its table window are bound at offsets rounded down to the device's
//! `min_storage_buffer_offset_alignment`; the kernel adds the rest (`src_base`, in words,
//! and `table_base`, in table entries, subtracted) so no data is ever copied per slice.

use crate::error::{Error, Result};
use crate::gpu::kernels::KernelKey;
use crate::gpu::{dispatch_grid, WORKGROUP_SIZE};
use crate::shape::{Direction, Precision, RopeShape, TokenRange};

/// One RoPE call: the caller's buffers and what to do with them.
#[derive(Debug, Clone, Copy)]
pub struct RopeArgs<'a> {
    /// Packed bf16 input (`STORAGE`), at least `shape.elements() * 2` bytes.
    pub input: &'a wgpu::Buffer,
    /// Packed bf16 output (`STORAGE`), at least as large; must not be `input`.
    pub output: &'a wgpu::Buffer,
    /// `(cos, sin)` f32 pairs (`STORAGE`), `table_rows × shape.pairs()` of them.
    pub table: &'a wgpu::Buffer,
    /// Rows in `table`.
    pub table_rows: usize,
    /// Table row of sequence index 0 (the position offset for a table starting at 0).
    pub row_offset: usize,
    /// The tensor's shape.
    pub shape: RopeShape,
    /// Forward or inverse.
    pub direction: Direction,
    /// Exact (default) or plain f32.
    pub precision: Precision,
}

/// The uniform block of `rope.wgsl` (`Params`), byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RopeParams {
    pub words: u32,
    pub pairs: u32,
    pub heads: u32,
    pub seq: u32,
    pub row_offset: u32,
    pub sin_sign: u32,
    pub token_words: u32,
    pub tokens: u32,
    pub inv_pairs: f32,
    pub src_base: u32,
    pub table_base: u32,
    pub seq_start: u32,
}

/// The device limits a plan respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Largest storage binding, bytes.
    pub max_binding: u64,
    /// Binding offsets are multiples of this (a power of two).
    pub offset_alignment: u64,
    /// Workgroups per grid dimension.
    pub max_workgroups_per_dim: u32,
}

impl PlanLimits {
    /// The limits of `device`.
    pub fn of(device: &wgpu::Device) -> Self {
        let l = device.limits();
        Self {
            max_binding: l.max_storage_buffer_binding_size,
            offset_alignment: l.min_storage_buffer_offset_alignment as u64,
            max_workgroups_per_dim: l.max_compute_workgroups_per_dimension,
        }
    }
}

/// One dispatch of a plan: its parameters, binding windows `(offset, size)` and grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dispatch {
    pub params: RopeParams,
    pub tensor: (u64, u64),
    pub table: (u64, u64),
    pub grid: (u32, u32, u32),
}

/// The checked, split form of a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub key: KernelKey,
    pub dispatches: Vec<Dispatch>,
}

/// Checks `args` against its buffers (a mistake there is [`Error::Argument`]) and the table
/// against the shape, then splits it within `limits`.
pub(crate) fn plan(args: &RopeArgs, limits: PlanLimits) -> Result<Plan> {
    let shape = &args.shape;
    if args.input == args.output {
        return Err(Error::Argument(
            "input and output must be different buffers (bindings may not alias)".into(),
        ));
    }
    let bytes = shape.elements() as u64 * 2;
    let pairs = shape.pairs();
    let need_rows = args.row_offset.saturating_add(shape.seq);
    if need_rows > args.table_rows {
        return Err(Error::Table(format!(
            "table has {} rows but sequence length {} at position offset {} needs {need_rows}",
            args.table_rows, shape.seq, args.row_offset
        )));
    }
    if (need_rows as u64).saturating_mul(pairs as u64) > u32::MAX as u64 {
        return Err(Error::Limit(format!(
            "table rows up to {need_rows} of {pairs} pairs exceed 32-bit indexing"
        )));
    }
    let table_bytes = (args.table_rows * pairs) as u64 * 8;
    for (name, buf, need) in [
        ("input", args.input, bytes),
        ("output", args.output, bytes),
        ("table", args.table, table_bytes),
    ] {
        if buf.size() < need {
            return Err(Error::Argument(format!(
                "{name} buffer holds {} bytes, needs {need}",
                buf.size()
            )));
        }
        if !buf.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::Argument(format!(
                "{name} buffer lacks STORAGE usage"
            )));
        }
    }
    split(args, limits)
}

/// Splits a checked call into dispatches (no buffers needed: unit-testable).
pub(crate) fn split(args: &RopeArgs, limits: PlanLimits) -> Result<Plan> {
    let shape = &args.shape;
    let key = KernelKey::for_shape(shape, args.precision);
    let token_words = (shape.heads * shape.pairs()) as u64;
    let token_bytes = token_words * 4;
    let row_bytes = shape.pairs() as u64 * 8;
    let align = limits.offset_alignment.max(16).next_power_of_two();
    let max = limits.max_binding;
    let dim = limits.max_workgroups_per_dim as u64;
    let wg = WORKGROUP_SIZE as u64;
    // Tokens one grid can cover.
    let by_grid = if key.words_per_thread == 4 {
        if token_words.div_ceil(4 * wg) > dim {
            return Err(Error::Limit(format!(
                "one token of {token_words} words needs more than {dim} workgroups"
            )));
        }
        dim * dim
    } else {
        dim * dim * wg / token_words
    };
    let tokens = shape.tokens() as u64;
    let seq = shape.seq as u64;
    let max_tokens =
        if tokens * token_bytes <= max && seq * row_bytes + align <= max && tokens <= by_grid {
            tokens
        } else {
            let avail = max.saturating_sub(align);
            let cap = (avail / token_bytes).min(by_grid);
            if cap >= seq && seq * row_bytes + align <= max {
                cap
            } else {
                cap.min(avail / row_bytes).min(seq)
            }
        };
    if max_tokens == 0 {
        return Err(Error::Limit(format!(
            "one token ({token_bytes} bytes, {row_bytes} bytes of table) does not fit this device's storage binding limit of {max} bytes"
        )));
    }
    let ranges = shape.token_ranges(usize::try_from(max_tokens).unwrap_or(usize::MAX));
    let mut dispatches = Vec::with_capacity(ranges.len());
    for r in &ranges {
        dispatches.push(dispatch(args, key, r, align, limits)?);
    }
    Ok(Plan { key, dispatches })
}

fn dispatch(
    args: &RopeArgs,
    key: KernelKey,
    r: &TokenRange,
    align: u64,
    limits: PlanLimits,
) -> Result<Dispatch> {
    let shape = &args.shape;
    let token_words = (shape.heads * shape.pairs()) as u64;
    let start = r.first_token as u64 * token_words * 4;
    let end = start + r.tokens as u64 * token_words * 4;
    let off = start / align * align;
    let rows = r.rows(shape);
    let pairs = shape.pairs() as u64;
    let t_start = (args.row_offset + rows.start) as u64 * pairs * 8;
    let t_end = (args.row_offset + rows.end) as u64 * pairs * 8;
    let t_off = t_start / align * align;
    let too_big = |what: &str, n: u64| {
        Error::Limit(format!(
            "a {what} window of {n} bytes exceeds the storage binding limit of {} bytes",
            limits.max_binding
        ))
    };
    if end - off > limits.max_binding {
        return Err(too_big("tensor", end - off));
    }
    if t_end - t_off > limits.max_binding {
        return Err(too_big("table", t_end - t_off));
    }
    let words = r.tokens as u64 * token_words;
    let dim = limits.max_workgroups_per_dim;
    let grid = if key.words_per_thread == 4 {
        let gx = (token_words as u32).div_ceil(4 * WORKGROUP_SIZE);
        let (gy, gz) = dispatch_grid(r.tokens as u32, dim)?;
        (gx, gy, gz)
    } else {
        let (gx, gy) = dispatch_grid((words.div_ceil(WORKGROUP_SIZE as u64)) as u32, dim)?;
        (gx, gy, 1)
    };
    let params = RopeParams {
        words: words as u32,
        pairs: pairs as u32,
        heads: shape.heads as u32,
        seq: shape.seq as u32,
        row_offset: args.row_offset as u32,
        sin_sign: match args.direction {
            Direction::Forward => 0,
            Direction::Inverse => 0x8000_0000,
        },
        token_words: token_words as u32,
        tokens: r.tokens as u32,
        inv_pairs: 1.0 / pairs as f32,
        src_base: ((start - off) / 4) as u32,
        table_base: (t_off / 8) as u32,
        seq_start: r.seq_start as u32,
    };
    Ok(Dispatch {
        params,
        tensor: (off, end - off),
        table: (t_off, t_end - t_off),
        grid,
    })
}
