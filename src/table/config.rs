//! A Hugging Face `config.json` read into a [`TableRecipe`]: `rope_theta`, `rope_parameters`
//! (transformers 5.x) or `rope_scaling` (4.x), `partial_rotary_factor` (GPT-NeoX's
//! `rotary_pct`), `head_dim` (else `hidden_size / num_attention_heads`; DeepSeek's
//! `qk_rope_head_dim`), `max_position_embeddings`, `original_max_position_embeddings`,
//! `mrope_section` / `mrope_interleaved`, `rope_interleave`. Unknown rope types and
//! inconsistent values are [`Error::Parameter`] naming the key and the value.

use serde_json::{Map, Value};

use super::{AngleMode, Axes, TableRecipe, Variant};
use crate::error::{Error, Result};
use crate::spec::Pairing;

/// What a model's `config.json` says about its rotary embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct HfRope {
    /// Base, rotary dimension, variant and axes (angle mode: exact; set `recipe.angles`).
    pub recipe: TableRecipe,
    /// The attention head dimension the rotary part lives in.
    pub head_dim: usize,
    /// The pairing the model uses: interleaved where the config says so (`rope_interleave`,
    /// GLM's model types), else Hugging Face's half-split `rotate_half`.
    pub pairing: Pairing,
    /// `max_position_embeddings`, where given.
    pub max_position_embeddings: Option<u64>,
}

fn err(key: &str, value: &Value, why: &str) -> Error {
    Error::Parameter(format!("config.json {key} {value} {why}"))
}

/// A number under `key` in `map`, if present and not null.
fn num(map: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| err(key, v, "is not a finite number")),
    }
}

/// A non-negative integer under `key` (JSON integers, or floats holding one).
fn int(map: &Map<String, Value>, key: &str) -> Result<Option<u64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|x| x.fract() == 0.0 && *x >= 0.0)
                    .map(|x| x as u64)
            })
            .map(Some)
            .ok_or_else(|| err(key, v, "is not a non-negative integer")),
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(err(key, v, "is not true or false")),
    }
}

fn list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<f64>>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| err(key, x, "holds a value that is not a number"))
            })
            .collect::<Result<Vec<f64>>>()
            .map(Some),
        Some(v) => Err(err(key, v, "is not a list of numbers")),
    }
}

/// The first of the maps that has `key` as a number; two that disagree are an error.
fn num_in(maps: &[&Map<String, Value>], key: &str) -> Result<Option<f64>> {
    let mut found: Option<f64> = None;
    for m in maps {
        if let Some(v) = num(m, key)? {
            match found {
                Some(f) if f != v => {
                    return Err(Error::Parameter(format!(
                        "config.json gives {key} twice with different values, {f} and {v}"
                    )))
                }
                _ => found = Some(v),
            }
        }
    }
    Ok(found)
}

