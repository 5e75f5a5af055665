//! The one planner: every call on GPU buffers ([`GpuCall`]) is checked against its buffers
//! and the device's limits, gets its kernel ([`KernelKey`]: a contiguous kernel when one
//! serves the call, else the general one) and is split into dispatches that each fit one
//! storage binding and one dispatch grid (a `Plan`). The pipeline owner
//! ([`RopeKernels`](crate::gpu::RopeKernels)) records plans; it never chooses.
//!
//! A contiguous dispatch covers a [`TokenRange`] of whole tokens. Its tensor window (input
//! and output alike) and its table window are bound at offsets rounded down to the device's
//! `min_storage_buffer_offset_alignment`; the kernel adds the rest (`src_base`, in words,
//! and `table_base`, in table entries, subtracted) so no data is ever copied per slice. A
//! general dispatch covers a box of whole heads of each view it binds (`plan_general`).

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::gpu::call::{BufferCall, GpuCall, RopeArgs, ViewArgs, ViewTensor};
use crate::gpu::key::{Kernel, KernelKey, WORKGROUP_SIZE};
use crate::shape::{Direction, RopeShape, TokenRange};
use crate::spec::{Pairing, Positions, RopeCall, Rotation, TensorView};

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

/// Splits `groups` workgroups into a balanced 2-D grid within the per-dimension limit:
/// `y = ceil(groups / max)` rows of `x = ceil(groups / y)`, so fewer than `y` workgroups are
/// wasted (65,536 groups launch as 32,768 × 2, not 65,535 × 2). Kernels index workgroups as
/// `wid.y * nwg.x + wid.x` and return past the end.
pub fn dispatch_grid(groups: u32, max_per_dim: u32) -> Result<(u32, u32)> {
    if groups == 0 {
        return Ok((0, 0));
    }
    let y = groups.div_ceil(max_per_dim.max(1));
    if y > max_per_dim {
        return Err(Error::Limit(format!(
            "{groups} workgroups exceed a {max_per_dim} x {max_per_dim} grid"
        )));
    }
    let x = groups.div_ceil(y);
    Ok((x, y))
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
    pub units: u32,
    pub chunk: u32,
    pub group_tokens: u32,
    pub inv_chunk: f32,
}

/// The uniform block of `rope_general.wgsl` (`Params`), byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ViewParams {
    pub batch: u32,
    pub seq: u32,
    pub head_dim: u32,
    pub pairs: u32,
    pub slots: u32,
    pub sin_sign: u32,
    pub table_base: u32,
    pub table_rows: u32,
    pub per_token: u32,
    pub invocations_q: u32,
    pub invocations: u32,
    pub heads_q: u32,
    pub stride_b_q: u32,
    pub stride_s_q: u32,
    pub stride_h_q: u32,
    pub offset_q: u32,
    pub heads_k: u32,
    pub stride_b_k: u32,
    pub stride_s_k: u32,
    pub stride_h_k: u32,
    pub offset_k: u32,
    pub rot_slots: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// A uniform block as Rust lays it out: `(kernel, size, [(member, byte offset)])`.
pub type UniformLayout = (&'static str, usize, Vec<(&'static str, usize)>);

/// Every uniform block as `(WGSL struct's kernel, size, [(member, byte offset)])`, as Rust
/// lays it out: `tests/device/shaders.rs` checks each against naga's reflection of the WGSL struct,
/// so the two cannot drift apart.
pub fn uniform_layouts() -> Vec<UniformLayout> {
    use std::mem::{offset_of, size_of};
    macro_rules! members {
        ($t:ty: $($f:ident),*) => { vec![$((stringify!($f), offset_of!($t, $f))),*] };
    }
    vec![
        (
            "contiguous",
            size_of::<RopeParams>(),
            members!(RopeParams: words, pairs, heads, seq, row_offset, sin_sign, token_words,
                tokens, inv_pairs, src_base, table_base, seq_start, units, chunk, group_tokens,
                inv_chunk),
        ),
        (
            "general",
            size_of::<ViewParams>(),
            members!(ViewParams: batch, seq, head_dim, pairs, slots, sin_sign, table_base,
                table_rows, per_token, invocations_q, invocations, heads_q, stride_b_q,
                stride_s_q, stride_h_q, offset_q, heads_k, stride_b_k, stride_s_k, stride_h_k,
                offset_k, rot_slots, _pad1, _pad2),
        ),
    ]
}

