//! `bfrope apply INPUT -o OUTPUT [options]`: rotate BF16, F16 and F32 tensors of a safetensors file
//! (output dtype = input dtype; F64 and integer tensors are refused).
//!
//! The output path (`-` for stdout) is settled before any work and written through a
//! temporary file renamed at the end: see the `output` module.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bfrope::table::ShortFloat;
use bfrope::{
    cpu, AngleMode, Direction, Error, Gpu, Pairing, Positions, Precision, RopeCall, RopeShape,
    RopeTable, Rotation,
};
use safetensors::tensor::Dtype;

use crate::placement;
use crate::stream::{Input, PIECE_BYTES};
use crate::table_source;
use crate::{ms, output, CliError, CliResult};

/// Tensor layouts `apply` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `[batch, seq, heads, head_dim]` (the seed's, Moshi's, flash-attn's), or with
    /// `--heads N` also `[batch, seq, hidden]` (ONNX's 3-D input) as `[batch, seq, N, hidden/N]`.
    Bshd,
    /// `[batch, heads, seq, head_dim]` (Hugging Face's).
    Bhsd,
    /// Packed `[tokens, heads, head_dim]` (flash-attn's varlen), with `--cu-seqlens` or
    /// `--positions`.
    Thd,
}

/// Which elements pair up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RotationArg {
    /// `(x[2i], x[2i+1])`: the seed, GPT-J, Meta, GLM, DeepSeek.
    Interleaved,
    /// `(x[i], x[i + R/2])`: GPT-NeoX and Hugging Face's `rotate_half`.
    Half,
}

/// How the rows of a 2-D `--cos`/`--sin` table are indexed (`--layout thd` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableRows {
    /// Row r holds position r; tokens are placed by `--cu-seqlens` or `--positions`.
    Position,
    /// Row t holds packed token t (`[T, N/2]` or `[T, N]`).
    Token,
}

/// Where the rotation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The best (or the chosen) adapter; the CPU path if there is none.
    Auto,
    /// A GPU adapter; fail if there is none.
    Gpu,
    /// The CPU path.
    Cpu,
}

/// Kernel arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Correctly rounded: the same bits everywhere (default).
    Exact,
    /// Plain f32 arithmetic, driver-dependent bits (GPU only, for comparison).
    Fast,
    /// Hugging Face transformers' eager bf16 arithmetic, bit for bit (cos, sin, each product
    /// and the sum rounded to bf16): a compatibility mode, GPU or CPU.
    Hf,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Exact => Precision::Exact,
            PrecisionArg::Fast => Precision::Fast,
            PrecisionArg::Hf => Precision::Hf,
        }
    }
}

/// Arguments of `bfrope apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The input safetensors file.
    input: PathBuf,
    /// The output safetensors file (every tensor of the input; the selected ones rotated), or
    /// `-` for stdout. Written to a temporary file in its folder and renamed at the end; a
    /// symlink's target is replaced; a directory, FIFO or device is refused.
    #[arg(short, long, value_name = "OUTPUT")]
    output: PathBuf,
    /// Names of the tensors to rotate, comma-separated (default: every BF16, F16 and F32 tensor
    /// of rank 4, or 3 with --layout thd, or 3 and 4 with --heads under --layout bshd, other
    /// than those named by --cos, --sin, --positions, --cu-seqlens and --inv-freq).
    #[arg(long, value_delimiter = ',')]
    tensors: Option<Vec<String>>,
    /// Tensor layout: the order of the four dimensions in memory.
    #[arg(long, value_enum, default_value = "bshd")]
    layout: Layout,
    /// Heads per token (ONNX RotaryEmbedding's num_heads). A 3-D tensor [batch, seq, hidden]
    /// is then rotated as bshd [batch, seq, N, hidden/N] and written back in its 3-D shape
    /// (hidden must divide by N; --layout bhsd takes 4-D tensors only); a 4-D tensor (or a
    /// thd [tokens, heads, head_dim] one) must have N heads. Without it a 3-D tensor is
    /// refused, except under --layout thd. Tensors with other head counts (GQA's k) take a
    /// call of their own.
    #[arg(long, value_name = "N")]
    heads: Option<usize>,
    /// Pair convention (default interleaved, or what --hf-config says).
    #[arg(long, value_enum)]
    rotation: Option<RotationArg>,
    /// Rotate the first N dims of each head (even; default head_dim); the rest are copied.
    #[arg(long, value_name = "N")]
    rotary_dim: Option<usize>,
    /// Name of a cosine table in INPUT, F32, F16 or BF16 (widened exactly to f32): [rows, N/2]
    /// (row r = position r), or one row per token [B, S, N/2] ([T, N/2] or [1, T, N/2] for
    /// thd); a last dim of N with the halves repeated (Hugging Face's form) is accepted. With --layout thd a 2-D table is
    /// per token without --cu-seqlens/--positions and by position with them; where both
    /// readings fit and differ, --table-rows says which.
    #[arg(long, value_name = "NAME")]
    cos: Option<String>,
    /// Name of a sine table in INPUT (F32, F16 or BF16), shaped as --cos.
    #[arg(long, value_name = "NAME")]
    sin: Option<String>,
    /// RoPE base of the built table (default 10000).
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    base: Option<f64>,
    /// Angle mode of the built table: exact or torch (default exact).
    #[arg(long, value_name = "MODE")]
    angles: Option<String>,
    /// A Hugging Face config.json: base, scaling variant, partial rotary, head_dim, pairing
    /// hint and multi-axis sections; explicit flags win over it.
    #[arg(long, value_name = "PATH")]
    hf_config: Option<PathBuf>,
    #[command(flatten)]
    layer: table_source::LayerArgs,
    /// Build the table from this F32 [N/2] inverse-frequency vector in INPUT.
    #[arg(long, value_name = "NAME")]
    inv_freq: Option<String>,
    /// Multi-axis positions: axial|mrope|mrope-interleaved:n0,n1,.. (sections in pairs), with
    /// --positions NAME of shape [A, S] or [A, B, S].
    #[arg(long, value_name = "KIND:n0,n1,..")]
    axes: Option<String>,
    /// Position of the first token of every sequence (default 0).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    position_offset: Option<u64>,
    /// I32/I64 position ids from INPUT: [S] or [B,S] ([T] for thd).
    #[arg(long, value_name = "NAME")]
    positions: Option<String>,
    /// I32/I64 [B+1] sequence starts in the packed token dimension (--layout thd).
    #[arg(long, value_name = "NAME")]
    cu_seqlens: Option<String>,
    /// With --layout thd: the rows of a 2-D --cos/--sin table are positions or tokens.
    #[arg(long, value_enum, value_name = "INDEX")]
    table_rows: Option<TableRows>,
    /// Rotate by -angle (the backward pass; undoes a forward rotation).
    #[arg(long)]
    inverse: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// Choose the adapter whose name, backend or driver contains SUBSTRING.
    #[arg(long, value_name = "SUBSTRING")]
    adapter: Option<String>,
    /// Kernel arithmetic.
    #[arg(long, value_enum, default_value = "exact")]
    precision: PrecisionArg,
    /// Largest GPU binding to use, in bytes (default: the device's limit): the library
    /// splits larger calls into more dispatches; tests use it to force slicing.
    #[arg(long, value_name = "BYTES", hide = true)]
    max_binding: Option<u64>,
}

