//! `bfrope apply INPUT -o OUTPUT [options]`: rotate BF16 tensors of a safetensors file.
//!
//! The output path (`-` for stdout) is settled before any work and written through a
//! temporary file renamed at the end: see the `output` module.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bfrope::{cpu, AngleMode, Direction, Error, Gpu, Precision, RopeShape, RopeTable, TableSpec};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{bits_from_le, le_from_bits, ms, output, CliError, CliResult};

/// Tensor layouts `apply` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `[batch, seq, heads, head_dim]`.
    Bshd,
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
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Exact => Precision::Exact,
            PrecisionArg::Fast => Precision::Fast,
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
    /// Names of the tensors to rotate, comma-separated (default: every BF16 tensor of rank 4).
    #[arg(long, value_delimiter = ',')]
    tensors: Option<Vec<String>>,
    /// Tensor layout.
    #[arg(long, value_enum, default_value = "bshd")]
    layout: Layout,
    /// Name of an F32 [rows, head_dim/2] cosine table in INPUT (row r = position r).
    #[arg(long, value_name = "NAME")]
    cos: Option<String>,
    /// Name of an F32 [rows, head_dim/2] sine table in INPUT.
    #[arg(long, value_name = "NAME")]
    sin: Option<String>,
    /// RoPE base of the built table (default 10000).
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    base: Option<f64>,
    /// Angle mode of the built table: exact or torch (default exact).
    #[arg(long, value_name = "MODE")]
    angles: Option<String>,
    /// Position of the first token.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_hyphen_values = true
    )]
    position_offset: u64,
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
    /// Largest GPU binding to use, in bytes (default: the device's limit). Larger tensors
    /// and tables are rotated in slices of whole tokens; tests use it to force slicing.
    #[arg(long, value_name = "BYTES", hide = true)]
    max_binding: Option<u64>,
}

/// Rotates on the GPU, in slices of whole tokens when the tensor or its table exceeds the
/// storage binding limit (`limit` overrides the device's when smaller).
#[allow(clippy::too_many_arguments)]
fn rotate_on_gpu(
    gpu: &Gpu,
    x: &[u16],
    shape: RopeShape,
    table: &RopeTable,
    row_offset: usize,
    direction: Direction,
    precision: Precision,
    limit: Option<u64>,
) -> bfrope::Result<Vec<u16>> {
    let device_limit = gpu.adapter().max_storage_binding;
    let limit = limit.map_or(device_limit, |l| l.min(device_limit));
    let pairs = shape.pairs();
    let tensor_bytes = shape.elements() as u64 * 2;
    let table_bytes = table.as_bytes().len() as u64;
    if tensor_bytes <= limit && table_bytes <= limit {
        return gpu.rotate_bits_blocking(x, shape, table, row_offset, direction, precision);
    }
    table.check_fits(shape.seq, pairs, row_offset)?;
    let token = shape.heads * shape.head_dim;
    let per_token = (token as u64 * 2).max(pairs as u64 * 8);
    let tokens = usize::try_from(limit / per_token)
        .unwrap_or(usize::MAX)
        .min(shape.seq);
    if tokens == 0 {
        return Err(Error::Limit(format!(
            "one token of {} bytes exceeds the storage binding limit of {limit} bytes",
            token * 2
        )));
    }
    let mut out = Vec::with_capacity(x.len());
    for b in 0..shape.batch {
        let mut s0 = 0;
        while s0 < shape.seq {
            let len = tokens.min(shape.seq - s0);
            let first_row = row_offset + s0;
            let rows = &table.cos_sin()[first_row * pairs..(first_row + len) * pairs];
            let cos: Vec<f32> = rows.iter().map(|r| r[0]).collect();
            let sin: Vec<f32> = rows.iter().map(|r| r[1]).collect();
            let sub_table = RopeTable::from_cos_sin(&cos, &sin, len, pairs)?;
            let sub_shape = RopeShape::new(1, len, shape.heads, shape.head_dim)?;
            let first = (b * shape.seq + s0) * token;
            let y = gpu.rotate_bits_blocking(
                &x[first..first + len * token],
                sub_shape,
                &sub_table,
                0,
                direction,
                precision,
            )?;
            out.extend_from_slice(&y);
            s0 += len;
        }
    }
    Ok(out)
}

/// Where the table of a tensor comes from.
enum TableSource {
    User {
        table: RopeTable,
        names: (String, String),
    },
    Built {
        base: f64,
        angles: AngleMode,
    },
}