/// The uniform block of one dispatch: the contiguous kernels' or the general kernel's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Params {
    Contiguous(RopeParams),
    General(ViewParams),
}

impl Params {
    /// The block's bytes, as the kernel reads them.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Params::Contiguous(p) => bytemuck::bytes_of(p),
            Params::General(p) => bytemuck::bytes_of(p),
        }
    }
}

/// One dispatch of a plan: its kernel, parameters, binding windows and grid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dispatch {
    pub key: KernelKey,
    pub params: Params,
    /// The general kernel's `rows` binding contents when the host knows the positions
    /// (`None`: the call's device rows; the contiguous kernels bind none).
    pub rows: Option<Vec<u32>>,
    /// Binding windows `(offset, size)` of the tensors it binds (input and output alike),
    /// one per entry of `views`.
    pub tensors: Vec<(u64, u64)>,
    /// Which tensors of the call (0: q, 1: k) this dispatch binds.
    pub views: Vec<usize>,
    /// The table's binding window `(offset, size)`.
    pub table: (u64, u64),
    pub grid: (u32, u32, u32),
}

/// The checked, split form of a call: the buffers it binds, a copy recorded before the
/// dispatches, and the dispatches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan<'a> {
    /// Input and output buffers of each tensor of the call (0: q, 1: k).
    pub tensors: Vec<(&'a wgpu::Buffer, &'a wgpu::Buffer)>,
    pub table: &'a wgpu::Buffer,
    /// The call's table rows in a GPU buffer, if any.
    pub device_rows: Option<&'a wgpu::Buffer>,
    /// Bytes `(offset, size)` copied from the first tensor's input to its output before the
    /// dispatches: what a [`BufferCall`]'s output holds outside what the kernels write.
    pub copy: Option<(u64, u64)>,
    pub dispatches: Vec<Dispatch>,
}

/// Checks `call` and plans it: its kernel and dispatches within `limits`.
pub(crate) fn plan<'a>(call: &GpuCall<'a>, limits: PlanLimits) -> Result<Plan<'a>> {
    match call {
        GpuCall::Contiguous(args) => plan_contiguous(args, limits),
        GpuCall::View(args) => plan_general(args, limits),
        GpuCall::Buffer(call) => plan_buffer(call, limits),
    }
}

/// The contiguous form of `call` when a contiguous kernel serves it: `(shape, row offset,
/// pairing)` ([`RopeCall::contiguous_pairs`] with a [`KernelKey::for_contiguous`]).
fn contiguous_route(call: &RopeCall<'_>) -> Option<(RopeShape, usize, Pairing)> {
    let r = &call.rotation;
    call.contiguous_pairs().filter(|(shape, _, pairing)| {
        KernelKey::for_contiguous(shape, *pairing, r.precision, r.dtype).is_some()
    })
}

/// The kernel `call` runs on out of place as a [`BufferCall`] (what
/// [`Gpu::apply`](crate::Gpu::apply) and the [`Rotator`](crate::Rotator) run): a contiguous BSHD or BHSD
/// call over the whole head at an offset ([`RopeCall::contiguous_pairs`]) takes the
/// contiguous kernel for its shape ([`KernelKey::for_contiguous`]: bf16 or f16; half-split
/// with pairs per head a multiple of 4), every other call (and every f32 call) the general
/// kernel on one view, on whole words or 16-bit halves. `table_in_range` as
/// [`RopeTable::in_fast_range`](crate::RopeTable::in_fast_range) says of the call's table.
pub fn kernel_for(call: &RopeCall<'_>) -> KernelKey {
    let r = &call.rotation;
    let table_in_range = call.table.in_fast_range();
    match contiguous_route(call) {
        Some((shape, _, pairing)) => {
            KernelKey::for_contiguous(&shape, pairing, r.precision, r.dtype)
                .expect("a contiguous route has a contiguous kernel")
                .with_table_in_range(table_in_range)
        }
        None => general_key(r, whole_words(r, &[call.view]), false, 1, table_in_range),
    }
}

