//! The table a call builds from flags (`--hf-config`, `--base`, `--inv-freq`, `--angles`,
//! `--axes`), shared by `bfrope apply` and `bfrope table`: explicit flags win over the
//! config.json; flags that do not apply are errors. Multi-axis positions (`[A, S]` or
//! `[A, B, S]`) give one table row per token, built on the host.

use std::path::{Path, PathBuf};

use bfrope::table::{AngleMode, Axes, HfRope, Layer, ShortFloat, TableRecipe, Variant};
use bfrope::{Pairing, Positions, RopeTable};

use crate::{CliError, CliResult};

/// Which layer of a model `--hf-config` describes, where its layers rotate differently.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LayerArgs {
    /// With --hf-config: the layer type whose rotary embedding to use (a name of the
    /// config's layer_types, e.g. sliding_attention or full_attention).
    #[arg(long, value_name = "NAME", conflicts_with = "layer")]
    pub layer_type: Option<String>,
    /// With --hf-config: the 0-based index of the layer whose rotary embedding to use.
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
}

impl LayerArgs {
    /// The choice the flags make.
    pub fn choice(&self) -> Option<Layer> {
        match (&self.layer_type, self.layer) {
            (Some(t), _) => Some(Layer::Type(t.clone())),
            (None, Some(i)) => Some(Layer::Index(i)),
            (None, None) => None,
        }
    }

    /// The flag as typed, for messages.
    fn flag(&self) -> Option<String> {
        match (&self.layer_type, self.layer) {
            (Some(t), _) => Some(format!("--layer-type {t}")),
            (None, Some(i)) => Some(format!("--layer {i}")),
            (None, None) => None,
        }
    }
}

/// Reads `--hf-config` for the layer chosen; the error names the path.
pub fn read_config(path: &Path, layer: &LayerArgs) -> CliResult<HfRope> {
    let text = crate::read::bounded_text("--hf-config", path, crate::read::MAX_TEXT_BYTES)?;
    HfRope::from_config_json_for(&text, layer.choice().as_ref())
        .map_err(|e| CliError::usage(format!("--hf-config {}: {e}", path.display())))
}

/// The one-line summary of what a config.json gave, and its warnings, on stderr.
pub fn print_summary(path: &Path, hf: &HfRope) {
    eprintln!("--hf-config {}: {}", path.display(), hf.summary());
    for w in &hf.explanation.warnings {
        eprintln!("warning: --hf-config {}: {w}", path.display());
    }
}

/// Where a built table's numbers come from, the flags resolved.
#[derive(Debug, Clone)]
pub struct Built {
    /// The config.json read, and its path.
    pub config: Option<(PathBuf, HfRope)>,
    /// `--base`.
    pub base: Option<f64>,
    /// `--inv-freq NAME` and its values.
    pub inv_freq: Option<(String, Vec<f64>)>,
    /// `--angles` (default exact).
    pub angles: AngleMode,
    /// `--axes`.
    pub axes: Option<Axes>,
}

impl Built {
    /// Resolves the flags; `inv_freq` is the named vector already read.
    pub fn from_flags(
        hf_config: Option<&Path>,
        layer: &LayerArgs,
        base: Option<f64>,
        inv_freq: Option<(String, Vec<f32>)>,
        angles: AngleMode,
        axes: Option<&str>,
    ) -> CliResult<Self> {
        if let Some(b) = base {
            if !b.is_finite() || b <= 0.0 {
                return Err(CliError::usage(format!(
                    "--base {} is not a finite positive number",
                    ShortFloat(b)
                )));
            }
            if let Some((n, _)) = &inv_freq {
                return Err(CliError::usage(format!(
                    "--base {} does not apply with --inv-freq {n}: the vector is the frequencies",
                    ShortFloat(b)
                )));
            }
        }
        let config = match hf_config {
            Some(p) => {
                let hf = read_config(p, layer)?;
                Some((p.to_path_buf(), hf))
            }
            None => {
                if let Some(f) = layer.flag() {
                    return Err(CliError::usage(format!(
                        "{f} picks a layer of a --hf-config model; without --hf-config it does not apply"
                    )));
                }
                None
            }
        };
        let axes = axes
            .map(|s| {
                s.parse::<Axes>()
                    .map_err(|e| CliError::usage(format!("--axes {s}: {e}")))
            })
            .transpose()?;
        let inv_freq = inv_freq.map(|(n, v)| (n, v.into_iter().map(|x| x as f64).collect()));
        Ok(Self {
            config,
            base,
            inv_freq,
            angles,
            axes,
        })
    }