fn int_in(maps: &[&Map<String, Value>], key: &str) -> Result<Option<u64>> {
    for m in maps {
        if let Some(v) = int(m, key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn rope_type(map: &Map<String, Value>) -> Result<Option<String>> {
    for key in ["rope_type", "type"] {
        match map.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(v) => return Err(err(key, v, "is not a string")),
        }
    }
    Ok(None)
}

impl HfRope {
    /// Reads a `config.json`'s text.
    pub fn from_config_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::Parameter(format!("config.json is not valid JSON: {e}")))?;
        Self::from_config(&value)
    }

    /// Reads a parsed `config.json`.
    pub fn from_config(config: &Value) -> Result<Self> {
        let top = config
            .as_object()
            .ok_or_else(|| Error::Parameter("config.json is not a JSON object".into()))?;
        let empty = Map::new();
        let dict_of = |key: &str| -> Result<Option<&Map<String, Value>>> {
            match top.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(m)) => Ok(Some(m)),
                Some(v) => Err(err(key, v, "is not an object")),
            }
        };
        let params = dict_of("rope_parameters")?;
        let scaling = dict_of("rope_scaling")?;
        // transformers 5.x names it rope_parameters; 4.x rope_scaling (where "mrope" was a type).
        let canon = |t: String| {
            if t == "mrope" {
                "default".to_string()
            } else {
                t
            }
        };
        let t_params = params.map(rope_type).transpose()?.flatten().map(canon);
        let t_scaling = scaling.map(rope_type).transpose()?.flatten().map(canon);
        if let Some(p) = params {
            if t_params.is_none() && !p.is_empty() && p.values().all(Value::is_object) {
                return Err(Error::Parameter(format!(
                    "config.json rope_parameters holds one set per layer type ({}); pick one and pass it as rope_parameters",
                    p.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        if let (Some(a), Some(b)) = (&t_params, &t_scaling) {
            if a != b {
                return Err(Error::Parameter(format!(
                    "config.json rope_parameters.rope_type {a:?} and rope_scaling type {b:?} disagree"
                )));
            }
        }
        let rope = params.or(scaling).unwrap_or(&empty);
        let kind = t_params.or(t_scaling).unwrap_or_else(|| "default".into());
        // transformers' Phi3Config maps the legacy names "su" and "yarn" of Phi-3 checkpoints
        // to "longrope" (`_rope_scaling_adjustment`); "su" means nothing else anywhere.
        let phi3 = top
            .get("model_type")
            .and_then(Value::as_str)
            .is_some_and(|m| matches!(m, "phi3" | "phimoe"));
        let kind = match kind.as_str() {
            "su" => "longrope".to_string(),
            "yarn" if phi3 => "longrope".to_string(),
            _ => kind,
        };
        let maps = [rope, top];

        let base = num_in(&maps, "rope_theta")?.unwrap_or(10000.0);
        if base <= 0.0 {
            return Err(Error::Parameter(format!(
                "config.json rope_theta {base} must be greater than 0"
            )));
        }
        let prf = match (
            num_in(&maps, "partial_rotary_factor")?,
            num(top, "rotary_pct")?,
        ) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Parameter(format!(
                    "config.json partial_rotary_factor {a} and rotary_pct {b} disagree"
                )))
            }
            (a, b) => a.or(b).unwrap_or(1.0),
        };
        if prf <= 0.0 || prf > 1.0 {
            return Err(Error::Parameter(format!(
                "config.json partial_rotary_factor {prf} must be in (0, 1]"
            )));
        }
        let head_dim = match (int(top, "qk_rope_head_dim")?, int(top, "head_dim")?) {
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => {
                let hidden = int(top, "hidden_size")?;
                let heads = int(top, "num_attention_heads")?;
                match (hidden, heads) {
                    (Some(h), Some(n)) if n > 0 && h / n > 0 => h / n,
                    _ => {
                        return Err(Error::Parameter(format!(
                            "config.json has no head_dim and hidden_size {hidden:?} / num_attention_heads {heads:?} gives none"
                        )))
                    }
                }
            }
        } as usize;
        // Python's int(head_dim * partial_rotary_factor).
        let rotary_dim = (head_dim as f64 * prf) as usize;
        if rotary_dim < 2 || rotary_dim % 2 != 0 {
            return Err(Error::Parameter(format!(
                "config.json head_dim {head_dim} x partial_rotary_factor {prf} gives rotary dimension {rotary_dim}, which is not even and non-zero"
            )));
        }
        let mpe = int(top, "max_position_embeddings")?;
        let orig = int_in(&maps, "original_max_position_embeddings")?.or(mpe);
        let need = |key: &str, v: Option<f64>| {
            v.ok_or_else(|| Error::Parameter(format!("config.json rope type {kind:?} needs {key}")))
        };
        let need_int = |key: &str, v: Option<u64>| {
            v.ok_or_else(|| Error::Parameter(format!("config.json rope type {kind:?} needs {key}")))
        };
        let factor = num(rope, "factor")?;
        let variant = match kind.as_str() {
            "default" => Variant::Default,
            "linear" => Variant::Linear {
                factor: need("factor", factor)?,
            },
            "dynamic" => Variant::Dynamic {
                factor: need("factor", factor)?,
                max_position_embeddings: need_int("max_position_embeddings", mpe)?,
            },
            "yarn" => {
                let orig = need_int("original_max_position_embeddings", orig)?;
                let factor = match factor {
                    Some(f) => f,
                    None => need_int("factor or max_position_embeddings", mpe)? as f64 / orig as f64,
                };
                // Python's `get("beta_fast") or 32`: absent, null or 0 take the default.
                let or = |v: Option<f64>, d: f64| v.filter(|x| *x != 0.0).unwrap_or(d);
                Variant::Yarn {
                    factor,
                    original_max_position_embeddings: orig,
                    beta_fast: or(num(rope, "beta_fast")?, 32.0),
                    beta_slow: or(num(rope, "beta_slow")?, 1.0),
                    mscale: num(rope, "mscale")?,
                    mscale_all_dim: num(rope, "mscale_all_dim")?,
                    attention_factor: num(rope, "attention_factor")?,
                    truncate: boolean(rope, "truncate")?.unwrap_or(true),
                }
            }
            "llama3" => Variant::Llama3 {
                factor: need("factor", factor)?,
                low_freq_factor: need("low_freq_factor", num(rope, "low_freq_factor")?)?,
                high_freq_factor: need("high_freq_factor", num(rope, "high_freq_factor")?)?,
                original_max_position_embeddings: need_int(
                    "original_max_position_embeddings",
                    orig,
                )?,
            },
            "longrope" => {
                let orig = need_int("original_max_position_embeddings", orig)?;
                let factor = match factor {
                    Some(f) => f,
                    None => need_int("factor or max_position_embeddings", mpe)? as f64 / orig as f64,
                };
                let get = |key: &str| -> Result<Vec<f64>> {
                    list(rope, key)?.ok_or_else(|| {
                        Error::Parameter(format!("config.json rope type \"longrope\" needs {key}"))
                    })
                };
                Variant::LongRope {
                    short_factor: get("short_factor")?,
                    long_factor: get("long_factor")?,
                    original_max_position_embeddings: orig,
                    factor,
                    attention_factor: num(rope, "attention_factor")?,
                }
            }
            other => {
                return Err(Error::Parameter(format!(
                    "config.json rope_type {other:?} is not supported; expected default, linear, dynamic, yarn, llama3 or longrope"
                )))
            }
        };
        let sections_of = |m: &Map<String, Value>| -> Result<Option<Vec<usize>>> {
            match m.get("mrope_section") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .filter(|n| *n > 0)
                            .map(|n| n as usize)
                            .ok_or_else(|| {
                                err(
                                    "mrope_section",
                                    x,
                                    "holds a value that is not a positive integer",
                                )
                            })
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Some),
                Some(v) => Err(err("mrope_section", v, "is not a list")),
            }
        };
        let mut sections = None;
        for m in [Some(rope), scaling, Some(top)].into_iter().flatten() {
            if let Some(s) = sections_of(m)? {
                if sections.as_ref().is_some_and(|p: &Vec<usize>| *p != s) {
                    return Err(Error::Parameter(format!(
                        "config.json gives mrope_section twice with different values, {:?} and {s:?}",
                        sections.unwrap_or_default()
                    )));
                }
                sections = Some(s);
            }
        }
        let interleaved_mrope = match boolean(rope, "mrope_interleaved")? {
            Some(b) => b,
            None => boolean(top, "mrope_interleaved")?.unwrap_or(false),
        };
        let axes = match sections {
            Some(s) if interleaved_mrope => Axes::MropeInterleaved(s),
            Some(s) => Axes::Mrope(s),
            None if interleaved_mrope => {
                return Err(Error::Parameter(
                    "config.json mrope_interleaved true needs mrope_section".into(),
                ))
            }
            None => Axes::Single,
        };
        axes.axis_map(rotary_dim / 2)
            .map_err(|e| Error::Parameter(format!("config.json mrope_section: {e}")))?;
        let glm = top
            .get("model_type")
            .and_then(Value::as_str)
            .is_some_and(|m| matches!(m, "glm" | "glm4" | "chatglm"));
        let pairing = if boolean(top, "rope_interleave")?.unwrap_or(false) || glm {
            Pairing::Interleaved
        } else {
            Pairing::HalfSplit
        };
        let recipe = TableRecipe {
            base,
            rotary_dim,
            variant,
            angles: AngleMode::Exact,
            axes,
        };
        // Check the variant's own values now (factor lengths, signs), at an arbitrary position.
        recipe
            .frequencies(0)
            .map_err(|e| Error::Parameter(format!("config.json rope {kind:?}: {e}")))?;
        Ok(Self {
            recipe,
            head_dim: head_dim as usize,
            pairing,
            max_position_embeddings: mpe,
        })
    }
}