/// Plans a [`BufferCall`] on the kernel [`kernel_for`] names, with the copy that gives the
/// output the input's bytes outside what the kernels write.
fn plan_buffer<'a>(b: &BufferCall<'a>, limits: PlanLimits) -> Result<Plan<'a>> {
    let call = &b.call;
    if b.input == b.output {
        return Err(Error::Argument(
            "a buffer call's input and output must be different buffers".into(),
        ));
    }
    if b.bytes % 4 != 0 {
        return Err(Error::Argument(format!(
            "a buffer call moves whole words: {} bytes is not a multiple of 4",
            b.bytes
        )));
    }
    for (name, buf, usage) in [
        ("input", b.input, wgpu::BufferUsages::COPY_SRC),
        ("output", b.output, wgpu::BufferUsages::COPY_DST),
    ] {
        if buf.size() < b.bytes || !buf.usage().contains(usage) {
            return Err(Error::Argument(format!(
                "{name} buffer of {} bytes needs {} bytes and {usage:?} usage",
                buf.size(),
                b.bytes
            )));
        }
    }
    let r = &call.rotation;
    let (mut plan, copy) = match contiguous_route(call) {
        Some((shape, row_offset, pairing)) => {
            let args = RopeArgs {
                input: b.input,
                output: b.output,
                table: b.table,
                table_rows: call.table.rows(),
                row_offset,
                shape,
                direction: r.direction,
                precision: r.precision,
                dtype: r.dtype,
                pairing,
                table_in_range: b.table_in_range,
            };
            // The contiguous kernels write the tensor; the bytes after it are copied.
            let span = shape.elements() as u64 * r.dtype.size() as u64;
            let tail = (span < b.bytes).then_some((span, b.bytes - span));
            (plan_contiguous(&args, limits)?, tail)
        }
        None => {
            let args = ViewArgs {
                q: ViewTensor {
                    input: b.input,
                    output: b.output,
                    view: call.view,
                },
                k: None,
                table: b.table,
                table_rows: call.table.rows(),
                rotation: *r,
                positions: call.positions,
                device_rows: None,
                table_in_range: b.table_in_range,
            };
            // The general kernel writes the view alone: the output starts as the input.
            (plan_general(&args, limits)?, Some((0, b.bytes)))
        }
    };
    plan.copy = copy;
    Ok(plan)
}

/// Checks a contiguous call against its buffers (a mistake there is [`Error::Argument`]) and
/// the table against the shape, then splits it within `limits`.
fn plan_contiguous<'a>(args: &RopeArgs<'a>, limits: PlanLimits) -> Result<Plan<'a>> {
    let shape = &args.shape;
    if args.dtype == Dtype::F32 {
        return Err(Error::Argument(
            "the contiguous kernels take bf16 or f16 tensors (two per word); record an f32 \
             tensor as a view (ViewArgs)"
                .into(),
        ));
    }
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
    Ok(Plan {
        tensors: vec![(args.input, args.output)],
        table: args.table,
        device_rows: None,
        copy: None,
        dispatches: split(args, limits)?,
    })
}

/// Splits a checked contiguous call into dispatches (the buffers play no part).
fn split(args: &RopeArgs, limits: PlanLimits) -> Result<Vec<Dispatch>> {
    let shape = &args.shape;
    let key = KernelKey::for_contiguous(shape, args.pairing, args.precision, args.dtype)
        .ok_or_else(|| Error::Shape {
            shape: vec![shape.batch, shape.seq, shape.heads, shape.head_dim],
            reason: match args.dtype {
                Dtype::F32 => "f32 tensors have no contiguous kernel (one element per word); the general kernel (ViewArgs) takes them".to_string(),
                _ => format!(
                    "half-split pairs on the contiguous kernels need pairs per head ({}) to be a multiple of 4; the general kernel (ViewArgs) takes any",
                    shape.pairs()
                ),
            },
        })?
        .with_table_in_range(args.table_in_range);
    let token_words = (shape.heads * shape.pairs()) as u64;
    let token_bytes = token_words * 4;
    let row_bytes = shape.pairs() as u64 * 8;
    let align = limits.offset_alignment.max(16).next_power_of_two();
    let max = limits.max_binding;
    let dim = limits.max_workgroups_per_dim as u64;
    let wg = WORKGROUP_SIZE as u64;
    // Tokens one grid can cover.
    let by_grid = if let Some((units, _, group)) = vec4_units(key.kernel, token_words) {
        if units.div_ceil(wg) > dim {
            return Err(Error::Limit(format!(
                "one token of {token_words} words needs more than {dim} workgroups"
            )));
        }
        dim * dim * group
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
        dispatches.push(contiguous_dispatch(args, key, r, align, limits)?);
    }
    Ok(dispatches)
}