    /// Prints what the config.json gave (one line, and its warnings) on stderr: called once
    /// the command has succeeded, so that a refusal stays one sentence.
    pub fn print_config_summary(&self) {
        if let Some((p, hf)) = &self.config {
            print_summary(p, hf);
        }
    }

    /// The rotary dimension the flags imply (the config's, or twice the vector's length).
    pub fn rotary_dim(&self) -> Option<usize> {
        match (&self.inv_freq, &self.config) {
            (Some((_, v)), _) => Some(2 * v.len()),
            (None, Some((_, hf))) => Some(hf.recipe.rotary_dim),
            _ => None,
        }
    }

    /// The pairing the config.json implies.
    pub fn pairing(&self) -> Option<Pairing> {
        self.config.as_ref().map(|(_, hf)| hf.pairing)
    }

    /// The head_dim the config.json gives.
    pub fn head_dim(&self) -> Option<(&Path, usize)> {
        self.config
            .as_ref()
            .map(|(p, hf)| (p.as_path(), hf.head_dim))
    }

    /// The axes in force (the flag's, else the config's, else one).
    pub fn axes(&self) -> Axes {
        match (&self.axes, &self.config) {
            (Some(a), _) => a.clone(),
            (None, Some((_, hf))) => hf.recipe.axes.clone(),
            _ => Axes::Single,
        }
    }

    /// The recipe for a tensor rotating `rotary_dim` dims.
    pub fn recipe(&self, rotary_dim: usize) -> TableRecipe {
        let mut r = match &self.config {
            Some((_, hf)) => hf.recipe.clone(),
            None => TableRecipe::new(rotary_dim),
        };
        r.rotary_dim = rotary_dim;
        r.angles = self.angles;
        r.axes = self.axes();
        if let Some(b) = self.base {
            r.base = b;
        }
        if let Some((_, v)) = &self.inv_freq {
            r.variant = Variant::Custom(v.clone());
        }
        r
    }

    /// How the table is described on stderr.
    pub fn describe(&self, rotary_dim: usize) -> String {
        let r = self.recipe(rotary_dim);
        let from = match (&self.inv_freq, &self.config) {
            (Some((n, _)), _) => format!("inverse frequencies {n}"),
            (None, Some((p, _))) => {
                let base = ShortFloat(r.base);
                format!("{} base {base} from {}", r.variant.name(), p.display())
            }
            _ => format!("base {}", ShortFloat(r.base)),
        };
        let axes = match r.axes {
            Axes::Single => String::new(),
            ref a => format!(", axes {}", a.name()),
        };
        format!("table {} {from}{axes}", r.angles.name())
    }
}

/// Axis-major positions `[A, batch·seq]` of a tensor from `--positions` values of `shape`
/// (`[A, seq]` shared by every batch row, or `[A, batch, seq]`).
pub fn multi_axis_positions(
    ids: &[usize],
    shape: &[usize],
    name: &str,
    tensor: &str,
    axes: &Axes,
    batch: usize,
    seq: usize,
) -> CliResult<Vec<u64>> {
    let a = axes.count();
    let tokens = batch * seq;
    let mut out = Vec::with_capacity(a * tokens);
    match *shape {
        [na, s] if na == a && s == seq => {
            for k in 0..a {
                for _ in 0..batch {
                    out.extend(ids[k * seq..(k + 1) * seq].iter().map(|&p| p as u64));
                }
            }
        }
        [na, b, s] if na == a && b == batch && s == seq => {
            out.extend(ids.iter().map(|&p| p as u64));
        }
        _ => {
            return Err(CliError::usage(format!(
                "--positions {name} has shape {shape:?}, but axes {} on tensor {tensor:?} need [{a}, {seq}] or [{a}, {batch}, {seq}]",
                axes.name()
            )))
        }
    }
    Ok(out)
}

