//! Every model type of transformers 5.17 that applies RoPE, and the published config.json of
//! flagship checkpoints (`tests/data/models/`, written by `tools/models/generate.py` from the
//! models' own rotary modules and apply functions, in float32): bfrope reads each config.json,
//! builds its table in torch mode for the same positions and rotates the same query on the
//! CPU path (the GPU path gives the same bits, `tests/views/contiguous.rs`). Each case is either
//! reproduced — every output within 2⁻²⁰ of the model's, relative to the pair's magnitude,
//! the parity torch-computed cos/sin allow — or refused with one sentence. A rotation that
//! differs beyond that is a failure: never a silent wrong rotation.
//!
//! The support matrix `docs/MODELS.md` is this test's output: it fails when the file differs
//! from what the data gives; `BFROPE_BLESS=1 cargo test --test tables models` rewrites it.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::fmt::Write;

use bfrope::table::{AngleMode, HfRope, Layer};
use bfrope::{cpu, Direction, Pairing, Positions, Precision, RopeCall, Rotation, TensorView};
use safetensors::SafeTensors;
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/models");
const MATRIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/MODELS.md");
/// The largest error, relative to `|x0| + |x1|`, that still counts as reproducing the model,
/// beyond the angle drift of an inverse frequency a few f32 ulps away (4: torch's pow is within
/// one, and LLaMA 3's and YaRN's f32 steps carry it on): torch's cos/sin are within
/// an ulp or two of the correctly rounded ones, and its f32 products and sum round three times.
const PARITY: f64 = 1.0 / (1u64 << 20) as f64;

struct Outcome {
    name: String,
    model_type: String,
    layer: String,
    verdict: Verdict,
}

enum Verdict {
    Reproduced {
        summary: String,
        /// The model type bfrope read: a wrapper's text model type.
        read_type: Option<String>,
        outputs: usize,
        differing: usize,
        worst: f64,
    },
    Refused(String),
    /// A failure: bfrope rotated, but not as the model does.
    Wrong(String),
    /// bfrope reads it, but the model's own code could not run for a reference.
    Unchecked(String),
    /// A refusal where the model applies no RoPE (as it should be).
    NoRope(String),
}

fn f32s(st: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let v = match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        safetensors::Dtype::BF16 => t
            .data()
            .chunks_exact(2)
            .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
            .collect(),
        d => panic!("{name}: dtype {d:?}"),
    };
    (v, t.shape().to_vec())
}

fn read(config: &Value, layer: Option<&Value>, layered: bool) -> bfrope::Result<HfRope> {
    let plain = HfRope::from_config_for(config, None);
    match (&plain, layer.and_then(|l| l["layer"].as_u64())) {
        (Err(e), Some(i)) if layered || e.to_string().contains("--layer") => {
            HfRope::from_config_for(config, Some(&Layer::Index(i as usize)))
        }
        _ => plain,
    }
}

