//! `bfrope table`: writes the F32 cos/sin a call would use (`[P, R/2]`, one row per position
//! or per token) to a safetensors file, for inspection or export (docs/CONTRACT.md §7). The same
//! flags and the same table code as `bfrope apply`; the same output safety (a temporary file
//! renamed at the end, never over an input).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bfrope::table::{AngleMode, ShortFloat};
use safetensors::tensor::{Dtype, TensorView};

use crate::stream::Input;
use crate::table_source::{self, Built};
use crate::{output, CliError, CliResult};

/// Arguments of `bfrope table`.
#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// The output safetensors file (`cos`, `sin` F32 [P, R/2], `positions` I64), or `-`.
    #[arg(short, long, value_name = "OUTPUT")]
    output: PathBuf,
    /// A Hugging Face config.json: base, variant, rotary dimension, multi-axis sections.
    #[arg(long, value_name = "PATH")]
    hf_config: Option<PathBuf>,
    #[command(flatten)]
    layer: table_source::LayerArgs,
    /// RoPE base (default 10000, or the config's).
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    base: Option<f64>,
    /// An F32 [N/2] inverse-frequency vector: FILE.safetensors:NAME.
    #[arg(long, value_name = "FILE:NAME")]
    inv_freq: Option<String>,
    /// Angle mode: exact or torch (default exact).
    #[arg(long, value_name = "MODE")]
    angles: Option<String>,
    /// Multi-axis sections: axial|mrope|mrope-interleaved:n0,n1,.. (needs --positions-from).
    #[arg(long, value_name = "KIND:n0,n1,..")]
    axes: Option<String>,
    /// Rotated dimension N (default: the config's, or twice the --inv-freq length).
    #[arg(long, value_name = "N")]
    rotary_dim: Option<usize>,
    /// Positions N0..N1 (N1 excluded), one row each.
    #[arg(long, value_name = "N0..N1")]
    positions: Option<String>,
    /// I32/I64 positions from FILE.safetensors:NAME: [P] or [B, S] (one row per entry) or, with
    /// multi-axis sections, [A, P] / [A, B, S] (one row per token).
    #[arg(long, value_name = "FILE:NAME")]
    positions_from: Option<String>,
}

fn split_file_name<'a>(flag: &str, v: &'a str) -> CliResult<(PathBuf, &'a str)> {
    match v.rsplit_once(':') {
        Some((f, n)) if !f.is_empty() && !n.is_empty() => Ok((PathBuf::from(f), n)),
        _ => Err(CliError::usage(format!("{flag} {v:?} is not FILE:NAME"))),
    }
}