/// Where the table of a tensor comes from.
enum TableSource {
    User {
        cos: Vec<f32>,
        sin: Vec<f32>,
        shape: Vec<usize>,
        names: (String, String),
    },
    Built(Box<table_source::Built>),
}

/// A tensor to rotate, validated.
struct Job {
    name: String,
    /// Its dims as the file holds them (in `--layout` order).
    dims: Vec<usize>,
    /// The same tensor as a contiguous BSHD shape (what is streamed).
    shape: RopeShape,
    rotary_dim: usize,
    /// Index of its table.
    table: usize,
    /// The table row of each token of `shape` (the streamed order).
    positions: Positions,
    /// Its dtype, in and out (BF16, F16 or F32).
    dtype: bfrope::Dtype,
}

/// The dtype bfrope rotates a safetensors dtype in, or `None` (F64, integers, ...).
fn rotatable(dtype: Dtype) -> Option<bfrope::Dtype> {
    match dtype {
        Dtype::BF16 => Some(bfrope::Dtype::Bf16),
        Dtype::F16 => Some(bfrope::Dtype::F16),
        Dtype::F32 => Some(bfrope::Dtype::F32),
        _ => None,
    }
}

/// Raw element bits decoded from and encoded to little-endian bytes.
trait LeBits: bfrope::Bits {
    fn from_le(b: &[u8]) -> Self;
    fn put_le(self, out: &mut Vec<u8>);
}