/// The vec4 kernels' grid for tokens of `token_words` words: (units per token, units per
/// workgroup row, tokens per workgroup); `None` for the scalar kernel.
fn vec4_units(kernel: Kernel, token_words: u64) -> Option<(u64, u64, u64)> {
    let units = match kernel {
        // Both rotate 4 words per invocation (interleaved: 4 pairs; half-split: 4 + 4 elements).
        Kernel::Vec4 | Kernel::Vec4Half => token_words / 4,
        _ => return None,
    };
    let chunk = units.min(WORKGROUP_SIZE as u64);
    Some((units, chunk, WORKGROUP_SIZE as u64 / chunk))
}

fn contiguous_dispatch(
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
    let (units, chunk, group) = vec4_units(key.kernel, token_words).unwrap_or((0, 1, 1));
    let grid = if units > 0 {
        let gx = units.div_ceil(chunk) as u32;
        let (gy, gz) = dispatch_grid((r.tokens as u64).div_ceil(group) as u32, dim)?;
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
        units: units as u32,
        chunk: chunk as u32,
        group_tokens: group as u32,
        inv_chunk: 1.0 / chunk as f32,
    };
    Ok(Dispatch {
        key,
        params: Params::Contiguous(params),
        rows: None,
        tensors: vec![(off, end - off)],
        views: vec![0],
        table: (t_off, t_end - t_off),
        grid,
    })
}

/// Words holding `elements` elements of `size` bytes (2: two per word, 4: one per word).
fn words_of(elements: u64, size: u64) -> u64 {
    (elements * size).div_ceil(4)
}