fn parse_range(v: &str) -> CliResult<(u64, u64)> {
    let bad = || {
        CliError::usage(format!(
            "--positions {v:?} is not a range N0..N1 of non-negative integers with N0 < N1"
        ))
    };
    let (a, b) = v.split_once("..").ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<u64>().map_err(|_| bad())?,
        b.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if a >= b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Runs `bfrope table`.
pub fn run(a: &TableArgs) -> CliResult<ExitCode> {
    let angles = match &a.angles {
        Some(s) => s.parse::<AngleMode>().map_err(|_| {
            CliError::usage(format!(
                "--angles {s:?} is not a mode; expected exact or torch"
            ))
        })?,
        None => AngleMode::Exact,
    };
    let mut inputs: Vec<(&str, PathBuf)> = Vec::new();
    let inv = match &a.inv_freq {
        Some(v) => {
            let (file, name) = split_file_name("--inv-freq", v)?;
            let input = Input::open(&file)?;
            inputs.push(("--inv-freq", file));
            Some(table_source::read_inv_freq(&input, name)?)
        }
        None => None,
    };
    let built = Built::from_flags(
        a.hf_config.as_deref(),
        &a.layer,
        a.base,
        inv,
        angles,
        a.axes.as_deref(),
    )?;
    if let Some(p) = &a.hf_config {
        inputs.push(("--hf-config", p.clone()));
    }
    let rotary_dim = match (a.rotary_dim, built.rotary_dim()) {
        (Some(n), Some(m)) if built.inv_freq.is_some() && n != m => {
            return Err(CliError::usage(format!(
                "--rotary-dim {n} does not match --inv-freq's {} values (rotary dimension {m})",
                m / 2
            )))
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => {
            return Err(CliError::usage(
                "bfrope table needs --rotary-dim N (or --hf-config / --inv-freq to imply it)",
            ))
        }
    };
    if rotary_dim < 2 || rotary_dim % 2 != 0 {
        return Err(CliError::usage(format!(
            "--rotary-dim {rotary_dim} must be even and at least 2"
        )));
    }
    let recipe = built.recipe(rotary_dim);
    let a_count = recipe.axes.count();
    // Positions: axis-major [A, P], and the shape written back.
    let (positions, pshape): (Vec<u64>, Vec<usize>) = match (&a.positions, &a.positions_from) {
        (Some(r), Some(f)) => {
            return Err(CliError::usage(format!(
                "--positions {r} cannot be combined with --positions-from {f}"
            )))
        }
        (None, None) => {
            return Err(CliError::usage(
                "bfrope table needs --positions N0..N1 or --positions-from FILE:NAME",
            ))
        }
        (Some(r), None) => {
            if a_count > 1 {
                return Err(CliError::usage(format!(
                    "--positions {r} gives one position per row, but axes {} need --positions-from FILE:NAME with [{a_count}, P]",
                    recipe.axes.name()
                )));
            }
            let (n0, n1) = parse_range(r)?;
            let n = usize::try_from(n1 - n0)
                .ok()
                .filter(|&n| n <= 1 << 26)
                .ok_or_else(|| {
                    CliError::usage(format!("--positions {r} asks for more than 2^26 rows"))
                })?;
            ((n0..n1).collect(), vec![n])
        }
        (None, Some(f)) => {
            let (file, name) = split_file_name("--positions-from", f)?;
            let input = Input::open(&file)?;
            inputs.push(("--positions-from", file));
            let (ids, shape) = crate::placement::read_ids(&input, name, "--positions-from")?;
            let ok = match (a_count, shape.len()) {
                (1, 1 | 2) => true,
                (n, 2 | 3) => n > 1 && shape[0] == n,
                _ => false,
            };
            if !ok || ids.is_empty() {
                return Err(CliError::usage(format!(
                    "--positions-from {f} has shape {shape:?}, but axes {} need {}",
                    recipe.axes.name(),
                    if a_count == 1 {
                        "[P]".to_string()
                    } else {
                        format!("[{a_count}, P] or [{a_count}, B, S]")
                    }
                )));
            }
            (ids.into_iter().map(|p| p as u64).collect(), shape)
        }
    };
    // What the table takes at its peak (the table, then its cos and sin bytes, then the
    // file's bytes; the positions as ids and bytes), sized before anything is allocated.
    let rows = positions.len() / a_count;
    let pairs = rotary_dim / 2;
    let peak = (rows as u128) * (pairs as u128) * 16 + (positions.len() as u128) * 24;
    crate::memory::check_fits(
        || {
            let from = match (&a.positions, &a.positions_from) {
                (Some(r), _) => format!("--positions {r}"),
                (None, f) => format!("--positions-from {}", f.as_deref().unwrap_or_default()),
            };
            format!(
                "{from} with --rotary-dim {rotary_dim} (a table of {rows} rows x {pairs} pairs)"
            )
        },
        peak,
    )?;
    let inputs_ref: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(r, p)| (*r, p.as_path())).collect();
    let target = output::resolve(&a.output, &inputs_ref)?;
    let table = recipe.table_per_token(&positions)?;
    let pairs = table.pairs();
    let rows = table.rows();
    let mut cos = Vec::with_capacity(rows * pairs * 4);
    let mut sin = Vec::with_capacity(rows * pairs * 4);
    for &[c, s] in table.cos_sin() {
        cos.extend_from_slice(&c.to_le_bytes());
        sin.extend_from_slice(&s.to_le_bytes());
    }
    drop(table);
    let pos_bytes: Vec<u8> = positions
        .iter()
        .flat_map(|&p| (p as i64).to_le_bytes())
        .collect();
    fn view(dtype: Dtype, shape: Vec<usize>, data: &[u8]) -> CliResult<TensorView<'_>> {
        TensorView::new(dtype, shape, data)
            .map_err(|e| CliError::failure(format!("cannot lay out the table: {e}")))
    }
    let tensors = vec![
        (
            "cos".to_string(),
            view(Dtype::F32, vec![rows, pairs], &cos)?,
        ),
        (
            "sin".to_string(),
            view(Dtype::F32, vec![rows, pairs], &sin)?,
        ),
        (
            "positions".to_string(),
            view(Dtype::I64, pshape, &pos_bytes)?,
        ),
    ];
    let (freqs, _) = recipe.frequencies(*positions.iter().max().expect("non-empty"))?;
    let description = built.describe(rotary_dim);
    let metadata: HashMap<String, String> = [
        ("table".to_string(), description.clone()),
        ("variant".to_string(), recipe.variant.name().to_string()),
        ("angles".to_string(), recipe.angles.name().to_string()),
        ("axes".to_string(), recipe.axes.name()),
        ("base".to_string(), ShortFloat(recipe.base).to_string()),
        ("rotary_dim".to_string(), rotary_dim.to_string()),
        (
            "attention_factor".to_string(),
            ShortFloat(freqs.attention).to_string(),
        ),
    ]
    .into_iter()
    .chain(
        built
            .pairing()
            .map(|p| ("pairing".to_string(), p.name().to_string())),
    )
    .collect();
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| CliError::failure(format!("cannot write the table: {e}")))?;
    let mut sink = target.open()?;
    sink.write_all(&bytes)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", a.output.display())))?;
    sink.commit()?;
    built.print_config_summary();
    eprintln!(
        "wrote {} rows x {pairs} pairs ({description}, attention factor {}) to {}",
        rows,
        ShortFloat(freqs.attention),
        target
    );
    Ok(ExitCode::SUCCESS)
}