impl LeBits for u16 {
    fn from_le(b: &[u8]) -> Self {
        u16::from_le_bytes([b[0], b[1]])
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl LeBits for u32 {
    fn from_le(b: &[u8]) -> Self {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// Positions of a `[batch, seq]` tensor for its BHSD form streamed as BSHD
/// `[batch · heads, seq, 1, head_dim]`: every head of a batch row at the row's positions.
fn over_heads(positions: Positions, batch: usize, heads: usize, seq: usize) -> Positions {
    match positions {
        Positions::Offset(o) => Positions::Offset(o),
        Positions::PerBatch(v) => Positions::PerBatch(
            v.iter()
                .flat_map(|&o| std::iter::repeat_n(o, heads))
                .collect(),
        ),
        Positions::PerToken(ids) => Positions::PerToken(
            (0..batch)
                .flat_map(|b| (0..heads).flat_map(move |_| b * seq..(b + 1) * seq))
                .map(|t| ids[t])
                .collect(),
        ),
    }
}

fn f32_table(input: &Input, name: &str, flag: &str) -> CliResult<(Vec<f32>, Vec<usize>)> {
    let t = input.info(name).ok_or_else(|| {
        CliError::usage(format!(
            "{flag} names tensor {name:?}, which is not in the input"
        ))
    })?;
    // F16 and BF16 tables (ONNX's and Hugging Face's, in the model's dtype) widen exactly:
    // every f16 and bf16 value is an f32.
    let widen: fn(&[u8]) -> f32 = match t.dtype {
        Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        Dtype::F16 => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
        Dtype::BF16 => |b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        other => {
            return Err(CliError::usage(format!(
                "{flag} tensor {name:?} is {other:?}, but tables must be F32, F16 or BF16"
            )))
        }
    };
    if !(2..=3).contains(&t.shape.len()) {
        return Err(CliError::usage(format!(
            "{flag} tensor {name:?} has shape {:?}, but tables must be [rows, N/2] or [batch, seq, N/2]",
            t.shape
        )));
    }
    let shape = t.shape.clone();
    let size = if t.dtype == Dtype::F32 { 4 } else { 2 };
    let values: Vec<f32> = input.data(t).chunks_exact(size).map(widen).collect();
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        let first = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
        eprintln!(
            "warning: {flag} {name} holds {bad} non-finite values (the first, {}, at index {first}); \
             they rotate as IEEE arithmetic says: NaN in, NaN out; inf·0 and inf−inf are NaN",
            values[first]
        );
    }
    Ok((values, shape))
}

/// Where the pieces of one tensor are rotated.
enum Engine<'a, 'g> {
    /// The GPU, the table kept there across pieces (fast kernels where the call allows).
    Gpu(&'a mut bfrope::Rotator<'g>),
    /// The CPU path.
    Cpu,
}

/// Rotates one tensor's bytes piece by piece into `out`: at most [`PIECE_BYTES`] of
/// whole tokens are resident at a time, on the GPU path and the CPU path alike. Elements
/// are the raw bits of the rotation's dtype (`u16` for BF16 and F16, `u32` for F32).
fn rotate_streamed(
    input: &Input,
    data: &[u8],
    job: &Job,
    table: &RopeTable,
    rotation: &Rotation,
    engine: Engine,
    out: &mut dyn Write,
) -> bfrope::Result<Result<(), std::io::Error>> {
    match rotation.dtype {
        bfrope::Dtype::F32 => {
            rotate_streamed_as::<u32>(input, data, job, table, rotation, engine, out)
        }
        _ => rotate_streamed_as::<u16>(input, data, job, table, rotation, engine, out),
    }
}

fn rotate_streamed_as<E: LeBits>(
    input: &Input,
    data: &[u8],
    job: &Job,
    table: &RopeTable,
    rotation: &Rotation,
    mut engine: Engine,
    out: &mut dyn Write,
) -> bfrope::Result<Result<(), std::io::Error>> {
    let shape = job.shape;
    let size = E::BYTES;
    let token_bytes = shape.heads * shape.head_dim * size;
    let ranges = shape.token_ranges((PIECE_BYTES / token_bytes).max(1));
    let largest = ranges.iter().map(|r| r.tokens).max().unwrap_or(0) * token_bytes / size;
    let mut x: Vec<E> = Vec::with_capacity(largest);
    let on_gpu = matches!(engine, Engine::Gpu(_));
    let mut y = vec![E::default(); if on_gpu { largest } else { 0 }];
    let mut bytes_out = Vec::with_capacity(largest * size);
    for r in ranges {
        let e = r.elements(&shape);
        let bytes = &data[e.start * size..e.end * size];
        x.clear();
        x.extend(bytes.chunks_exact(size).map(E::from_le));
        let positions = job.positions.piece(shape.seq, &r);
        let call = RopeCall {
            view: r.shape(&shape).into(),
            rotation: *rotation,
            positions: &positions,
            table,
        };
        let result: &[E] = match &mut engine {
            Engine::Gpu(rotator) => {
                let y = &mut y[..x.len()];
                rotator.apply_into_blocking(&call, &x, y)?;
                y
            }
            // Contiguous interleaved pieces take the threaded fast path inside.
            Engine::Cpu => {
                cpu::apply_in_place(&call, &mut x)?;
                &x
            }
        };
        bytes_out.clear();
        result.iter().for_each(|&b| b.put_le(&mut bytes_out));
        if let Err(e) = out.write_all(&bytes_out) {
            return Ok(Err(e));
        }
        input.release(bytes);
    }
    Ok(Ok(()))
}

/// The CLI name of a `--table-rows` value.
fn table_rows_name(t: TableRows) -> &'static str {
    match t {
        TableRows::Position => "position",
        TableRows::Token => "token",
    }
}

/// Whether a 2-D table of `trows` rows holds one row per token of a packed (`--layout thd`)
/// tensor of `tokens` tokens, placed at `positions` when flags give them. Without positions
/// it must (nothing else could place the tokens); with them it is read by position, unless
/// it has exactly one row per token and the positions are not `0, 1, ...`: then the two
/// readings differ and `--table-rows` must say which.
fn thd_table_rows(
    a: &ApplyArgs,
    cos: &str,
    trows: usize,
    tokens: usize,
    positions: Option<&[usize]>,
) -> CliResult<bool> {
    let placed_by = match (&a.cu_seqlens, &a.positions) {
        (Some(c), _) => format!("--cu-seqlens {c}"),
        (None, Some(p)) => format!("--positions {p}"),
        (None, None) => String::new(),
    };
    match (a.table_rows, positions) {
        (Some(TableRows::Position), None) => Err(CliError::usage(format!(
            "--table-rows position reads --cos {cos} by position, but --layout thd has no --cu-seqlens or --positions to place the packed tokens"
        ))),
        (Some(TableRows::Position), Some(_)) => Ok(false),
        (Some(TableRows::Token), Some(_)) => Err(CliError::usage(format!(
            "--table-rows token reads --cos {cos} one row per token; {placed_by} does not apply"
        ))),
        (_, None) if trows != tokens => Err(CliError::usage(format!(
            "--cos {cos} has {trows} rows, but as one row per token of the {tokens} packed tokens it needs {tokens}; to read it by position give --cu-seqlens or --positions"
        ))),
        (_, None) => Ok(true),
        (None, Some(p)) => {
            if trows == tokens && p.iter().enumerate().any(|(t, &pos)| pos != t) {
                Err(CliError::usage(format!(
                    "--cos {cos} has {trows} rows, one per packed token, so it can be read by position (placed by {placed_by}) or one row per token, and the two differ; say which with --table-rows position or --table-rows token (then without {placed_by})"
                )))
            } else {
                Ok(false)
            }
        }
    }
}

/// Runs `bfrope apply`.
pub fn run(a: &ApplyArgs) -> CliResult<ExitCode> {
    // 1. Arguments.
    if let Some(base) = a.base {
        if !base.is_finite() || base <= 0.0 {
            return Err(CliError::usage(format!(
                "--base {} is not a finite positive number",
                ShortFloat(base)
            )));
        }
    }
    let angles = match &a.angles {
        Some(s) => s.parse::<AngleMode>().map_err(|_| {
            CliError::usage(format!(
                "--angles {s:?} is not a mode; expected exact or torch"
            ))
        })?,
        None => AngleMode::Exact,
    };
    match (&a.cos, &a.sin) {
        (Some(c), None) => return Err(CliError::usage(format!("--cos {c} needs --sin as well"))),
        (None, Some(s)) => return Err(CliError::usage(format!("--sin {s} needs --cos as well"))),
        (Some(_), Some(_)) => {
            if let Some(base) = a.base {
                return Err(CliError::usage(format!(
                    "--base {} cannot be combined with --cos/--sin tables",
                    ShortFloat(base)
                )));
            }
            if let Some(m) = &a.angles {
                return Err(CliError::usage(format!(
                    "--angles {m} cannot be combined with --cos/--sin tables"
                )));
            }
            table_source::refuse_with_tables(
                a.hf_config.as_deref(),
                a.inv_freq.as_deref(),
                a.axes.as_deref(),
            )?;
            if a.layer.choice().is_some() {
                return Err(CliError::usage(
                    "--layer-type and --layer pick a layer of a --hf-config model; with --cos/--sin tables they do not apply",
                ));
            }
        }
        (None, None) => {}
    }
    if a.heads == Some(0) {
        return Err(CliError::usage(
            "--heads 0 gives no heads; a tensor has at least one",
        ));
    }
    if a.backend == Backend::Cpu && a.precision == PrecisionArg::Fast {
        return Err(CliError::usage(
            "--precision fast needs the GPU; the CPU path computes exact results only",
        ));
    }
    if a.backend == Backend::Cpu {
        if let Some(s) = &a.adapter {
            return Err(CliError::usage(format!(
                "--adapter {s} cannot be combined with --backend cpu"
            )));
        }
    }
    let mut reads = vec![("input", a.input.as_path())];
    reads.extend(a.hf_config.as_deref().map(|p| ("--hf-config", p)));
    let target = output::resolve(&a.output, &reads)?;
    let offset = usize::try_from(a.position_offset.unwrap_or(0)).map_err(|_| {
        CliError::usage(format!(
            "--position-offset {} is too large",
            a.position_offset.unwrap_or(0)
        ))
    })?;
    if let (Some(p), Some(o)) = (&a.positions, a.position_offset) {
        return Err(CliError::usage(format!(
            "--position-offset {o} cannot be combined with --positions {p}"
        )));
    }
    if let (Some(p), Some(c)) = (&a.positions, &a.cu_seqlens) {
        return Err(CliError::usage(format!(
            "--positions {p} cannot be combined with --cu-seqlens {c}"
        )));
    }
    if let (Some(t), false) = (a.table_rows, a.layout == Layout::Thd) {
        return Err(CliError::usage(format!(
            "--table-rows {} applies to --layout thd only",
            table_rows_name(t)
        )));
    }
    if let (Some(t), None) = (a.table_rows, &a.cos) {
        return Err(CliError::usage(format!(
            "--table-rows {} applies to --cos/--sin tables only",
            table_rows_name(t)
        )));
    }
    match (a.layout, &a.cu_seqlens, &a.positions) {
        (Layout::Thd, None, None) if a.cos.is_none() => return Err(CliError::usage(
            "--layout thd needs --cu-seqlens NAME (or --positions NAME) to place the packed tokens, or --cos/--sin tables with one row per token",
        )),
        (Layout::Bshd | Layout::Bhsd, Some(c), _) => {
            return Err(CliError::usage(format!(
                "--cu-seqlens {c} applies to --layout thd only"
            )))
        }
        _ => {}
    }

    // 2. The input, mapped.
    let input = Input::open(&a.input)?;

    // 3. The table source.
    let source = match (&a.cos, &a.sin) {
        (Some(c), Some(s)) => {
            let (cos, cshape) = f32_table(&input, c, "--cos")?;
            let (sin, sshape) = f32_table(&input, s, "--sin")?;
            if cshape != sshape {
                return Err(CliError::usage(format!(
                    "--cos {c} has shape {cshape:?} but --sin {s} has shape {sshape:?}; they must match"
                )));
            }
            TableSource::User {
                cos,
                sin,
                shape: cshape,
                names: (c.clone(), s.clone()),
            }
        }
        _ => {
            let inv = match &a.inv_freq {
                Some(n) => Some(table_source::read_inv_freq(&input, n)?),
                None => None,
            };
            TableSource::Built(Box::new(table_source::Built::from_flags(
                a.hf_config.as_deref(),
                &a.layer,
                a.base,
                inv,
                angles,
                a.axes.as_deref(),
            )?))
        }
    };
    let pairing = match (a.rotation, &source) {
        (Some(RotationArg::Interleaved), _) => Pairing::Interleaved,
        (Some(RotationArg::Half), _) => Pairing::HalfSplit,
        (None, TableSource::Built(b)) => b.pairing().unwrap_or(Pairing::Interleaved),
        (None, _) => Pairing::Interleaved,
    };
    let multi_axis = matches!(&source, TableSource::Built(b) if b.axes().count() > 1);
    if let (true, Some(c)) = (multi_axis, &a.cu_seqlens) {
        return Err(CliError::usage(format!(
            "--cu-seqlens {c} does not apply to multi-axis positions; give --positions NAME [A, T]"
        )));
    }

    // 4. The tensors to rotate, each validated with its table.
    // 4-D tensors; packed 3-D under thd; with --heads under bshd, ONNX's 3-D [B, S, hidden] too.
    let ranks: &[usize] = match (a.layout, a.heads) {
        (Layout::Thd, _) => &[3],
        (Layout::Bshd, Some(_)) => &[3, 4],
        _ => &[4],
    };
    let names: Vec<String> = match &a.tensors {
        Some(list) => {
            let mut seen: Vec<String> = Vec::new();
            for raw in list {
                let n = raw.trim();
                if n.is_empty() {
                    return Err(CliError::usage(format!(
                        "--tensors {:?} holds an empty name",
                        list.join(",")
                    )));
                }
                if seen.iter().any(|s| s == n) {
                    return Err(CliError::usage(format!(
                        "--tensors names {n:?} twice; name each tensor once"
                    )));
                }
                seen.push(n.to_string());
            }
            seen
        }
        None => {
            let all: Vec<String> = input
                .names()
                .into_iter()
                .filter(|n| {
                    // Tensors named as tables, positions or sequence starts are never data.
                    let named = [&a.cos, &a.sin, &a.positions, &a.cu_seqlens, &a.inv_freq]
                        .into_iter()
                        .any(|f| f.as_deref() == Some(n.as_str()));
                    !named
                        && input.info(n).is_some_and(|t| {
                            rotatable(t.dtype).is_some() && ranks.contains(&t.shape.len())
                        })
                })
                .collect();
            if all.is_empty() {
                let rank = match ranks {
                    [r] => r.to_string(),
                    _ => "3 or 4".to_string(),
                };
                return Err(CliError::usage(format!(
                    "{} holds no BF16, F16 or F32 tensor of rank {rank} to rotate",
                    a.input.display()
                )));
            }
            all
        }
    };
    let mut jobs = Vec::new();
    let mut tables: Vec<RopeTable> = Vec::new();
    let mut per_token_table = false;
    for name in &names {
        let t = input.info(name).ok_or_else(|| {
            CliError::usage(format!(
                "no tensor named {name:?} in the input (it holds: {})",
                input.names().join(", ")
            ))
        })?;
        let Some(dtype) = rotatable(t.dtype) else {
            return Err(CliError::usage(format!(
                "tensor {name:?} is {:?}, but only BF16, F16 and F32 tensors can be rotated",
                t.dtype
            )));
        };
        let layout_name = match a.layout {
            Layout::Bshd if t.shape.len() == 3 && a.heads.is_some() => {
                "[batch, seq, hidden] split into --heads as [batch, seq, heads, hidden/heads]"
            }
            Layout::Bshd => "[batch, seq, heads, head_dim]",
            Layout::Bhsd => "[batch, heads, seq, head_dim]",
            Layout::Thd => "[tokens, heads, head_dim]",
        };
        let bad_shape = |reason: String| {
            CliError::usage(format!(
                "tensor {name:?} has shape {:?}, which bfrope cannot rotate as {layout_name}: {reason}",
                t.shape
            ))
        };
        let dims4 = match (a.layout, t.shape.as_slice(), a.heads) {
            (Layout::Thd, &[tk, h, d], _) => [1, tk, h, d],
            (Layout::Thd, other, _) => {
                return Err(bad_shape(format!(
                    "expected 3 dimensions, got {}",
                    other.len()
                )))
            }
            // ONNX's 3-D input: [B, S, hidden] is BSHD [B, S, N, hidden/N], the same bytes.
            (Layout::Bshd, &[b, s, hidden], Some(n)) => {
                if hidden % n != 0 {
                    return Err(CliError::usage(format!(
                        "tensor {name:?} has shape {:?}, whose hidden size {hidden} does not divide into --heads {n} heads",
                        t.shape
                    )));
                }
                [b, s, n, hidden / n]
            }
            (Layout::Bshd, &[_, _, _], None) => {
                return Err(CliError::usage(format!(
                    "tensor {name:?} has shape {:?}: a 3-D tensor is [batch, seq, hidden] and needs --heads N (ONNX's num_heads), or --layout thd for packed [tokens, heads, head_dim]",
                    t.shape
                )))
            }
            (Layout::Bhsd, &[_, _, _], _) => {
                return Err(CliError::usage(format!(
                    "tensor {name:?} has shape {:?}, but --layout bhsd takes 4-D [batch, heads, seq, head_dim] tensors; a 3-D [batch, seq, hidden] tensor with --heads is bshd",
                    t.shape
                )))
            }
            (_, &[d0, d1, d2, d3], _) => [d0, d1, d2, d3],
            (_, other, _) => {
                return Err(bad_shape(format!(
                    "expected 4 dimensions, got {}",
                    other.len()
                )))
            }
        };
        if let Some(n) = a.heads {
            let h = if a.layout == Layout::Bhsd {
                dims4[1]
            } else {
                dims4[2]
            };
            if h != n {
                return Err(CliError::usage(format!(
                    "tensor {name:?} has shape {:?} with {h} heads, but --heads is {n}",
                    t.shape
                )));
            }
        }
        if dims4[3] % 2 != 0 {
            let pairs = match pairing {
                Pairing::Interleaved => "interleaved RoPE pairs x[2i] with x[2i+1]",
                Pairing::HalfSplit => "half-split RoPE pairs x[i] with x[i + head_dim/2]",
            };
            return Err(bad_shape(format!(
                "head_dim {} is odd, and {pairs}",
                dims4[3]
            )));
        }
        let file_shape = RopeShape::from_dims(&dims4).map_err(|e| match e {
            Error::Shape { reason, .. } => bad_shape(reason),
            other => CliError::from(other).context(format!("tensor {name:?}")),
        })?;
        // The tensor as streamed: BSHD (and THD as [1, T, H, D]) as it is; BHSD
        // [B, H, S, D] is BSHD [B·H, S, 1, D] (every (batch, head) row is one sequence).
        let (shape, bhsd_heads) = match a.layout {
            Layout::Bshd | Layout::Thd => (file_shape, None),
            Layout::Bhsd => {
                let [b, h, s, d] = file_shape.dims();
                (RopeShape::new(b * h, s, 1, d)?, Some(h))
            }
        };
        let (batch, seq) = match a.layout {
            Layout::Bhsd => (dims4[0], dims4[2]),
            _ => (dims4[0], dims4[1]),
        };
        let built_dim = match &source {
            TableSource::Built(b) => {
                table_source::check_head_dim(b, name, shape.head_dim)?;
                b.rotary_dim()
            }
            _ => None,
        };
        let rotary_dim = a.rotary_dim.or(built_dim).unwrap_or(shape.head_dim);
        if rotary_dim == 0 || rotary_dim % 2 != 0 || rotary_dim > shape.head_dim {
            return Err(CliError::usage(format!(
                "--rotary-dim {rotary_dim} must be even and between 2 and tensor {name:?}'s head_dim {}",
                shape.head_dim
            )));
        }
        if let TableSource::Built(_) = &source {
            // Sized before it is built: one row per token (per position of a sequence when
            // every batch row starts at the offset), and the tokens' positions.
            let shared = a.positions.is_none() && a.cu_seqlens.is_none() && !multi_axis;
            let rows = if shared { seq } else { batch * seq } as u128;
            let pairs = (rotary_dim / 2) as u128;
            crate::memory::check_fits(
                || {
                    format!(
                        "tensor {name:?} {:?} (a table of {rows} rows x {pairs} pairs)",
                        t.shape
                    )
                },
                rows * pairs * 8 + (shape.batch * shape.seq) as u128 * 24,
            )?;
        }
        // Per-token positions from the flags, in the file's [batch, seq] token order.
        let multi_ids = match (&a.positions, multi_axis) {
            (Some(p), true) => Some(placement::read_ids(&input, p, "--positions")?),
            _ => None,
        };
        let token_positions: Option<Vec<usize>> = match (&a.positions, &a.cu_seqlens) {
            _ if multi_axis => None,
            (Some(p), _) => {
                let (ids, pshape) = placement::read_ids(&input, p, "--positions")?;
                Some(placement::positions_for(
                    &ids, &pshape, p, name, batch, seq,
                )?)
            }
            (None, Some(c)) => {
                let (cu, _) = placement::read_ids(&input, c, "--cu-seqlens")?;
                Some(placement::positions_from_cu_seqlens(&cu, c, seq, offset)?)
            }
            (None, None) => None,
        };
        let (table, positions) = match &source {
            TableSource::User {
                cos,
                sin,
                shape: tshape,
                names: (c, sn),
            } => {
                let names = (c.as_str(), sn.as_str());
                // A 2-D table is indexed by position, except under --layout thd where it may
                // hold one row per packed token (docs/CONTRACT.md §7: [T, N/2] or [T, N]).
                let per_token_rows = match *tshape.as_slice() {
                    [trows, _] if a.layout == Layout::Thd => {
                        thd_table_rows(a, c, trows, seq, token_positions.as_deref())?
                    }
                    [_, _] => false,
                    [tb, ts, _] => {
                        if tb != batch || ts != seq {
                            return Err(CliError::usage(format!(
                                "--cos {c} has shape {tshape:?}: one row per token of tensor {name:?} needs [{batch}, {seq}, ..]"
                            )));
                        }
                        if let Some(TableRows::Position) = a.table_rows {
                            return Err(CliError::usage(format!(
                                "--cos {c} has shape {tshape:?}, one row per token; --table-rows position needs a 2-D table"
                            )));
                        }
                        true
                    }
                    _ => unreachable!("f32_table checked the rank"),
                };
                let (trows, width) = match *tshape.as_slice() {
                    [r, w] => (r, w),
                    [tb, ts, w] => (tb * ts, w),
                    _ => unreachable!("f32_table checked the rank"),
                };
                let table = placement::user_table(cos, sin, trows, width, rotary_dim, names)?;
                per_token_table |= per_token_rows;
                let positions = if per_token_rows {
                    if a.positions.is_some()
                        || a.cu_seqlens.is_some()
                        || a.position_offset.is_some()
                    {
                        return Err(CliError::usage(format!(
                            "--cos {c} holds one row per token; --positions, --cu-seqlens and --position-offset do not apply"
                        )));
                    }
                    Positions::PerToken((0..trows).collect())
                } else {
                    match token_positions {
                        Some(p) => Positions::PerToken(p),
                        None => Positions::Offset(offset),
                    }
                };
                (table, positions)
            }
            TableSource::Built(b) => table_source::built_table(
                b,
                multi_ids
                    .as_ref()
                    .zip(a.positions.as_deref())
                    .map(|((ids, shape), p)| (ids.as_slice(), shape.as_slice(), p)),
                token_positions,
                name,
                batch,
                seq,
                rotary_dim,
                offset,
            )?,
        };
        // The one check of a call (table width, rows for every position), on the tensor as
        // the file holds it; then its positions in the streamed order.
        let file_view = match a.layout {
            Layout::Bhsd => bfrope::TensorView::bhsd(dims4[0], dims4[1], dims4[2], dims4[3]),
            _ => bfrope::TensorView::bshd(dims4[0], dims4[1], dims4[2], dims4[3]),
        };
        RopeCall::new(file_view, &positions, &table)
            .with_rotary_dim(rotary_dim)
            .validate(shape.elements())
            .map_err(|e| {
                let with = match &source {
                    TableSource::User { names: (c, sn), .. } => {
                        format!(" with --cos {c} / --sin {sn}")
                    }
                    TableSource::Built(_) => String::new(),
                };
                CliError::usage(format!("tensor {name:?} {:?}{with}: {e}", t.shape))
            })?;
        let positions = match bhsd_heads {
            Some(h) => over_heads(positions, batch, h, seq),
            None => positions,
        };
        tables.push(table);
        jobs.push(Job {
            name: name.clone(),
            dims: t.shape.clone(),
            shape,
            rotary_dim,
            table: tables.len() - 1,
            positions,
            dtype,
        });
    }

    // 5. The backend.
    let precision: Precision = a.precision.into();
    let named = |e: Error| match (&e, &a.adapter) {
        (Error::NoAdapter(_) | Error::Argument(_), Some(s)) => {
            CliError::from(e).context(format!("--adapter {s}"))
        }
        _ => CliError::from(e),
    };
    // auto leaves software rasterisers (llvmpipe, lavapipe, SwiftShader: device type Cpu)
    // to --backend gpu: the CPU path is several times faster than them.
    let software_only = match (a.backend, &a.adapter, precision) {
        (Backend::Auto, None, Precision::Exact | Precision::Hf) => {
            let adapters = pollster::block_on(bfrope::gpu::list_adapters());
            let soft = |r: &bfrope::gpu::AdapterReport| r.info.device_type == wgpu::DeviceType::Cpu;
            let mut names: Vec<&str> = adapters.iter().map(|r| r.info.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            match names.as_slice() {
                [] => None,
                _ if !adapters.iter().all(soft) => None,
                [one] => Some(format!(
                    "the only GPU adapter, {one}, is a software rasteriser"
                )),
                many => Some(format!(
                    "every GPU adapter ({}) is a software rasteriser",
                    many.join(", ")
                )),
            }
        }
        _ => None,
    };
    let gpu = match a.backend {
        Backend::Cpu => None,
        Backend::Auto if software_only.is_some() => None,
        Backend::Gpu => Some(Gpu::new_blocking(a.adapter.as_deref()).map_err(named)?),
        Backend::Auto => match Gpu::new_blocking(a.adapter.as_deref()) {
            Ok(g) => Some(g),
            Err(Error::NoAdapter(m)) if a.adapter.is_none() => {
                if precision == Precision::Fast {
                    return Err(CliError::failure(format!(
                        "--precision fast needs a GPU adapter, and there is none ({m})"
                    )));
                }
                eprintln!("no GPU adapter found; using the CPU path");
                None
            }
            Err(e) => return Err(named(e)),
        },
    };
    // The library's own slicing hook: dispatches of at most this many bytes per binding.
    let gpu = match (gpu, a.max_binding) {
        (Some(g), Some(bytes)) => Some(g.with_max_binding(bytes)),
        (g, _) => g,
    };
    let direction = if a.inverse {
        Direction::Inverse
    } else {
        Direction::Forward
    };

    // 6. Rotate while writing: the header verbatim, then every tensor in data order, copied
    //    or rotated piece by piece (a temporary file renamed at the end, or stdout).
    let t0 = Instant::now();
    let mut sink = crate::progress::Counting::new(target.open()?, input.size(), "rotating");
    let mut rotators: HashMap<usize, bfrope::Rotator> = HashMap::new();
    let rotated: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    input.write_to(&mut sink, &target, &rotated, |name, data, out| {
        let job = jobs
            .iter()
            .find(|j| j.name == name)
            .expect("a job per rotated name");
        let table = &tables[job.table];
        let failed = |e: bfrope::Error| {
            CliError::from(e).context(format!("rotating tensor {name:?} failed"))
        };
        let rotation = Rotation {
            pairing,
            rotary_dim: job.rotary_dim,
            direction,
            precision,
            dtype: job.dtype,
        };
        let engine = match &gpu {
            Some(g) => Engine::Gpu(match rotators.entry(job.table) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(g.rotator_blocking(table).map_err(failed)?)
                }
            }),
            None => Engine::Cpu,
        };
        let written =
            rotate_streamed(&input, data, job, table, &rotation, engine, out).map_err(failed)?;
        written.map_err(|e| CliError::failure(format!("cannot write {target}: {e}")))
    })?;
    sink.finish().commit()?;
    let rotate_time = t0.elapsed();

    // 8. Report.
    let ran_on = match &gpu {
        Some(g) => format!("GPU {} ({precision:?})", g.adapter().summary()),
        None => match &software_only {
            Some(why) => format!("the CPU path (auto: {why})"),
            None => "the CPU path".to_string(),
        },
    };
    let placed = match (&a.positions, &a.cu_seqlens) {
        (Some(p), _) => format!("positions {p}"),
        (None, Some(c)) => format!("cu_seqlens {c} from position {offset}"),
        (None, None) => format!("from position {offset}"),
    };
    let table_desc = match &source {
        TableSource::User { names: (c, s), .. } if per_token_table => {
            format!("tables {c}/{s}, one row per token")
        }
        TableSource::User { names: (c, s), .. } => format!("tables {c}/{s}, {placed}"),
        TableSource::Built(b) => format!(
            "{}, {placed}",
            b.describe(jobs.first().map_or(0, |j| j.rotary_dim))
        ),
    };
    let list: Vec<String> = jobs
        .iter()
        .map(|j| {
            let partial = if j.rotary_dim < j.shape.head_dim {
                format!(" rotary_dim {}", j.rotary_dim)
            } else {
                String::new()
            };
            let split = if j.dims.len() == 3 && a.layout != Layout::Thd {
                format!(" as {} heads of {}", j.shape.heads, j.shape.head_dim)
            } else {
                String::new()
            };
            format!("{} {:?}{split}{partial}", j.name, j.dims)
        })
        .collect();
    let layout = match a.layout {
        Layout::Bshd => "bshd",
        Layout::Bhsd => "bhsd",
        Layout::Thd => "thd",
    };
    if let TableSource::Built(b) = &source {
        b.print_config_summary();
    }
    eprintln!(
        "rotated {} ({layout}, {} pairs, {}, {table_desc}) on {ran_on}; wrote {} tensors to {} in {}",
        list.join(", "),
        pairing.name(),
        if a.inverse { "inverse" } else { "forward" },
        input.names().len(),
        target,
        ms(rotate_time),
    );
    Ok(ExitCode::SUCCESS)
}