/// Checks a view call (the one validation of [`crate::spec`], then the buffers) and plans
/// it on the general kernel: one dispatch, or two when q and k share a buffer that one of them writes (bindings
/// may not alias). A view whose tensor or table window exceeds the binding limit (or 2^32
/// invocations) is cut on its own into pieces of whole heads ([`cut`]: ranges of its
/// outermost dims in memory), each dispatched as a view of its own: its dims, the element
/// offset of its first head in a window bound at an aligned offset, and the table rows of
/// its tokens (`rows`, re-based to the piece). A head never straddles two windows: one that
/// does not fit alone is refused, and so is a split of a call whose rows are in a GPU
/// buffer (the kernel indexes them from the piece's first token).
fn plan_general<'a>(args: &ViewArgs<'a>, limits: PlanLimits) -> Result<Plan<'a>> {
    let rot = &args.rotation;
    let size = rot.dtype.size() as u64;
    let host_positions = match args.device_rows {
        Some(_) => &Positions::Offset(0),
        None => args.positions,
    };
    let tensors: Vec<ViewTensor> = std::iter::once(args.q).chain(args.k).collect();
    let in_place = args.q.input == args.q.output;
    for (n, t) in tensors.iter().enumerate() {
        let which = ["q", "k"][n];
        crate::spec::check(
            &t.view,
            rot,
            host_positions,
            args.table_rows,
            rot.pairs(),
            usize::MAX,
        )
        .map_err(|e| match args.k {
            Some(_) => Error::Argument(format!("{which}: {e}")),
            None => e,
        })?;
        if (t.input == t.output) != in_place {
            return Err(Error::Argument(
                "q and k must both be in place or both out of place".into(),
            ));
        }
        let need = words_of(t.view.span() as u64, size) * 4;
        for (name, buf) in [("input", t.input), ("output", t.output)] {
            if buf.size() < need {
                return Err(Error::Argument(format!(
                    "{which} {name} buffer holds {} bytes, needs {need}",
                    buf.size()
                )));
            }
            if !buf.usage().contains(wgpu::BufferUsages::STORAGE) {
                return Err(Error::Argument(format!(
                    "{which} {name} buffer lacks STORAGE usage"
                )));
            }
        }
    }
    if let Some(k) = &args.k {
        let (q, kv) = (&args.q.view, &k.view);
        if q.batch() != kv.batch() || q.seq() != kv.seq() || q.head_dim() != kv.head_dim() {
            return Err(Error::Argument(format!(
                "q {:?} and k {:?} must share batch, seq and head_dim",
                q.dims, kv.dims
            )));
        }
    }
    let pairs = rot.pairs() as u64;
    let table_bytes = args.table_rows as u64 * pairs * 8;
    if args.table.size() < table_bytes || !args.table.usage().contains(wgpu::BufferUsages::STORAGE)
    {
        return Err(Error::Argument(format!(
            "table buffer of {} bytes needs {table_bytes} bytes and STORAGE usage",
            args.table.size()
        )));
    }
    let view = args.q.view;
    let seq = view.seq();
    // The table rows of the tokens, as far as the host knows them.
    let host_rows = match (args.device_rows, args.positions) {
        (Some(buf), _) => {
            let tokens = view.batch() * seq;
            if buf.size() < tokens as u64 * 4 || !buf.usage().contains(wgpu::BufferUsages::STORAGE)
            {
                return Err(Error::Argument(format!(
                    "device_rows buffer of {} bytes needs {} bytes (one u32 per token) and STORAGE usage",
                    buf.size(),
                    tokens * 4
                )));
            }
            HostRows::Device
        }
        // Rows fit in u32: spec::check bounds rows × pairs by 2^32.
        (None, Positions::PerToken(ids)) => {
            HostRows::PerToken(ids.iter().map(|&r| r as u32).collect())
        }
        (None, p) => {
            HostRows::PerBatch((0..view.batch()).map(|b| p.row(b, 0, seq) as u32).collect())
        }
    };
    let align = limits.offset_alignment.max(16).next_power_of_two();
    let max = limits.max_binding;
    let table_rows = args.table_rows as u64;
    // The table window `(offset, size)` a piece reads.
    let table_window = |p: &Piece| -> (u64, u64) {
        let (first, last) = host_rows.span(p, seq, table_rows);
        let t_off = first * pairs * 8 / align * align;
        (t_off, last * pairs * 8 - t_off)
    };
    let f32 = rot.dtype == Dtype::F32;
    let views: Vec<TensorView> = tensors.iter().map(|t| t.view).collect();
    let words = whole_words(rot, &views);
    let d = view.head_dim() as u32;
    let rot_slots = match rot.pairing {
        Pairing::Interleaved => pairs as u32,
        Pairing::HalfSplit => pairs as u32 / 2,
    };
    // Invocations per head: the rotating ones, and out of place one per pass-through word
    // (words) or pair of elements (halves).
    let slots = match (words && !f32, in_place) {
        (true, true) => rot_slots,
        (true, false) => rot_slots + d / 2 - pairs as u32,
        (false, true) => pairs as u32,
        (false, false) => d / 2,
    };
    let invocations = |p: &Piece| p.heads() * slots as u64;
    // Does one dispatch over `pieces` (one per view of a group) fit the limits?
    let fits = |group: &[usize], pieces: &[Piece]| {
        let tensors_fit = group
            .iter()
            .zip(pieces)
            .all(|(&n, p)| p.window(&tensors[n].view, size, align).1 <= max);
        let total: u64 = pieces.iter().map(invocations).sum();
        tensors_fit
            && table_window(&pieces[0]).1 <= max
            && total <= u32::MAX as u64
            && total.div_ceil(WORKGROUP_SIZE as u64)
                <= (limits.max_workgroups_per_dim as u64).pow(2)
    };
    // q and k bound together unless a buffer one of them writes is also bound for the other.
    let together = match &args.k {
        None => true,
        Some(k) => {
            let q = &args.q;
            let clash =
                k.output == q.output || (!in_place && (k.output == q.input || q.output == k.input));
            !clash
        }
    };
    let groups: Vec<Vec<usize>> = match (&args.k, together) {
        (None, _) => vec![vec![0]],
        (Some(_), true) => vec![vec![0, 1]],
        (Some(_), false) => vec![vec![0], vec![1]],
    };
    // Each group in one dispatch when it fits; else each view on its own, cut into pieces
    // of whole heads that do (the largest ranges of its outermost dims in memory).
    let mut planned: Vec<(Vec<usize>, Vec<Piece>)> = Vec::new();
    for group in groups {
        let whole: Vec<Piece> = group
            .iter()
            .map(|&n| Piece::whole(&tensors[n].view))
            .collect();
        if fits(&group, &whole) {
            planned.push((group, whole));
            continue;
        }
        if args.device_rows.is_some() {
            let v = &tensors[group[0]].view;
            return Err(Error::Limit(format!(
                "a view spanning {} bytes exceeds the storage binding limit of {max} bytes, and a call whose positions are in a GPU buffer (device_rows) is not split; pass the positions from the host",
                Piece::whole(v).window(v, size, align).1
            )));
        }
        for &n in &group {
            let v = &tensors[n].view;
            let mut pieces = Vec::new();
            let fits_one = |p: &Piece| fits(&[n], std::slice::from_ref(p));
            let refuse = |p: &Piece| {
                let (off, bytes) = p.window(v, size, align);
                Error::Limit(format!(
                    "one head of {} elements at element {} needs a {bytes}-byte tensor window (from the aligned byte offset {off}) and a {}-byte table window; this device's storage binding limit is {max} bytes",
                    v.head_dim(),
                    v.head_start(p.lo[0], p.lo[1], p.lo[2]),
                    table_window(p).1
                ))
            };
            cut(v, 0, [0; 3], &fits_one, &refuse, &mut pieces)?;
            planned.extend(pieces.into_iter().map(|p| (vec![n], vec![p])));
        }
    }
    let mut out = Vec::with_capacity(planned.len());
    for (group, pieces) in planned {
        let first = &pieces[0];
        let (t_off, t_size) = table_window(first);
        let mut params = ViewParams {
            batch: first.n[0] as u32,
            seq: first.n[1] as u32,
            head_dim: d,
            pairs: pairs as u32,
            slots,
            rot_slots,
            sin_sign: match rot.direction {
                Direction::Forward => 0,
                Direction::Inverse => 0x8000_0000,
            },
            table_base: (t_off / 8) as u32,
            table_rows: args.table_rows as u32,
            per_token: u32::from(host_rows.per_token()),
            ..ViewParams::default()
        };
        let mut windows = Vec::new();
        let mut total = 0u64;
        for (slot, (&n, p)) in group.iter().zip(&pieces).enumerate() {
            let v = tensors[n].view;
            let w = p.window(&v, size, align);
            let inv = invocations(p);
            let fields = (
                p.n[2] as u32,
                v.strides[0] as u32,
                v.strides[1] as u32,
                v.strides[2] as u32,
                (v.head_start(p.lo[0], p.lo[1], p.lo[2]) as u64 - w.0 / size) as u32,
            );
            if slot == 0 {
                (
                    params.heads_q,
                    params.stride_b_q,
                    params.stride_s_q,
                    params.stride_h_q,
                    params.offset_q,
                ) = fields;
                params.invocations_q = inv as u32;
            } else {
                (
                    params.heads_k,
                    params.stride_b_k,
                    params.stride_s_k,
                    params.stride_h_k,
                    params.offset_k,
                ) = fields;
            }
            total += inv;
            windows.push(w);
        }
        params.invocations = total as u32;
        let grid = dispatch_grid(
            total.div_ceil(WORKGROUP_SIZE as u64) as u32,
            limits.max_workgroups_per_dim,
        )?;
        out.push(Dispatch {
            key: general_key(
                rot,
                words,
                in_place,
                group.len() as u32,
                args.table_in_range,
            ),
            params: Params::General(params),
            rows: host_rows.piece(first, seq),
            tensors: windows,
            views: group,
            table: (t_off, t_size),
            grid: (grid.0, grid.1, 1),
        });
    }
    Ok(Plan {
        tensors: tensors.iter().map(|t| (t.input, t.output)).collect(),
        table: args.table,
        device_rows: args.device_rows,
        copy: None,
        dispatches: out,
    })
}