/// The built table of one tensor and its tokens' rows: from multi-axis positions (one row
/// per token), per-token positions (one row per distinct position) or an offset.
#[allow(clippy::too_many_arguments)]
pub fn built_table(
    built: &Built,
    multi: Option<(&[usize], &[usize], &str)>,
    token_positions: Option<Vec<usize>>,
    tensor: &str,
    batch: usize,
    seq: usize,
    rotary_dim: usize,
    offset: usize,
) -> CliResult<(RopeTable, Positions)> {
    let recipe = built.recipe(rotary_dim);
    let named = |e: bfrope::Error| CliError::from(e).context(format!("tensor {tensor:?}"));
    if recipe.axes.count() > 1 {
        match multi {
            Some((ids, shape, name)) => {
                let pos = multi_axis_positions(ids, shape, name, tensor, &recipe.axes, batch, seq)?;
                let table = recipe.table_per_token(&pos).map_err(named)?;
                return Ok((table, Positions::PerToken((0..batch * seq).collect())));
            }
            None => {
                return Err(CliError::usage(format!(
                    "axes {} need --positions NAME with [{n}, S] or [{n}, B, S] ids",
                    recipe.axes.name(),
                    n = recipe.axes.count()
                )))
            }
        }
    }
    // Built for just the positions used (a decode step at 100000 needs one row).
    let positions = match token_positions {
        Some(p) => Positions::PerToken(p),
        None => Positions::Offset(offset),
    };
    positions.built_table(&recipe, batch, seq).map_err(named)
}

/// `--inv-freq NAME`: an F32 `[N/2]` tensor of `input`.
pub fn read_inv_freq(input: &crate::stream::Input, name: &str) -> CliResult<(String, Vec<f32>)> {
    let t = input.info(name).ok_or_else(|| {
        CliError::usage(format!(
            "--inv-freq names tensor {name:?}, which is not in the input"
        ))
    })?;
    if t.dtype != safetensors::Dtype::F32 || t.shape.len() != 1 || t.shape[0] == 0 {
        return Err(CliError::usage(format!(
            "--inv-freq tensor {name:?} is {:?} {:?}, but inverse frequencies must be F32 [N/2]",
            t.dtype, t.shape
        )));
    }
    let v: Vec<f32> = input
        .data(t)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(CliError::usage(format!(
            "--inv-freq tensor {name:?} holds {} at index {i}; inverse frequencies must be finite",
            v[i]
        )));
    }
    Ok((name.to_string(), v))
}

/// `--hf-config`, `--inv-freq` and `--axes` build a table: with `--cos/--sin` they do not apply.
pub fn refuse_with_tables(
    hf_config: Option<&Path>,
    inv_freq: Option<&str>,
    axes: Option<&str>,
) -> CliResult<()> {
    let flag = match (hf_config, inv_freq, axes) {
        (Some(p), _, _) => format!("--hf-config {}", p.display()),
        (None, Some(n), _) => format!("--inv-freq {n}"),
        (None, None, Some(x)) => format!("--axes {x}"),
        (None, None, None) => return Ok(()),
    };
    Err(CliError::usage(format!(
        "{flag} cannot be combined with --cos/--sin tables"
    )))
}

/// A config.json's head_dim must be the tensor's.
pub fn check_head_dim(built: &Built, tensor: &str, head_dim: usize) -> CliResult<()> {
    match built.head_dim() {
        Some((path, d)) if d != head_dim => Err(CliError::usage(format!(
            "--hf-config {} gives head_dim {d}, but tensor {tensor:?} has head_dim {head_dim}",
            path.display()
        ))),
        _ => Ok(()),
    }
}