/// A tensor to rotate, validated.
struct Job {
    name: String,
    shape: RopeShape,
}

fn f32_table(st: &SafeTensors, name: &str, flag: &str) -> CliResult<(Vec<f32>, [usize; 2])> {
    let t = st.tensor(name).map_err(|_| {
        CliError::usage(format!(
            "{flag} names tensor {name:?}, which is not in the input"
        ))
    })?;
    if t.dtype() != Dtype::F32 {
        return Err(CliError::usage(format!(
            "{flag} tensor {name:?} is {:?}, but tables must be F32",
            t.dtype()
        )));
    }
    let shape: [usize; 2] = t.shape().try_into().map_err(|_| {
        CliError::usage(format!(
            "{flag} tensor {name:?} has shape {:?}, but tables must be [rows, head_dim/2]",
            t.shape()
        ))
    })?;
    let values = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((values, shape))
}

/// Runs `bfrope apply`.
pub fn run(a: &ApplyArgs) -> CliResult<ExitCode> {
    // 1. Arguments.
    let Layout::Bshd = a.layout;
    if let Some(base) = a.base {
        if !base.is_finite() || base <= 0.0 {
            return Err(CliError::usage(format!(
                "--base {base} is not a finite positive number"
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
                    "--base {base} cannot be combined with --cos/--sin tables"
                )));
            }
            if let Some(m) = &a.angles {
                return Err(CliError::usage(format!(
                    "--angles {m} cannot be combined with --cos/--sin tables"
                )));
            }
        }
        (None, None) => {}
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
    let target = output::resolve(&a.output, &a.input)?;
    let offset = usize::try_from(a.position_offset).map_err(|_| {
        CliError::usage(format!(
            "--position-offset {} is too large",
            a.position_offset
        ))
    })?;

    // 2. The input.
    let bytes = std::fs::read(&a.input).map_err(|e| {
        CliError::usage(format!("cannot read input file {}: {e}", a.input.display()))
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        CliError::usage(format!(
            "{} is not a valid safetensors file: {e}",
            a.input.display()
        ))
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
        CliError::usage(format!(
            "{} is not a valid safetensors file: {e}",
            a.input.display()
        ))
    })?;

    // 3. The table source.
    let source = match (&a.cos, &a.sin) {
        (Some(c), Some(s)) => {
            let (cos, cshape) = f32_table(&st, c, "--cos")?;
            let (sin, sshape) = f32_table(&st, s, "--sin")?;
            if cshape != sshape {
                return Err(CliError::usage(format!(
                    "--cos {c} has shape {cshape:?} but --sin {s} has shape {sshape:?}; they must match"
                )));
            }
            let table = RopeTable::from_cos_sin(&cos, &sin, cshape[0], cshape[1])
                .map_err(|e| CliError::from(e).context(format!("--cos {c}")))?;
            TableSource::User {
                table,
                names: (c.clone(), s.clone()),
            }
        }
        _ => TableSource::Built {
            base: a.base.unwrap_or(10000.0),
            angles,
        },
    };

    // 4. The tensors to rotate, each validated with its table.
    let names: Vec<String> = match &a.tensors {
        Some(list) => {
            let mut seen = Vec::new();
            for n in list {
                if n.is_empty() {
                    return Err(CliError::usage("--tensors holds an empty name"));
                }
                if !seen.contains(n) {
                    seen.push(n.clone());
                }
            }
            seen
        }
        None => {
            let mut all: Vec<String> = st
                .iter()
                .filter(|(_, t)| t.dtype() == Dtype::BF16 && t.shape().len() == 4)
                .map(|(n, _)| n.to_string())
                .collect();
            all.sort();
            if all.is_empty() {
                return Err(CliError::usage(format!(
                    "{} holds no BF16 tensor of rank 4 to rotate",
                    a.input.display()
                )));
            }
            all
        }
    };
    let mut jobs = Vec::new();
    let mut built: HashMap<(usize, usize), RopeTable> = HashMap::new();
    for name in &names {
        let t = st.tensor(name).map_err(|_| {
            let mut have: Vec<&str> = st.names();
            have.sort();
            CliError::usage(format!(
                "no tensor named {name:?} in the input (it holds: {})",
                have.join(", ")
            ))
        })?;
        if t.dtype() != Dtype::BF16 {
            return Err(CliError::usage(format!(
                "tensor {name:?} is {:?}, but only BF16 tensors can be rotated",
                t.dtype()
            )));
        }
        let shape = RopeShape::from_dims(t.shape()).map_err(|e| match e {
            Error::Shape { shape, reason } => CliError::usage(format!(
                "tensor {name:?} has shape {shape:?}, which bfrope cannot rotate as [batch, seq, heads, head_dim]: {reason}"
            )),
            other => CliError::from(other).context(format!("tensor {name:?}")),
        })?;
        match &source {
            TableSource::User {
                table,
                names: (c, _),
            } => {
                table
                    .check_fits(shape.seq, shape.pairs(), offset)
                    .map_err(|e| {
                        CliError::usage(format!(
                            "--cos {c} does not fit tensor {name:?} {:?}: {e}",
                            shape.dims()
                        ))
                    })?;
            }
            TableSource::Built { base, angles } => {
                if let std::collections::hash_map::Entry::Vacant(v) =
                    built.entry((shape.seq, shape.head_dim))
                {
                    let spec = TableSpec {
                        base: *base,
                        rotary_dim: shape.head_dim,
                        first_position: a.position_offset,
                        rows: shape.seq,
                        angles: *angles,
                    };
                    let table = RopeTable::build(&spec)
                        .map_err(|e| CliError::from(e).context(format!("tensor {name:?}")))?;
                    v.insert(table);
                }
            }
        }
        jobs.push(Job {
            name: name.clone(),
            shape,
        });
    }

    // 5. The backend.
    let precision: Precision = a.precision.into();
    let named = |e: Error| match (&e, &a.adapter) {
        (Error::NoAdapter(_), Some(s)) => CliError::failure(format!("--adapter {s}: {e}")),
        _ => CliError::from(e),
    };
    let gpu = match a.backend {
        Backend::Cpu => None,
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
    let direction = if a.inverse {
        Direction::Inverse
    } else {
        Direction::Forward
    };

    // 6. Rotate.
    let t0 = Instant::now();
    let mut rotated: HashMap<String, Vec<u8>> = HashMap::new();
    for job in &jobs {
        let view = st.tensor(&job.name).expect("validated above");
        let x = bits_from_le(view.data());
        let (table, row_offset) = match &source {
            TableSource::User { table, .. } => (table, offset),
            TableSource::Built { .. } => (&built[&(job.shape.seq, job.shape.head_dim)], 0),
        };
        let y = match &gpu {
            Some(g) => rotate_on_gpu(
                g,
                &x,
                job.shape,
                table,
                row_offset,
                direction,
                precision,
                a.max_binding,
            ),
            None => cpu::rotate_bits(&x, job.shape, table, row_offset, direction),
        }
        .map_err(|e| CliError::failure(format!("rotating tensor {:?} failed: {e}", job.name)))?;
        rotated.insert(job.name.clone(), le_from_bits(&y));
    }
    let rotate_time = t0.elapsed();

    // 7. Write every tensor to the output (a temporary file renamed at the end, or stdout).
    let mut views = Vec::new();
    for (name, t) in st.iter() {
        let data: &[u8] = rotated.get(name).map(|v| v.as_slice()).unwrap_or(t.data());
        let view = TensorView::new(t.dtype(), t.shape().to_vec(), data)
            .map_err(|e| CliError::failure(format!("tensor {name:?} cannot be written: {e}")))?;
        views.push((name.to_string(), view));
    }
    let bytes = safetensors::serialize(views, header.metadata().clone())
        .map_err(|e| CliError::failure(format!("cannot write {target}: {e}")))?;
    let mut sink = target.open()?;
    sink.write_all(&bytes)
        .map_err(|e| CliError::failure(format!("cannot write {target}: {e}")))?;
    sink.commit()?;

    // 8. Report.
    let ran_on = match &gpu {
        Some(g) => format!("GPU {} ({precision:?})", g.adapter().summary()),
        None => "the CPU path".to_string(),
    };
    let table_desc = match &source {
        TableSource::User { names: (c, s), .. } => format!("tables {c}/{s} from row {offset}"),
        TableSource::Built { base, angles } => {
            format!(
                "table {} base {base} from position {}",
                angles.name(),
                a.position_offset
            )
        }
    };
    let list: Vec<String> = jobs
        .iter()
        .map(|j| format!("{} {:?}", j.name, j.shape.dims()))
        .collect();
    eprintln!(
        "rotated {} ({}, {table_desc}) on {ran_on} in {}; wrote {} tensors to {}",
        list.join(", "),
        if a.inverse { "inverse" } else { "forward" },
        ms(rotate_time),
        st.len(),
        target
    );
    Ok(ExitCode::SUCCESS)
}