/// Whether the general kernel takes the `views` on whole words: every head of every view
/// starts on a word and, half-split, the halves are whole words; else 16-bit halves.
/// (Windows start at offsets of at least 16 bytes, so a piece keeps its view's parity.)
/// f32: always (every element is a word; the f32 modules index elements like halves do).
fn whole_words(rot: &Rotation, views: &[TensorView]) -> bool {
    rot.dtype == Dtype::F32
        || views
            .iter()
            .all(|v| v.offset % 2 == 0 && v.strides.iter().all(|st| st % 2 == 0))
            && (rot.pairing == Pairing::Interleaved || rot.pairs() % 2 == 0)
}

/// The general kernel's key for `views` views per dispatch.
fn general_key(
    rot: &Rotation,
    words: bool,
    in_place: bool,
    views: u32,
    table_in_range: bool,
) -> KernelKey {
    KernelKey {
        precision: rot.precision,
        dtype: rot.dtype,
        kernel: Kernel::General {
            pairing: rot.pairing,
            in_place,
            views,
            words,
        },
        table_in_range: false,
    }
    .with_table_in_range(table_in_range)
}

/// The table rows of a view call's tokens as the host knows them.
enum HostRows {
    /// In a GPU buffer: any row may be read.
    Device,
    /// One start row per batch row: token `(b, s)` at `starts[b] + s`.
    PerBatch(Vec<u32>),
    /// One row per token `b · seq + s`.
    PerToken(Vec<u32>),
}