fn run_layer(
    st: &SafeTensors,
    case: &Value,
    layer: &Value,
    positions: &[u64],
    layered: bool,
) -> Verdict {
    let config = &case["config"];
    let hf = match read(config, Some(layer), layered) {
        Ok(h) => h,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let prefix = layer["prefix"].as_str().unwrap();
    let (x, shape) = f32s(st, &format!("{prefix}.x"));
    let (y, _) = f32s(st, &format!("{prefix}.y"));
    let [s, h, d] = shape[..] else {
        panic!("{prefix}: x shape {shape:?}")
    };
    assert_eq!(s, positions.len(), "{prefix}: one row per position");
    if hf.head_dim != d {
        return Verdict::Wrong(format!(
            "head_dim {} read, but the model's query heads have {d}",
            hf.head_dim
        ));
    }
    let mut recipe = hf.recipe.clone();
    recipe.angles = AngleMode::Torch;
    let a = recipe.axes.count();
    let per_axis: Vec<u64> = (0..a).flat_map(|_| positions.iter().copied()).collect();
    let table = match recipe.table_per_token(&per_axis) {
        Ok(t) => t,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let pos = Positions::PerToken((0..s).collect());
    let call = RopeCall {
        view: TensorView::bshd(1, s, h, d),
        rotation: Rotation {
            pairing: hf.pairing,
            rotary_dim: recipe.rotary_dim,
            direction: Direction::Forward,
            precision: Precision::Exact,
            dtype: bfrope::Dtype::F32,
        },
        positions: &pos,
        table: &table,
    };
    let mut out = cpu::apply_f32(&call, &x).unwrap_or_else(|e| panic!("{prefix}: {e}"));
    if case["output_order"].as_str() == Some("half-split permuted")
        && hf.pairing == Pairing::Interleaved
    {
        // The model writes the rotated pairs de-interleaved: (even | odd) of the rotated part.
        let r = recipe.rotary_dim;
        for row in out.chunks_exact_mut(d) {
            let rot: Vec<f32> = row[..r].to_vec();
            for j in 0..r / 2 {
                row[j] = rot[2 * j];
                row[r / 2 + j] = rot[2 * j + 1];
            }
        }
    }
    // Error relative to the magnitude of the pair each output comes from, beyond what one ulp
    // of the pair's f32 inverse frequency moves the angle at that position (torch's pow is
    // within an ulp of the correctly rounded one bfrope takes).
    let (freqs, _) = recipe
        .frequencies(positions.iter().copied().max().unwrap_or(0))
        .unwrap_or_else(|e| panic!("{prefix}: {e}"));
    let ulp = |f: f64| {
        let f = f as f32;
        (f32::from_bits(f.to_bits() + 1) - f) as f64
    };
    let (mut differing, mut worst) = (0usize, 0f64);
    let r = recipe.rotary_dim;
    for (k, (&got, &want)) in out.iter().zip(&y).enumerate() {
        if got.to_bits() == want.to_bits() {
            continue;
        }
        differing += 1;
        let i = k % d;
        let base = k - i;
        let permuted = case["output_order"].as_str() == Some("half-split permuted");
        // The input elements of the pair output `i` comes from.
        let (a, b) = if i >= r {
            (i, i)
        } else if permuted {
            let j = i % (r / 2);
            (2 * j, 2 * j + 1)
        } else if hf.pairing == Pairing::Interleaved {
            (i, i ^ 1)
        } else if i < r / 2 {
            (i, i + r / 2)
        } else {
            (i, i - r / 2)
        };
        let m = (x[base + a].abs() + x[base + b].abs()) as f64;
        let e = (got as f64 - want as f64).abs();
        let freq = if i >= r {
            0
        } else if permuted {
            i % (r / 2)
        } else if hf.pairing == Pairing::Interleaved {
            i / 2
        } else {
            i % (r / 2)
        };
        let p = positions[k / (h * d)] as f64;
        let drift = if i >= r {
            0.0
        } else {
            p * 4.0 * ulp(freqs.inv_freq[freq].abs()) * freqs.attention
        };
        let rel = if m == 0.0 {
            f64::INFINITY
        } else {
            (e / m - drift).max(0.0)
        };
        if want.is_nan() || got.is_nan() {
            worst = f64::INFINITY;
        } else {
            if rel > worst && std::env::var("BFROPE_DEBUG").is_ok() {
                eprintln!(
                    "{prefix}: output {k} (position {p}, dim {i}, frequency {freq} = {:e}): got {got:e} want {want:e}, {:e} of the pair beyond drift {drift:e}",
                    freqs.inv_freq[freq.min(freqs.inv_freq.len() - 1)],
                    rel
                );
            }
            worst = worst.max(rel);
        }
    }
    let summary = hf.summary();
    if worst > PARITY && std::env::var("BFROPE_DEBUG").is_ok() {
        let (c, cs) = f32s(st, &format!("{prefix}.cos"));
        let (sn, _) = f32s(st, &format!("{prefix}.sin"));
        let w = cs[1];
        for (row, p) in positions.iter().enumerate() {
            let mut worst_t = (0f32, 0usize);
            for i in 0..table.pairs().min(w) {
                let [tc, ts] = table.get(row, i);
                let j = match layer["table_form"].as_str() {
                    Some("interleaved repeat") => 2 * i,
                    _ => i,
                };
                let d = (tc - c[row * w + j])
                    .abs()
                    .max((ts - sn[row * w + j]).abs());
                if d > worst_t.0 {
                    worst_t = (d, i);
                }
            }
            eprintln!(
                "{prefix} position {p}: worst table diff {:e} at pair {}",
                worst_t.0, worst_t.1
            );
        }
    }
    if worst > PARITY {
        return Verdict::Wrong(format!(
            "{summary}: {differing} of {} outputs differ, worst by {worst:.3e} of the pair's magnitude",
            out.len()
        ));
    }
    Verdict::Reproduced {
        summary,
        read_type: hf.explanation.model_type.clone(),
        outputs: out.len(),
        differing,
        worst,
    }
}

fn outcomes() -> Vec<Outcome> {
    let cases: Value =
        HfRope::parse_json(&std::fs::read_to_string(format!("{DATA}/cases.json")).unwrap())
            .unwrap();
    let bytes = std::fs::read(format!("{DATA}/reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let default_positions: Vec<u64> = cases["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    let mut out = Vec::new();
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap().to_string();
        let model_type = case["model_type"].as_str().unwrap_or("").to_string();
        let positions: Vec<u64> = match case.get("positions") {
            Some(Value::Array(p)) => p.iter().map(|p| p.as_u64().unwrap()).collect(),
            _ => default_positions.clone(),
        };
        let push = |out: &mut Vec<Outcome>, layer: String, verdict| {
            out.push(Outcome {
                name: name.clone(),
                model_type: model_type.clone(),
                layer,
                verdict,
            })
        };
        let rope = case["rope"].as_str().unwrap_or("");
        if rope == "none" {
            let v = match read(&case["config"], None, false) {
                Ok(h) => Verdict::Wrong(format!("rotated a model without RoPE: {}", h.summary())),
                Err(e) => Verdict::NoRope(e.to_string()),
            };
            push(&mut out, String::new(), v);
            continue;
        }
        let layers = case["layers"].as_array().cloned().unwrap_or_default();
        let with_tensors: Vec<&Value> = layers.iter().filter(|l| l["prefix"].is_string()).collect();
        let layered = layers.len() > 1;
        if layers.is_empty()
            || (with_tensors.is_empty() && layers.iter().all(|l| l["rope"] != false))
        {
            // No reference tensors: bfrope must refuse or the case is listed as unchecked.
            let why = if rope == "remote code" {
                "remote code that transformers does not ship; tests/tables/model_configs.rs checks it against its published modeling file".to_string()
            } else {
                case["notes"]
                    .as_str()
                    .unwrap_or("no reference tensors")
                    .to_string()
            };
            let v = match read(&case["config"], None, false) {
                Ok(h) => Verdict::Unchecked(format!(
                    "the model's own code gave no reference ({why}); bfrope reads {}",
                    h.summary()
                )),
                Err(e) => Verdict::Refused(e.to_string()),
            };
            push(&mut out, String::new(), v);
            continue;
        }
        for l in &layers {
            let label = match (l["layer"].as_u64(), l["layer_type"].as_str()) {
                (Some(i), Some(t)) if layered => format!("layer {i} ({t})"),
                (Some(i), None) if layered => format!("layer {i}"),
                _ => String::new(),
            };
            let v = if l["rope"] == false && l["attention"].is_null() && l["layer_type"].is_null() {
                Verdict::Unchecked(format!(
                    "the reference found no attention module at layer {} ({})",
                    l["layer"],
                    case["notes"].as_str().unwrap_or("")
                ))
            } else if l["rope"] == false {
                match read(&case["config"], Some(l), true) {
                    Ok(h) => {
                        Verdict::Wrong(format!("rotated a layer without RoPE: {}", h.summary()))
                    }
                    Err(e) => Verdict::NoRope(e.to_string()),
                }
            } else if l["prefix"].is_string() {
                run_layer(&st, case, l, &positions, layered)
            } else {
                continue;
            };
            push(&mut out, label, v);
        }
    }
    out
}

/// A table cell's text.
fn cell(t: &str) -> String {
    t.replace('|', "\\|").replace('\n', " ")
}

/// How the matrix names a case: a published checkpoint, or a model type's defaults.
fn case_name(o: &Outcome) -> String {
    if let Some(repo) = o.name.strip_prefix("card:") {
        format!("`{repo}`")
    } else if let Some(name) = o.name.strip_prefix("written:") {
        format!("{name} (written config)")
    } else {
        format!("{} defaults", o.name)
    }
}

/// A row of the matrix without figures: what bfrope said instead of a rotation.
fn row(s: &mut String, o: &Outcome, label: &str, why: &str) {
    let _ = writeln!(
        s,
        "| {} | {} | {} | {label}: {} | | |",
        case_name(o),
        o.model_type,
        o.layer,
        cell(why)
    );
}

/// The support matrix, and the model types that apply RoPE but were neither reproduced nor refused.
fn matrix(out: &[Outcome]) -> (String, Vec<String>) {
    let mut reproduced = BTreeMap::new();
    let mut refused = BTreeMap::new();
    for o in out {
        match &o.verdict {
            Verdict::Reproduced { .. } => *reproduced.entry(o.name.clone()).or_insert(0) += 1,
            Verdict::Refused(_) | Verdict::NoRope(_) => {
                *refused.entry(o.name.clone()).or_insert(0) += 1
            }
            Verdict::Wrong(_) | Verdict::Unchecked(_) => {}
        }
    }
    let cases: std::collections::BTreeSet<&str> = out.iter().map(|o| o.name.as_str()).collect();
    let all_ok = |n: &str| {
        out.iter()
            .filter(|o| o.name == n)
            .all(|o| matches!(o.verdict, Verdict::Reproduced { .. } | Verdict::NoRope(_)))
    };
    let full = cases
        .iter()
        .filter(|n| all_ok(n) && reproduced.contains_key(**n))
        .count();
    let unchecked: std::collections::BTreeSet<&str> = out
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Unchecked(_)))
        .map(|o| o.name.as_str())
        .collect();
    let refused_only = cases
        .iter()
        .filter(|n| {
            out.iter()
                .filter(|o| o.name == **n)
                .all(|o| matches!(o.verdict, Verdict::Refused(_) | Verdict::NoRope(_)))
        })
        .count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Models: what `--hf-config` reads, checked against each model's own code\n"
    );
    let _ = writeln!(
        s,
        "Generated by `tests/tables/models.rs` from `tests/data/models/` (transformers 5.17.0, torch 2.11,\n\
         `tools/models/generate.py`): for every model type of transformers whose text attention\n\
         applies rotary embeddings (its configuration class's defaults) and the published\n\
         config.json of flagship checkpoints, the model's own rotary module and apply function\n\
         rotated a random query in float32 at positions 0, 1, 2, 5, 63, 1000, 4097 and 40000\n\
         (GPT-J and CodeGen below their `n_positions`); bfrope read the same config.json, built\n\
         its table in torch mode and rotated the same query (f32, exact). **reproduced**: every\n\
         output within 2⁻²⁰ of the model's relative to the pair's magnitude (torch's own cos/sin\n\
         and its three f32 roundings are that far from the exact result); the columns give how\n\
         many f32 outputs differ at all and the worst difference in units of 2⁻²⁴ of the pair's\n\
         magnitude. **refused**: the one sentence bfrope gives. No case rotates differently from\n\
         the model (the test fails if one does).\n"
    );
    let _ = writeln!(
        s,
        "{} cases: {} reproduced on every layer that rotates (layers without RoPE refused), {} refused outright ({} of them models without RoPE), {} read by bfrope but not checked (the model's own code gave no reference), {} partly reproduced and partly refused.\n",
        cases.len(),
        full,
        refused_only,
        out.iter().filter(|o| matches!(o.verdict, Verdict::NoRope(_)) && o.layer.is_empty()).count(),
        unchecked.len(),
        cases.len() - full - refused_only - unchecked.len(),
    );
    // Every model type transformers 5.17 applies RoPE with, by its defaults case.
    let types: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DATA}/model_types.json")).unwrap())
            .unwrap();
    let applied: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["rope"] == "applied")
        .map(|t| t["model_type"].as_str().unwrap())
        .collect();
    let status = |mt: &str| -> &str {
        // Its defaults case, the configs of the same model type, and wrappers whose text
        // model it is (a text model type without a model class of its own is run inside one).
        let rows: Vec<&Outcome> = out
            .iter()
            .filter(|o| {
                o.name == mt
                    || o.model_type == mt
                    || matches!(&o.verdict, Verdict::Reproduced { read_type: Some(t), .. } if t == mt)
            })
            .collect();
        assert!(
            !rows.is_empty(),
            "model type {mt} applies RoPE but has no case"
        );
        if rows
            .iter()
            .any(|o| matches!(o.verdict, Verdict::Reproduced { .. }))
        {
            "reproduced"
        } else if rows
            .iter()
            .any(|o| matches!(o.verdict, Verdict::Unchecked(_)))
        {
            "unchecked"
        } else {
            "refused"
        }
    };
    let count = |k: &str| applied.iter().filter(|m| status(m) == k).count();
    let unchecked_types: Vec<String> = applied
        .iter()
        .filter(|m| status(m) == "unchecked")
        .map(|m| m.to_string())
        .collect();
    let _ = writeln!(
        s,
        "Model types of transformers 5.17 whose text attention applies RoPE (`model_types.json`, {} of {} types): {} reproduced (from their class defaults, a published config.json, a written config, or the wrapper whose text model they are), {} refused by name{}.\n",
        applied.len(),
        types.as_array().unwrap().len(),
        count("reproduced"),
        count("refused"),
        if unchecked_types.is_empty() {
            String::new()
        } else {
            format!(
                ", {} read but not checked: {}",
                unchecked_types.len(),
                unchecked_types.join(", ")
            )
        },
    );
    let _ = writeln!(
        s,
        "| case | model type | layer | result | outputs differing | worst (2⁻²⁴ units) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for o in out {
        let name = case_name(o);
        match &o.verdict {
            Verdict::Reproduced {
                summary,
                outputs,
                differing,
                worst,
                ..
            } => {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | reproduced: {} | {differing} of {outputs} | {:.1} |",
                    o.model_type,
                    o.layer,
                    cell(summary),
                    worst * (1u64 << 24) as f64
                );
            }
            Verdict::Refused(why) | Verdict::NoRope(why) => row(&mut s, o, "refused", why),
            Verdict::Unchecked(why) => row(&mut s, o, "not checked", why),
            Verdict::Wrong(why) => row(&mut s, o, "**WRONG**", why),
        }
    }
    (s, unchecked_types)
}

#[test]
fn every_model_is_reproduced_or_refused() {
    let out = outcomes();
    let wrong: Vec<String> = out
        .iter()
        .filter_map(|o| match &o.verdict {
            Verdict::Wrong(w) => Some(format!("{} {}: {w}", o.name, o.layer)),
            _ => None,
        })
        .collect();
    let (text, unchecked) = matrix(&out);
    if std::env::var("BFROPE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap();
        std::fs::write(MATRIX, &text).unwrap();
    }
    assert!(
        wrong.is_empty(),
        "{} cases rotate differently from the model:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        unchecked.is_empty(),
        "model types that apply RoPE, read by bfrope but checked against no reference: {}",
        unchecked.join(", ")
    );
    let committed = std::fs::read_to_string(MATRIX).unwrap_or_default();
    assert!(
        committed == text,
        "docs/MODELS.md is not what the reference data gives; rerun with BFROPE_BLESS=1"
    );
}
