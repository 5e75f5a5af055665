//! `bfrope explain --hf-config PATH [--layer-type NAME | --layer N] [--json]`: what bfrope
//! reads from a Hugging Face config.json and what it decides — the model type, the keys used
//! (and those it does not understand), head_dim, rotary dimension, pairing and why, base,
//! rope type and its parameters, attention factor, the layers and how each rotates, the
//! largest position the model was configured for.

use std::path::PathBuf;
use std::process::ExitCode;

use bfrope::table::HfRope;
use serde_json::json;

use crate::table_source::{self, LayerArgs};
use crate::{CliError, CliResult};

/// Arguments of `bfrope explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The model's config.json.
    #[arg(long, value_name = "PATH")]
    hf_config: PathBuf,
    #[command(flatten)]
    layer: LayerArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The variant's parameters as `key value` text.
fn variant_params(hf: &HfRope) -> String {
    hf.recipe
        .variant
        .params()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `bfrope explain`.
pub fn run(a: &ExplainArgs) -> CliResult<ExitCode> {
    let hf = table_source::read_config(&a.hf_config, &a.layer)?;
    let (freqs, _) = hf
        .recipe
        .frequencies(0)
        .map_err(|e| CliError::usage(format!("--hf-config {}: {e}", a.hf_config.display())))?;
    let e = &hf.explanation;
    let r = &hf.recipe;
    if a.json {
        let pairs = |v: &[(String, String)]| -> serde_json::Value {
            v.iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let out = json!({
            "config": a.hf_config.display().to_string(),
            "model_type": e.model_type,
            "text_config": e.text_config,
            "layer": e.chosen,
            "head_dim": hf.head_dim,
            "rotary_dim": r.rotary_dim,
            "pairing": hf.pairing.name(),
            "pairing_reason": e.pairing_reason,
            "base": r.base,
            "rope_type": r.variant.name(),
            "rope_parameters": hf.recipe.variant.params().into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect::<serde_json::Map<_, _>>(),
            "axes": r.axes.name(),
            "attention_factor": freqs.attention,
            "max_position_embeddings": hf.max_position_embeddings,
            "layers": e.layers,
            "used": pairs(&e.used),
            "defaults": pairs(&e.defaults),
            "warnings": e.warnings,
            "notes": e.notes,
            "summary": hf.summary(),
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<24}{v}\n"));
    line("config", a.hf_config.display().to_string());
    line(
        "model type",
        match (&e.model_type, &e.text_config) {
            (Some(m), Some(t)) => format!("{m} (from {t})"),
            (Some(m), None) => m.clone(),
            (None, _) => "none given".into(),
        },
    );
    if let Some(c) = &e.chosen {
        line("layer", c.clone());
    }
    line("head_dim", hf.head_dim.to_string());
    line(
        "rotary dim",
        if r.rotary_dim == hf.head_dim {
            format!("{} (the whole head)", r.rotary_dim)
        } else {
            format!(
                "{} of {} (the rest pass through)",
                r.rotary_dim, hf.head_dim
            )
        },
    );
    line("pairing", e.pairing_reason.clone());
    line("base", format!("{}", r.base));
    let params = variant_params(&hf);
    line(
        "rope type",
        if params.is_empty() {
            r.variant.name().to_string()
        } else {
            format!("{} ({params})", r.variant.name())
        },
    );
    if r.axes.count() > 1 {
        line("axes", r.axes.name());
    }
    line("attention factor", format!("{}", freqs.attention));
    line(
        "largest position",
        match hf.max_position_embeddings {
            Some(m) => format!("{} (max_position_embeddings {m})", m.saturating_sub(1)),
            None => "not given (no max_position_embeddings)".into(),
        },
    );
    for (i, l) in e.layers.iter().enumerate() {
        line(if i == 0 { "layers" } else { "" }, l.clone());
    }
    for (i, (k, v)) in e.used.iter().enumerate() {
        line(if i == 0 { "keys read" } else { "" }, format!("{k} = {v}"));
    }
    for (i, (k, v)) in e.defaults.iter().enumerate() {
        line(
            if i == 0 { "class defaults" } else { "" },
            format!("{k} = {v} (not in the file)"),
        );
    }
    for n in &e.notes {
        line("note", n.clone());
    }
    for w in &e.warnings {
        line("warning", w.clone());
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