impl HostRows {
    fn per_token(&self) -> bool {
        !matches!(self, HostRows::PerBatch(_))
    }

    /// The rows `first..last` the tokens of `p` read (the whole table for device rows).
    fn span(&self, p: &Piece, seq: usize, table_rows: u64) -> (u64, u64) {
        let bs = p.lo[0]..p.lo[0] + p.n[0];
        match self {
            HostRows::Device => (0, table_rows),
            HostRows::PerBatch(starts) => {
                let (lo, hi) = starts[bs]
                    .iter()
                    .fold((u32::MAX, 0), |(lo, hi), &r| (lo.min(r), hi.max(r)));
                let s = p.lo[1] as u64;
                (lo as u64 + s, hi as u64 + s + p.n[1] as u64)
            }
            HostRows::PerToken(ids) => {
                let (lo, hi) = bs
                    .flat_map(|b| &ids[b * seq + p.lo[1]..][..p.n[1]])
                    .fold((u32::MAX, 0), |(lo, hi), &r| (lo.min(r), hi.max(r)));
                (lo as u64, hi as u64 + 1)
            }
        }
    }

    /// The `rows` binding of a dispatch over `p`, which the kernel indexes from the piece's
    /// own first token: `rows[b] + s` or `rows[b · n_seq + s]` (`None`: the GPU buffer).
    fn piece(&self, p: &Piece, seq: usize) -> Option<Vec<u32>> {
        let bs = p.lo[0]..p.lo[0] + p.n[0];
        match self {
            HostRows::Device => None,
            HostRows::PerBatch(starts) => {
                Some(starts[bs].iter().map(|&r| r + p.lo[1] as u32).collect())
            }
            HostRows::PerToken(ids) => Some(
                bs.flat_map(|b| &ids[b * seq + p.lo[1]..][..p.n[1]])
                    .copied()
                    .collect(),
            ),
        }
    }
}

/// A box of whole heads of a view: batch rows, tokens and heads `lo[i] .. lo[i] + n[i]`
/// (index 0: batch, 1: seq, 2: heads). One dispatch rotates it as a view of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    lo: [usize; 3],
    n: [usize; 3],
}

impl Piece {
    fn whole(v: &TensorView) -> Self {
        Self {
            lo: [0; 3],
            n: [v.batch(), v.seq(), v.heads()],
        }
    }

    fn heads(&self) -> u64 {
        self.n.iter().map(|&n| n as u64).product()
    }

    /// The binding window `(offset, size)` in bytes holding the piece's elements of `size`
    /// bytes (2: bf16/f16, two per word; 4: f32, one per word): from its first element
    /// rounded down to `align`, to the word after its last.
    fn window(&self, v: &TensorView, size: u64, align: u64) -> (u64, u64) {
        let [b, s, h] = self.lo;
        let start = v.head_start(b, s, h) as u64 * size;
        let last = v.head_start(b + self.n[0] - 1, s + self.n[1] - 1, h + self.n[2] - 1);
        let end = (last + v.head_dim()) as u64;
        let off = start / align * align;
        (off, words_of(end, size) * 4 - off)
    }
}

/// Cuts the part of view `v` at the fixed outer indices `lo` into pieces that `fits`:
/// the dims in memory order (largest stride first; dims of one index first), each level
/// taking the largest ranges that fit, and an index that does not fit on its own cut at the
/// next level down. A single head that does not fit is refused (`refuse` names it): a head
/// is never split, so every invocation sees its whole pair.
fn cut(
    v: &TensorView,
    level: usize,
    lo: [usize; 3],
    fits: &dyn Fn(&Piece) -> bool,
    refuse: &dyn Fn(&Piece) -> Error,
    out: &mut Vec<Piece>,
) -> Result<()> {
    let mut order = [0usize, 1, 2];
    order.sort_by_key(|&i| (v.dims[i] > 1, std::cmp::Reverse(v.strides[i])));
    let dim = order[level];
    let total = v.dims[dim];
    let piece = |a: usize, n: usize| {
        let mut p = Piece { lo, n: [1; 3] };
        p.lo[dim] = a;
        p.n[dim] = n;
        for &inner in &order[level + 1..] {
            p.lo[inner] = 0;
            p.n[inner] = v.dims[inner];
        }
        p
    };
    let mut a = 0;
    while a < total {
        if fits(&piece(a, 1)) {
            // The largest count that fits: doubling, then bisection between fits(good) and
            // not fits(bad) (a check may cost as much as the piece's tokens, so never more
            // than twice the piece).
            let rest = total - a;
            let (mut good, mut bad) = (1, rest + 1);
            while good < rest {
                let n = (2 * good).min(rest);
                if fits(&piece(a, n)) {
                    good = n;
                } else {
                    bad = n;
                    break;
                }
            }
            while bad - good > 1 {
                let mid = good + (bad - good) / 2;
                if fits(&piece(a, mid)) {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            out.push(piece(a, good));
            a += good;
        } else if level == 2 {
            return Err(refuse(&piece(a, 1)));
        } else {
            let mut inner = lo;
            inner[dim] = a;
            cut(v, level + 1, inner, fits, refuse, out)?;
            a += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces cover every head of a view exactly once, each within the binding limit, for
    /// BSHD, BHSD and padded strided views at odd offsets and limits from one head up.
    #[test]
    fn plan_pieces_cover_every_head_once_within_the_limit() {
        let views = [
            TensorView::bshd(2, 5, 3, 8),
            TensorView::bhsd(3, 4, 7, 6).with_offset(5),
            TensorView {
                dims: [2, 3, 4, 6],
                strides: [200, 60, 7],
                offset: 3,
            },
            TensorView::bhsd(1, 1, 9, 16),
        ];
        for v in views {
            let head = (v.head_dim() as u64 + 2) * 2;
            for max in [16 + head, 16 + 2 * head + 6, 16 + 5 * head, 1 << 20] {
                let fits = |p: &Piece| p.window(&v, 2, 16).1 <= max;
                let refuse = |p: &Piece| Error::Limit(format!("{p:?}"));
                let mut pieces = Vec::new();
                cut(&v, 0, [0; 3], &fits, &refuse, &mut pieces).unwrap();
                let [nb, ns, nh, _] = v.dims;
                let mut seen = vec![0u32; nb * ns * nh];
                for p in &pieces {
                    assert!(fits(p), "{v:?} max {max}: {p:?} too large");
                    for b in p.lo[0]..p.lo[0] + p.n[0] {
                        for s in p.lo[1]..p.lo[1] + p.n[1] {
                            for h in p.lo[2]..p.lo[2] + p.n[2] {
                                seen[(b * ns + s) * nh + h] += 1;
                            }
                        }
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "{v:?} max {max}: {seen:?}");
                if max == 1 << 20 {
                    assert_eq!(pieces.len(), 1, "{v:?}: one piece when it all fits");
                }
            }
            let fits = |p: &Piece| p.window(&v, 2, 16).1 <= 8;
            let refuse = |p: &Piece| Error::Limit(format!("head at {:?}", p.lo));
            let e = cut(&v, 0, [0; 3], &fits, &refuse, &mut Vec::new()).unwrap_err();
            assert!(e.to_string().contains("head at [0, 0, 0]"), "{e}");
        }
    }
}
