//! A Hugging Face `config.json` read into a [`TableRecipe`], a pairing and a head dimension,
//! the way the model's own transformers code reads it — or refused in one sentence.
//!
//! The model type decides as much as the rope type (`models`): the pairing its attention
//! rotates, the keys it reads (`rotary_dim`, `rotary_pct`, `kv_channels`, `rope_ratio`,
//! `qk_rope_head_dim`, `n_embd`/`n_head`, `attn_config`, `rope_local_base_freq`,
//! `global_rope_theta`/`local_rope_theta`, `alpha`, ...), which layers rotate
//! (`layer_types`, `no_rope_layers`, a rope per layer type) and the defaults its class assumes
//! for keys left out. Both forms are read: transformers 4.x (`rope_theta` + `rope_scaling`
//! with `type` or `rope_type`) and 5.x (`rope_parameters`, flat or one set per layer type).
//! Wrappers (Gemma 3, Llama 4, Qwen2.5-VL, Mistral 3, ...) are read through `text_config`.
//! A model whose layers differ needs a [`Layer`] choice; a model or layer without RoPE, an
//! unknown model type and anything inconsistent are [`Error::Parameter`] naming the key.
//! [`HfRope::explanation`] says what was read and decided.

use serde_json::{Map, Value};

use super::models::{self, Defaults, Known, Model, NoRope, PairRule, Pattern, Special};
use super::{AngleMode, Axes, TableRecipe, Variant};
use crate::error::{Error, Result};
use crate::spec::Pairing;

/// Which layer of a model a table is for, where its layers differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// A layer type of the config's `layer_types` (`sliding_attention`, `full_attention`, ...).
    Type(String),
    /// A layer by its 0-based index.
    Index(usize),
}

/// What a model's `config.json` says about its rotary embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct HfRope {
    /// Base, rotary dimension, variant and axes (angle mode: exact; set `recipe.angles`).
    pub recipe: TableRecipe,
    /// The attention head dimension the rotary part lives in.
    pub head_dim: usize,
    /// The pairing the model's attention rotates.
    pub pairing: Pairing,
    /// `max_position_embeddings`, where given.
    pub max_position_embeddings: Option<u64>,
    /// What was read and decided, for `bfrope explain`.
    pub explanation: Explanation,
}

/// What the reader read and decided, key by key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explanation {
    /// The model type (the text config's, for a wrapper), if the config names one.
    pub model_type: Option<String>,
    /// `text_config` (or `llm_config`, `language_config`) where a wrapper holds the text model.
    pub text_config: Option<String>,
    /// Every key read, with its path and value as written (`rope_parameters.factor = 8.0`).
    pub used: Vec<(String, String)>,
    /// Values not in the config.json that the model type's class assumes.
    pub defaults: Vec<(String, String)>,
    /// Rope-related keys present but not read, and other warnings.
    pub warnings: Vec<String>,
    /// Why the pairing is what it is.
    pub pairing_reason: String,
    /// One line per group of layers that rotate alike (empty for a model without layer kinds).
    pub layers: Vec<String>,
    /// The layer choice that applied, if any.
    pub chosen: Option<String>,
    /// Other decisions worth knowing (the model's own precision of its table, ...).
    pub notes: Vec<String>,
}

fn err(key: &str, value: &Value, why: &str) -> Error {
    Error::Parameter(format!("config.json {key} {value} {why}"))
}

/// A short form of a number for messages (`1e-300`, `500000`).
fn show(x: f64) -> String {
    super::ShortFloat(x).to_string()
}

/// One JSON object being read, its path for messages, and the log of what was read.
#[derive(Clone, Copy)]
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Obj<'a> {
    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
}

/// The reader's log of keys used.
#[derive(Default)]
struct Log {
    used: Vec<(String, String)>,
    defaults: Vec<(String, String)>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Log {
    fn used(&mut self, name: String, v: &Value) {
        if !self.used.iter().any(|(n, _)| *n == name) {
            self.used.push((name, v.to_string()));
        }
    }
    fn assumed(&mut self, name: &str, v: impl std::fmt::Display) {
        let name = name.to_string();
        if !self.defaults.iter().any(|(n, _)| *n == name) {
            self.defaults.push((name, v.to_string()));
        }
    }

    fn num(&mut self, o: Obj, key: &str) -> Result<Option<f64>> {
        match o.get(key) {
            None => Ok(None),
            Some(v) => {
                let x = v
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| err(&o.name(key), v, "is not a finite number"))?;
                self.used(o.name(key), v);
                Ok(Some(x))
            }
        }
    }

    fn int(&mut self, o: Obj, key: &str) -> Result<Option<u64>> {
        match o.get(key) {
            None => Ok(None),
            Some(v) => {
                let x = v
                    .as_u64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 2f64.powi(53))
                            .map(|x| x as u64)
                    })
                    .ok_or_else(|| err(&o.name(key), v, "is not a non-negative integer"))?;
                self.used(o.name(key), v);
                Ok(Some(x))
            }
        }
    }

    fn boolean(&mut self, o: Obj, key: &str) -> Result<Option<bool>> {
        match o.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => {
                self.used(o.name(key), &Value::Bool(*b));
                Ok(Some(*b))
            }
            Some(v) => Err(err(&o.name(key), v, "is not true or false")),
        }
    }

    fn list(&mut self, o: Obj, key: &str) -> Result<Option<Vec<f64>>> {
        match o.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => {
                let v = a
                    .iter()
                    .map(|x| {
                        x.as_f64().ok_or_else(|| {
                            err(&o.name(key), x, "holds a value that is not a number")
                        })
                    })
                    .collect::<Result<Vec<f64>>>()?;
                self.used(o.name(key), &Value::String(format!("[{} values]", v.len())));
                Ok(Some(v))
            }
            Some(v) => Err(err(&o.name(key), v, "is not a list of numbers")),
        }
    }

    fn string(&mut self, o: Obj, key: &str) -> Result<Option<String>> {
        match o.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                self.used(o.name(key), &Value::String(s.clone()));
                Ok(Some(s.clone()))
            }
            Some(v) => Err(err(&o.name(key), v, "is not a string")),
        }
    }
}

fn object<'a>(o: Obj<'a>, key: &str) -> Result<Option<&'a Map<String, Value>>> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(err(&o.name(key), v, "is not an object")),
    }
}

/// The keys that name where a wrapper keeps its text model's config.
const TEXT_KEYS: [&str; 3] = ["text_config", "llm_config", "language_config"];

/// Keys the reader looks at; any other key whose name speaks of rotary embeddings is warned
/// about as not understood.
fn rope_related(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["rope", "rotary", "theta", "mrope", "alibi"]
        .iter()
        .any(|w| k.contains(w))
}

/// The rope parameters of one layer kind, with the path they were read at.
#[derive(Clone)]
struct RopeSet {
    /// The merged parameter map (`rope_parameters`/`rope_scaling` keys and defaults).
    params: Map<String, Value>,
    /// Where `params` came from, for messages (`rope_parameters.full_attention`).
    path: String,
    /// The base and where it came from.
    theta: (f64, String),
}

/// One layer's kind: its type name and the rope it applies (None: no rotary embedding, with
/// the reason).
#[derive(Clone)]
struct LayerKind {
    type_name: Option<String>,
    rope: std::result::Result<usize, String>,
}

impl HfRope {
    /// Reads a `config.json`'s text, for a model whose layers rotate alike.
    pub fn from_config_json(text: &str) -> Result<Self> {
        Self::from_config_json_for(text, None)
    }

    /// Reads a `config.json`'s text for one layer (by type or index) where layers differ.
    pub fn from_config_json_for(text: &str, layer: Option<&Layer>) -> Result<Self> {
        Self::from_config_for(&Self::parse_json(text)?, layer)
    }

    /// Parses a `config.json` as Python's `json` module writes it: the bare `NaN`,
    /// `Infinity` and `-Infinity` of real checkpoints (Mamba's `time_step_limit`) are read as
    /// the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, which a key bfrope reads then refuses
    /// by name.
    pub fn parse_json(text: &str) -> Result<Value> {
        let mut out = String::with_capacity(text.len() + 16);
        let (mut in_str, mut escaped) = (false, false);
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if in_str {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                }
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let token = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t));
            match token {
                Some(t) => {
                    out.push('"');
                    out.push_str(t);
                    out.push('"');
                    rest = &rest[t.len()..];
                }
                None => {
                    if c == '"' {
                        in_str = true;
                    }
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        serde_json::from_str(&out)
            .map_err(|e| Error::Parameter(format!("config.json is not valid JSON: {e}")))
    }

    /// Reads a parsed `config.json`, for a model whose layers rotate alike.
    pub fn from_config(config: &Value) -> Result<Self> {
        Self::from_config_for(config, None)
    }

    /// Reads a parsed `config.json` for one layer (by type or index) where layers differ.
    pub fn from_config_for(config: &Value, layer: Option<&Layer>) -> Result<Self> {
        read(config, layer)
    }

    /// What was read and decided, one line each, as `bfrope explain` prints it.
    pub fn summary(&self) -> String {
        let r = &self.recipe;
        let model = self
            .explanation
            .model_type
            .as_deref()
            .map(|m| format!("model type {m}, "))
            .unwrap_or_default();
        let layer = self
            .explanation
            .chosen
            .as_deref()
            .map(|c| format!("{c}, "))
            .unwrap_or_default();
        format!(
            "{model}{layer}head_dim {}, rotary_dim {}, {} pairs, {} base {}",
            self.head_dim,
            r.rotary_dim,
            match self.pairing {
                Pairing::Interleaved => "interleaved",
                Pairing::HalfSplit => "half-split",
            },
            r.variant.name(),
            show(r.base)
        )
    }
}

fn read(config: &Value, choice: Option<&Layer>) -> Result<HfRope> {
    let top_map = config
        .as_object()
        .ok_or_else(|| Error::Parameter("config.json is not a JSON object".into()))?;
    let top = Obj {
        map: top_map,
        path: "",
    };
    let mut log = Log::default();
    let top_type = top.get("model_type").and_then(Value::as_str);

    // A wrapper: the text model's config, where the rotary embedding is.
    let mut text_key = None;
    for k in TEXT_KEYS {
        if let Some(m) = object(top, k)? {
            text_key = Some((k, m));
            break;
        }
    }
    let (cfg, wrapper) = match text_key {
        Some((k, m)) => (Obj { map: m, path: k }, Some(k)),
        None => (top, None),
    };
    let model_type = match cfg.get("model_type") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => return Err(err(&cfg.name("model_type"), v, "is not a string")),
        None => match (wrapper, top_type) {
            (Some(_), Some(t)) => Some(
                Defaults::of(Some(t))
                    .text_model_type()
                    .unwrap_or(t)
                    .to_string(),
            ),
            (None, Some(t)) => Some(t.to_string()),
            _ => None,
        },
    };
    let arch = top
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str);
    // No model_type: the one the architecture's class names, where bfrope knows it.
    let model_type = match (model_type, arch.and_then(models::from_architecture)) {
        (Some(t), _) => Some(t),
        (None, Some(t)) => {
            log.used(
                "architectures".into(),
                &Value::String(arch.unwrap_or("").into()),
            );
            log.notes.push(format!(
                "config.json names no model_type; its architectures entry {} names model type {t}",
                arch.unwrap_or("")
            ));
            Some(t.to_string())
        }
        (None, None) => None,
    };
    if let Some(t) = cfg.get("model_type") {
        log.used(cfg.name("model_type"), t);
    }

    let model: Option<Model> = match model_type.as_deref() {
        None => {
            log.warnings.push(format!(
                "config.json names no model_type{}: read with the common conventions (half-split pairs, head_dim or hidden_size / num_attention_heads, every layer rotating)",
                arch.map(|a| format!(" (architectures {a})")).unwrap_or_default()
            ));
            None
        }
        Some(t) => match models::lookup(t) {
            Known::Rope(m) => Some(m),
            Known::NoRope(why) => {
                return Err(Error::Parameter(format!(
                    "config.json model type {t:?} uses {why}, not rotary embeddings: there is nothing to rotate"
                )))
            }
            Known::Unknown => {
                return Err(Error::Parameter(format!(
                    "config.json model type {t:?} is not one bfrope knows, so its rotary conventions (pairing, rotated dims, layers) cannot be read from config.json alone; give --base, --rotary-dim and --rotation instead (docs/MODELS.md lists the model types read)"
                )))
            }
        },
    };
    let special = model.map(|m| m.special).unwrap_or(Special::None);
    let defaults = Defaults::of(model_type.as_deref());
    let alias = |key: &'static str| names(model_type.as_deref(), key);

    if let Special::Refuse(why) = special {
        return Err(Error::Parameter(format!(
            "config.json model type {:?} is not read by bfrope: {why}",
            model_type.as_deref().unwrap_or("")
        )));
    }
    if special == Special::Falcon && log.boolean(cfg, "alibi")? == Some(true) {
        return Err(Error::Parameter(
            "config.json model type \"falcon\" has alibi true: it uses ALiBi attention biases, not rotary embeddings, so there is nothing to rotate".into(),
        ));
    }
    if special == Special::ChatGlm {
        if let Some(false) = log.boolean(cfg, "original_rope")? {
            return Err(Error::Parameter(
                "config.json model type \"chatglm\" has original_rope false, a rotation its published modeling file does not describe; bfrope reads only original_rope true".into(),
            ));
        }
    }

    // 1. The rope parameter sets: one, or one per layer type.
    let sets = rope_sets(cfg, model.as_ref(), &defaults, &mut log)?;

    // 2. The layers and which set each applies.
    let n_layers = first_int(&mut log, cfg, &alias("num_hidden_layers"))?;
    let kinds = layer_kinds(cfg, model.as_ref(), &sets, n_layers, &mut log)?;

    // 3. The choice.
    let (set_index, chosen, layer_lines) = choose(&kinds, &sets, choice, model_type.as_deref())?;
    // The layers the choice covers, for per-layer overrides (Gemma 4's per_layer_config).
    let covered: Vec<usize> = match choice {
        Some(Layer::Index(i)) => vec![*i],
        Some(Layer::Type(t)) => kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.type_name.as_deref() == Some(t.as_str()))
            .map(|(i, _)| i)
            .collect(),
        None => (0..kinds.len())
            .filter(|&i| kinds[i].rope.is_ok())
            .collect(),
    };
    let set = &sets[set_index].1;

    // 4. Dimensions.
    let rope = Obj {
        map: &set.params,
        path: &set.path,
    };
    let mut head_dim = head_dim(cfg, special, &model_type, &mut log)?;
    // Gemma 4: the global layers' heads have their own size (per_layer_config, else
    // global_head_dim, else the class's 512).
    if let Some(d) = per_layer_head_dim(cfg, &covered, &mut log)? {
        head_dim = d;
    } else if sets[set_index].0.as_deref() == Some("full_attention")
        && model_type
            .as_deref()
            .is_some_and(|m| m.starts_with("gemma4"))
    {
        head_dim = match log.int(cfg, "global_head_dim")? {
            Some(d) => d as usize,
            None => {
                log.assumed("global_head_dim", 512);
                512
            }
        };
    }
    let prf_default = defaults.partial_rotary_factor();
    let (rotary_dim, variant_override) =
        rotary_dim(cfg, rope, special, head_dim, prf_default, &mut log)?;

    // 5. The variant.
    let (base, base_from) = set.theta.clone();
    if !(base.is_finite() && base > 0.0) {
        return Err(Error::Parameter(format!(
            "config.json {base_from} {} must be greater than 0",
            show(base)
        )));
    }
    let mpe = first_int(&mut log, cfg, &alias("max_position_embeddings"))?;
    let mpe = match special {
        Special::Dbrx => mpe.or(log.int(cfg, "max_seq_len")?),
        _ => mpe,
    };
    let (variant, base) = variant(
        cfg,
        rope,
        model_type.as_deref(),
        special,
        base,
        rotary_dim,
        head_dim,
        mpe,
        &mut log,
    )?;
    let variant = variant_override.unwrap_or(variant);

    // 6. Axes (multimodal RoPE).
    let axes = axes(cfg, rope, rotary_dim, &mut log)?;

    // 7. Pairing.
    let (pairing, pairing_reason) = match model.map(|m| m.pairing) {
        Some(PairRule::Interleaved(why)) => (
            Pairing::Interleaved,
            format!(
                "interleaved: model type {} — {why}",
                model_type.as_deref().unwrap_or("")
            ),
        ),
        Some(PairRule::Key(key, default)) => match log.boolean(cfg, key)? {
            Some(true) => (
                Pairing::Interleaved,
                format!("interleaved: {} is true", cfg.name(key)),
            ),
            Some(false) => (
                Pairing::HalfSplit,
                format!("half-split: {} is false", cfg.name(key)),
            ),
            None => {
                log.assumed(key, default);
                if default {
                    (
                        Pairing::Interleaved,
                        format!(
                            "interleaved: {key} is absent and model type {} defaults it to true",
                            model_type.as_deref().unwrap_or("")
                        ),
                    )
                } else {
                    (
                        Pairing::HalfSplit,
                        format!("half-split: {key} is absent (default false)"),
                    )
                }
            }
        },
        Some(PairRule::Half) => match log.boolean(cfg, "rope_interleave")? {
            Some(true) => (
                Pairing::Interleaved,
                "interleaved: rope_interleave is true".into(),
            ),
            _ => (
                Pairing::HalfSplit,
                format!(
                    "half-split: model type {} rotates with rotate_half (x[i] with x[i + R/2])",
                    model_type.as_deref().unwrap_or("")
                ),
            ),
        },
        None => match log.boolean(cfg, "rope_interleave")? {
            Some(true) => (
                Pairing::Interleaved,
                "interleaved: rope_interleave is true".into(),
            ),
            _ => (
                Pairing::HalfSplit,
                "half-split: Hugging Face's rotate_half, the common convention".into(),
            ),
        },
    };
    if pairing == Pairing::Interleaved && model.is_some_and(|m| m.pairing.deinterleaves()) {
        log.notes.push("the model's own code returns the rotated pairs de-interleaved (half-split order); q and k are permuted alike, so attention scores are the same".into());
    }
    if special == Special::ChatGlm {
        log.notes.push("ChatGLM's own code rounds its cos/sin cache to the model's dtype (bf16 or f16) before rotating; bfrope's table is f32".into());
    }

    let recipe = TableRecipe {
        base,
        rotary_dim,
        variant,
        angles: AngleMode::Exact,
        axes,
    };
    let kind = recipe.variant.name();
    recipe
        .frequencies(0)
        .map_err(|e| Error::Parameter(format!("config.json rope {kind:?}: {e}")))?;

    // Rope-related keys present but never read.
    let mut seen = Vec::new();
    for o in [Some(top), (wrapper.is_some()).then_some(cfg)]
        .into_iter()
        .flatten()
    {
        for k in o.map.keys() {
            let name = o.name(k);
            if rope_related(k)
                && !log
                    .used
                    .iter()
                    .any(|(n, _)| *n == name || n.starts_with(&format!("{name}.")))
                && !seen.contains(&name)
                && !o.map[k].is_null()
                && !matches!(o.map[k], Value::Object(_))
            {
                seen.push(name);
            }
        }
    }
    for name in seen {
        log.warnings
            .push(format!("{name} is present but bfrope does not read it"));
    }

    Ok(HfRope {
        recipe,
        head_dim,
        pairing,
        max_position_embeddings: mpe,
        explanation: Explanation {
            model_type,
            text_config: wrapper.map(str::to_string),
            used: log.used,
            defaults: log.defaults,
            warnings: log.warnings,
            pairing_reason,
            layers: layer_lines,
            chosen,
            notes: log.notes,
        },
    })
}

/// The head_dim that `per_layer_config` gives the covered layers, where it gives one; layers
/// that disagree are an error.
fn per_layer_head_dim(cfg: Obj, covered: &[usize], log: &mut Log) -> Result<Option<usize>> {
    let Some(per) = object(cfg, "per_layer_config")? else {
        return Ok(None);
    };
    let of = |i: usize| -> Option<u64> {
        per.iter()
            .find(|(k, _)| k.parse::<usize>().ok() == Some(i))
            .and_then(|(_, v)| v.get("head_dim"))
            .and_then(Value::as_u64)
    };
    let dims: Vec<Option<u64>> = covered.iter().map(|&i| of(i)).collect();
    if dims.iter().all(Option::is_none) {
        return Ok(None);
    }
    log.used(
        cfg.name("per_layer_config"),
        &Value::String(format!("[{} layers]", per.len())),
    );
    let first = dims[0];
    if dims.iter().any(|d| *d != first) {
        return Err(Error::Parameter(format!(
            "config.json per_layer_config gives the layers chosen different head_dim values ({}); say which layer with --layer N",
            dims.iter()
                .map(|d| d.map_or("the common one".into(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(first.map(|d| d as usize))
}

/// The config.json names `key` may have, in the order read: the model type's class name for
/// it (`attribute_map`), the key itself, then the legacy names of real checkpoints.
fn names(model_type: Option<&str>, key: &'static str) -> Vec<String> {
    let mut v: Vec<String> = model_type
        .and_then(|m| models::alias(m, key))
        .map(str::to_string)
        .into_iter()
        .collect();
    v.push(key.to_string());
    let legacy: &[&str] = match key {
        "hidden_size" => &["n_embd", "d_model"],
        "num_attention_heads" => &["n_head", "n_heads"],
        _ => &[],
    };
    for extra in legacy {
        if !v.iter().any(|x| x == extra) {
            v.push(extra.to_string());
        }
    }
    v
}

fn first_int(log: &mut Log, o: Obj, keys: &[String]) -> Result<Option<u64>> {
    for k in keys {
        if let Some(v) = log.int(o, k)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn rope_type(log: &mut Log, o: Obj) -> Result<Option<String>> {
    match log.string(o, "rope_type")? {
        Some(t) => Ok(Some(t)),
        None => log.string(o, "type"),
    }
}

/// The rope parameter sets of the config: one (flat), or one per layer type.
fn rope_sets(
    cfg: Obj,
    model: Option<&Model>,
    defaults: &Defaults,
    log: &mut Log,
) -> Result<Vec<(Option<String>, RopeSet)>> {
    let params = object(cfg, "rope_parameters")?;
    let scaling = object(cfg, "rope_scaling")?;
    let special = model.map(|m| m.special).unwrap_or(Special::None);
    // 5.x per-layer-type form: every value an object (or null) and no rope_type.
    let per_type = params.filter(|p| {
        !p.is_empty()
            && !p.contains_key("rope_type")
            && !p.contains_key("type")
            && p.values().all(|v| v.is_object() || v.is_null())
    });
    let theta_top = |log: &mut Log, key: &str| log.num(cfg, key);
    if let Some(p) = per_type {
        let mut out = Vec::new();
        for (lt, v) in p {
            let path = format!("{}.{lt}", cfg.name("rope_parameters"));
            match v {
                Value::Object(m) => {
                    let o = Obj {
                        map: m,
                        path: &path,
                    };
                    let theta = match log.num(o, "rope_theta")? {
                        Some(t) => (t, format!("{path}.rope_theta")),
                        None => match theta_top(log, "rope_theta")? {
                            Some(t) => (t, cfg.name("rope_theta")),
                            None => {
                                let d = defaults.theta(Some(lt));
                                log.assumed(&format!("{path}.rope_theta"), show(d));
                                (d, format!("{path}.rope_theta (class default)"))
                            }
                        },
                    };
                    let mut merged = m.clone();
                    if !merged.contains_key("partial_rotary_factor") {
                        if let Some(v) = cfg.get("partial_rotary_factor") {
                            merged.insert("partial_rotary_factor".into(), v.clone());
                        }
                    }
                    out.push((
                        Some(lt.clone()),
                        RopeSet {
                            params: merged,
                            path,
                            theta,
                        },
                    ));
                }
                _ => {
                    // A layer type saved with no rope: its layers apply none.
                    log.used(path.clone(), &Value::Null);
                }
            }
        }
        if out.is_empty() {
            return Err(Error::Parameter(format!(
                "config.json {} gives no rope for any layer type",
                cfg.name("rope_parameters")
            )));
        }
        return Ok(out);
    }
    // Flat forms: rope_scaling wins over rope_parameters, as transformers' conversion does;
    // both naming a type must agree.
    let (t_params, t_scaling) = (
        params
            .map(|p| {
                rope_type(
                    log,
                    Obj {
                        map: p,
                        path: "rope_parameters",
                    },
                )
            })
            .transpose()?
            .flatten(),
        scaling
            .map(|p| {
                rope_type(
                    log,
                    Obj {
                        map: p,
                        path: "rope_scaling",
                    },
                )
            })
            .transpose()?
            .flatten(),
    );
    let canon = |t: &String| {
        if t == "mrope" {
            "default".to_string()
        } else {
            t.clone()
        }
    };
    if let (Some(a), Some(b)) = (&t_params, &t_scaling) {
        if canon(a) != canon(b) {
            return Err(Error::Parameter(format!(
                "config.json rope_parameters.rope_type {a:?} and rope_scaling type {b:?} disagree"
            )));
        }
    }
    let (mut merged, path) = match (scaling, params) {
        (Some(s), Some(p)) => {
            let mut m = p.clone();
            for (k, v) in s {
                m.insert(k.clone(), v.clone());
            }
            (m, cfg.name("rope_scaling"))
        }
        (Some(s), None) => (s.clone(), cfg.name("rope_scaling")),
        (None, Some(p)) => (p.clone(), cfg.name("rope_parameters")),
        (None, None) => (Map::new(), cfg.name("rope_parameters")),
    };
    let from_config = !merged.is_empty();

    // The theta of the flat set.
    let in_params = |log: &mut Log| -> Result<Option<f64>> {
        match params {
            Some(p) => log.num(
                Obj {
                    map: p,
                    path: "rope_parameters",
                },
                "rope_theta",
            ),
            None => Ok(None),
        }
    };
    let theta_p = in_params(log)?;
    let theta_t = theta_top(log, "rope_theta")?;
    if let (Some(a), Some(b)) = (theta_p, theta_t) {
        if a != b {
            return Err(Error::Parameter(format!(
                "config.json gives rope_theta twice with different values, {} and {}",
                show(b),
                show(a)
            )));
        }
    }
    let given_theta = theta_p
        .map(|t| (t, cfg.name("rope_parameters.rope_theta")))
        .or(theta_t.map(|t| (t, cfg.name("rope_theta"))));

    match special {
        Special::PerLayerType {
            global,
            local,
            scaling_local,
        } => {
            // 4.x form of a model with a rope per layer type: the flat set is the global
            // layers'; the local ones take their own base and the default type.
            let g_theta = match log.num(cfg, global)? {
                Some(t) => (t, cfg.name(global)),
                None => match given_theta.clone() {
                    Some(t) => t,
                    None => {
                        let d = defaults.theta(Some("full_attention"));
                        log.assumed("rope_theta (full_attention)", show(d));
                        (d, "rope_theta (class default)".to_string())
                    }
                },
            };
            let l_theta = match log.num(cfg, local)? {
                Some(t) => (t, cfg.name(local)),
                None => {
                    let d = defaults.theta(Some("sliding_attention"));
                    log.assumed(&format!("{local} (sliding_attention)"), show(d));
                    (d, format!("{local} (class default)"))
                }
            };
            let mut local_params = Map::new();
            local_params.insert("rope_type".into(), Value::String("default".into()));
            if scaling_local {
                if let Some(s) = scaling {
                    for (k, v) in s {
                        local_params.insert(k.clone(), v.clone());
                    }
                }
            }
            let mut global_params = merged;
            if !global_params.contains_key("rope_type") && !global_params.contains_key("type") {
                global_params.insert("rope_type".into(), Value::String("default".into()));
            }
            return Ok(vec![
                (
                    Some("full_attention".to_string()),
                    RopeSet {
                        params: global_params,
                        path,
                        theta: g_theta,
                    },
                ),
                (
                    Some("sliding_attention".to_string()),
                    RopeSet {
                        params: local_params,
                        path: format!("{} (sliding_attention)", cfg.name("rope_parameters")),
                        theta: l_theta,
                    },
                ),
            ]);
        }
        Special::Dbrx => {
            // transformers 5.17's DbrxConfig reads rope_theta at the top level only (default
            // 10000); DBRX's own checkpoints keep theirs in attn_config.
            let attn = object(cfg, "attn_config")?.map(|m| Obj {
                map: m,
                path: "attn_config",
            });
            let inner = attn
                .map(|o| log.num(o, "rope_theta"))
                .transpose()?
                .flatten();
            let outer = given_theta.clone().map(|t| t.0).unwrap_or(10000.0);
            if let Some(t) = inner {
                if t != outer {
                    return Err(Error::Parameter(format!(
                        "config.json attn_config.rope_theta {} (DBRX's own base) and the base transformers 5.17 rotates DBRX with ({}, from {}) differ; bfrope will not pick one silently: give --base",
                        show(t),
                        show(outer),
                        if given_theta.is_some() { "rope_theta" } else { "its default" }
                    )));
                }
            }
        }
        _ => {}
    }

    let theta = match given_theta {
        Some(t) => t,
        None => {
            let legacy = match special {
                Special::NeoX => log
                    .num(cfg, "rotary_emb_base")?
                    .map(|t| (t, cfg.name("rotary_emb_base"))),
                Special::ChatGlm => {
                    let ratio = log.num(cfg, "rope_ratio")?;
                    let r = ratio.unwrap_or(1.0);
                    if ratio.is_none() {
                        log.assumed("rope_ratio", 1);
                    }
                    Some((10000.0 * r, format!("10000 x {}", cfg.name("rope_ratio"))))
                }
                _ => None,
            };
            match legacy {
                Some(t) => t,
                None => {
                    let d = defaults.theta(None);
                    log.assumed("rope_theta", show(d));
                    (d, "rope_theta (class default)".into())
                }
            }
        }
    };
    if !from_config {
        if let Some(d) = defaults.params(None) {
            log.assumed("rope_parameters", Value::Object(d.clone()));
            merged = d;
        }
    }
    Ok(vec![(
        None,
        RopeSet {
            params: merged,
            path,
            theta,
        },
    )])
}

/// Each layer's kind. An empty result: the model has no layer structure that matters.
fn layer_kinds(
    cfg: Obj,
    model: Option<&Model>,
    sets: &[(Option<String>, RopeSet)],
    n_layers: Option<u64>,
    log: &mut Log,
) -> Result<Vec<LayerKind>> {
    let types: Option<Vec<String>> = match cfg.get("layer_types") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        err(
                            &cfg.name("layer_types"),
                            x,
                            "holds a value that is not a string",
                        )
                    })
                })
                .collect::<Result<_>>()?,
        ),
        Some(v) => return Err(err(&cfg.name("layer_types"), v, "is not a list")),
    };
    if let Some(t) = &types {
        log.used(
            cfg.name("layer_types"),
            &Value::String(format!("[{} layers]", t.len())),
        );
    }
    let n = match (&types, n_layers) {
        (Some(t), _) => t.len(),
        (None, Some(n)) => n as usize,
        (None, None) => 0,
    };
    // Layer types from a pattern where the config has none (Gemma 3, Cohere2, Qwen3-Next).
    let types = match (types, model.and_then(|m| m.pattern)) {
        (Some(t), _) => Some(t),
        (
            None,
            Some(Pattern::Every {
                key,
                default,
                local,
                global,
            }),
        ) if n > 0 => {
            let name = |g: bool| if g { global } else { local }.to_string();
            match cfg.get(key) {
                Some(Value::String(p))
                    if !p.is_empty() && p.chars().all(|c| c == 'L' || c == 'G') =>
                {
                    log.used(cfg.name(key), &Value::String(p.clone()));
                    let p: Vec<char> = p.chars().collect();
                    Some((0..n).map(|i| name(p[i % p.len()] == 'G')).collect())
                }
                _ => {
                    let p = log.int(cfg, key)?.unwrap_or_else(|| {
                        log.assumed(key, default);
                        default as u64
                    });
                    if p == 0 {
                        return Err(err(&cfg.name(key), &Value::from(0), "must be at least 1"));
                    }
                    Some((0..n).map(|i| name((i as u64 + 1) % p == 0)).collect())
                }
            }
        }
        (
            None,
            Some(Pattern::Listed {
                key,
                local,
                global,
                if_absent,
            }),
        ) if n > 0 => {
            let listed: Option<Vec<u64>> = match cfg.get(key) {
                None => {
                    log.assumed(key, format!("none: every layer is {if_absent}"));
                    None
                }
                Some(Value::Array(a)) => {
                    log.used(cfg.name(key), &Value::Array(a.clone()));
                    Some(
                        a.iter()
                            .map(|x| {
                                x.as_u64().ok_or_else(|| {
                                    err(
                                        &cfg.name(key),
                                        x,
                                        "holds a value that is not a layer index",
                                    )
                                })
                            })
                            .collect::<Result<_>>()?,
                    )
                }
                Some(v) => return Err(err(&cfg.name(key), v, "is not a list")),
            };
            Some(
                (0..n)
                    .map(|i| match &listed {
                        None => if_absent,
                        Some(l) if l.contains(&(i as u64)) => global,
                        Some(_) => local,
                    })
                    .map(str::to_string)
                    .collect(),
            )
        }
        _ => None,
    };
    let per_type = sets.len() > 1 || sets[0].0.is_some();
    if per_type && types.is_none() {
        let names: Vec<&str> = sets.iter().filter_map(|(t, _)| t.as_deref()).collect();
        // Layers cannot be told apart: each type is still a choice by name.
        return Ok(names
            .iter()
            .map(|t| LayerKind {
                type_name: Some(t.to_string()),
                rope: Ok(sets
                    .iter()
                    .position(|(n, _)| n.as_deref() == Some(t))
                    .unwrap_or(0)),
            })
            .collect());
    }
    let no_rope_flags: Option<Vec<bool>> = match model.map(|m| m.no_rope) {
        Some(NoRope::Listed) => {
            let given = match cfg.get("no_rope_layers") {
                None => None,
                Some(Value::Array(a)) if !a.is_empty() => Some(
                    a.iter()
                        .map(|x| match x.as_u64() {
                            Some(0) => Ok(false),
                            Some(1) => Ok(true),
                            _ => Err(err(
                                &cfg.name("no_rope_layers"),
                                x,
                                "holds a value that is not 0 or 1",
                            )),
                        })
                        .collect::<Result<Vec<bool>>>()?,
                ),
                Some(Value::Array(_)) => None,
                Some(v) => return Err(err(&cfg.name("no_rope_layers"), v, "is not a list")),
            };
            match given {
                Some(v) => {
                    log.used(
                        cfg.name("no_rope_layers"),
                        &Value::String(format!("[{} layers]", v.len())),
                    );
                    Some(v)
                }
                None if n > 0 => {
                    let k = "no_rope_layer_interval";
                    let interval = log.int(cfg, k)?.unwrap_or_else(|| {
                        log.assumed(k, 4);
                        4
                    });
                    if interval == 0 {
                        return Err(err(&cfg.name(k), &Value::from(0), "must be at least 1"));
                    }
                    Some((0..n).map(|i| (i as u64 + 1) % interval != 0).collect())
                }
                None => None,
            }
        }
        _ => None,
    };
    let n = match &no_rope_flags {
        Some(f) if n == 0 => f.len(),
        Some(f) if f.len() != n => {
            return Err(Error::Parameter(format!(
                "config.json no_rope_layers has {} entries but the model has {n} layers",
                f.len()
            )))
        }
        _ => n,
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut kinds = Vec::with_capacity(n);
    for i in 0..n {
        let type_name = types.as_ref().map(|t| t[i].clone());
        let mut rope: std::result::Result<usize, String> = if per_type {
            let t = type_name.as_deref().unwrap_or("");
            match sets.iter().position(|(n, _)| n.as_deref() == Some(t)) {
                Some(k) => Ok(k),
                None if cfg
                    .get("rope_parameters")
                    .and_then(|p| p.get(t))
                    .is_some_and(Value::is_null) =>
                {
                    Err(format!(
                        "its layer type {t:?} has no rope (rope_parameters.{t} is null)"
                    ))
                }
                None => Err(format!("its layer type {t:?} has no rope parameters")),
            }
        } else {
            Ok(0)
        };
        let no_types = match model.map(|m| m.no_rope) {
            Some(NoRope::Types(no)) => Some(no),
            Some(NoRope::TypesIfSet(key, no)) if cfg.get(key).is_some() => {
                if let Some(v) = cfg.get(key) {
                    log.used(cfg.name(key), v);
                }
                Some(no)
            }
            _ => None,
        };
        if let Some(no) = no_types {
            if let Some(t) = &type_name {
                if no.contains(&t.as_str()) {
                    rope = Err(format!(
                        "model type {} applies no rotary embedding on {t} layers",
                        model.map(|m| m.name).unwrap_or("")
                    ));
                }
            }
        }
        if let Some(f) = &no_rope_flags {
            if !f[i] {
                rope = Err(
                    "no_rope_layers marks it as a layer without rotary embedding (NoPE)".into(),
                );
            }
        }
        kinds.push(LayerKind { type_name, rope });
    }
    Ok(kinds)
}

/// Compressed layer ranges: `0-4, 6-10`.
fn ranges(ix: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ix.len() {
        let mut j = i;
        while j + 1 < ix.len() && ix[j + 1] == ix[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            ix[i].to_string()
        } else {
            format!("{}-{}", ix[i], ix[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

/// Layers that rotate alike: their type, their rope set (or why none), their indices.
type Group = (
    Option<String>,
    std::result::Result<usize, String>,
    Vec<usize>,
);

/// Picks the rope set for the choice; returns its index, the choice's description and one
/// line per group of layers.
fn choose(
    kinds: &[LayerKind],
    sets: &[(Option<String>, RopeSet)],
    choice: Option<&Layer>,
    model_type: Option<&str>,
) -> Result<(usize, Option<String>, Vec<String>)> {
    let model = model_type
        .map(|m| format!("model type {m:?}"))
        .unwrap_or_else(|| "the model".into());
    let describe = |k: usize| -> String {
        let s = &sets[k].1;
        let t = s
            .params
            .get("rope_type")
            .or(s.params.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let prf = s
            .params
            .get("partial_rotary_factor")
            .and_then(Value::as_f64)
            .map(|p| format!(", partial_rotary_factor {p}"))
            .unwrap_or_default();
        format!("{t} rope, base {}{prf}", show(s.theta.0))
    };
    // Group layers by (type, rope) in first-seen order.
    let mut groups: Vec<Group> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(t, r, _)| *t == k.type_name && *r == k.rope)
        {
            Some(g) => g.2.push(i),
            None => groups.push((k.type_name.clone(), k.rope.clone(), vec![i])),
        }
    }
    // Layer indices are shown wherever there is more than one layer, or layers have no type.
    let indexed = kinds.len() > 1 || kinds.iter().any(|k| k.type_name.is_none());
    let lines: Vec<String> = groups
        .iter()
        .map(|(t, r, ix)| {
            let which = match t {
                Some(t) => format!("{t} layers"),
                None => "layers".to_string(),
            };
            let at = if indexed {
                format!(" {}", ranges(ix))
            } else {
                String::new()
            };
            match r {
                Ok(k) => format!("{which}{at}: {}", describe(*k)),
                Err(why) => format!("{which}{at}: no rotary embedding ({why})"),
            }
        })
        .collect();
    let distinct: Vec<&std::result::Result<usize, String>> = {
        let mut v: Vec<&std::result::Result<usize, String>> = Vec::new();
        for (_, r, _) in &groups {
            let same = v.iter().any(|x| match (x, r) {
                (Ok(a), Ok(b)) => same_set(&sets[*a].1, &sets[*b].1),
                (Err(_), Err(_)) => true,
                _ => false,
            });
            if !same {
                v.push(r);
            }
        }
        v
    };
    let types: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for (t, _, _) in &groups {
            if let Some(t) = t {
                if !v.contains(t) {
                    v.push(t.clone());
                }
            }
        }
        v
    };
    match choice {
        None => {
            if kinds.is_empty() {
                return Ok((0, None, lines));
            }
            if distinct.len() > 1 {
                let names = if types.len() > 1 {
                    format!(
                        "--layer-type {} or --layer N (0-{})",
                        types.join("|"),
                        kinds.len().saturating_sub(1)
                    )
                } else {
                    format!("--layer N (0-{})", kinds.len() - 1)
                };
                return Err(Error::Parameter(format!(
                    "config.json of {model} rotates its layers differently ({}); say which layer with {names}",
                    lines.join("; ")
                )));
            }
            match distinct[0] {
                Ok(k) => Ok((*k, None, lines)),
                Err(why) => Err(Error::Parameter(format!(
                    "config.json of {model} applies no rotary embedding on any layer ({why}): there is nothing to rotate"
                ))),
            }
        }
        Some(Layer::Index(i)) => {
            let k = kinds.get(*i).ok_or_else(|| {
                Error::Parameter(if kinds.is_empty() {
                    format!("--layer {i}: config.json of {model} names no layers (no num_hidden_layers or layer_types)")
                } else {
                    format!("--layer {i} is out of range: {model} has layers 0-{}", kinds.len() - 1)
                })
            })?;
            let what = match &k.type_name {
                Some(t) => format!("layer {i} ({t})"),
                None => format!("layer {i}"),
            };
            match &k.rope {
                Ok(s) => Ok((*s, Some(what), lines)),
                Err(why) => Err(Error::Parameter(format!(
                    "{what} of {model} applies no rotary embedding ({why}): there is nothing to rotate"
                ))),
            }
        }
        Some(Layer::Type(t)) => {
            let layers: Vec<&LayerKind> = kinds
                .iter()
                .filter(|k| k.type_name.as_deref() == Some(t))
                .collect();
            if layers.is_empty() {
                return Err(Error::Parameter(if types.is_empty() {
                    format!("--layer-type {t}: config.json of {model} has no layer types")
                } else {
                    format!(
                        "--layer-type {t} is not a layer type of {model}; it has {}",
                        types.join(", ")
                    )
                }));
            }
            let first = &layers[0].rope;
            if layers.iter().any(|k| k.rope != *first) {
                let ix: Vec<usize> = kinds
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.type_name.as_deref() == Some(t))
                    .map(|(i, _)| i)
                    .collect();
                return Err(Error::Parameter(format!(
                    "{t} layers of {model} differ in their rotary embedding; say which with --layer N ({})",
                    ranges(&ix)
                )));
            }
            match first {
                Ok(s) => Ok((*s, Some(format!("{t} layers")), lines)),
                Err(why) => Err(Error::Parameter(format!(
                    "{t} layers of {model} apply no rotary embedding ({why}): there is nothing to rotate"
                ))),
            }
        }
    }
}

fn same_set(a: &RopeSet, b: &RopeSet) -> bool {
    let strip = |m: &Map<String, Value>| {
        let mut m = m.clone();
        m.remove("rope_theta");
        if m.get("type").is_some() && m.get("rope_type").is_none() {
            let t = m.remove("type").unwrap_or(Value::Null);
            m.insert("rope_type".into(), t);
        }
        m.entry("rope_type")
            .or_insert(Value::String("default".into()));
        m
    };
    a.theta.0 == b.theta.0 && strip(&a.params) == strip(&b.params)
}

fn head_dim(
    cfg: Obj,
    special: Special,
    model_type: &Option<String>,
    log: &mut Log,
) -> Result<usize> {
    let key = |k: &'static str| names(model_type.as_deref(), k);
    // MLA: the rotary part of the head has its own size.
    if let Some(d) = log.int(cfg, "qk_rope_head_dim")? {
        return Ok(d as usize);
    }
    if special == Special::HiddenHeadDim {
        let hidden = first_int(log, cfg, &key("hidden_size"))?;
        let heads = first_int(log, cfg, &key("num_attention_heads"))?;
        if let (Some(h), Some(n)) = (hidden, heads) {
            if n > 0 && h / n > 0 {
                log.notes.push(format!(
                    "the model's class sets head_dim to hidden_size / num_attention_heads = {}, whatever head_dim says",
                    h / n
                ));
                return Ok((h / n) as usize);
            }
        }
    }
    if special == Special::ChatGlm {
        if let Some(d) = log.int(cfg, "kv_channels")? {
            return Ok(d as usize);
        }
    }
    for k in key("head_dim") {
        if let Some(d) = log.int(cfg, &k)? {
            if d > 0 {
                return Ok(d as usize);
            }
        }
    }
    let hidden = first_int(log, cfg, &key("hidden_size"))?;
    let heads = first_int(log, cfg, &key("num_attention_heads"))?;
    match (hidden, heads) {
        (Some(h), Some(n)) if n > 0 && h / n > 0 => Ok((h / n) as usize),
        (Some(h), Some(n)) => Err(Error::Parameter(format!(
            "config.json hidden_size {h} / num_attention_heads {n} gives no head dimension"
        ))),
        (None, _) => Err(Error::Parameter(
            "config.json has no head_dim and no hidden_size (or n_embd, d_model) to derive it from".into(),
        )),
        (_, None) => Err(Error::Parameter(
            "config.json has no head_dim and no num_attention_heads (or n_head, n_heads) to derive it from".into(),
        )),
    }
}

/// The rotary dimension, and a variant that replaces the rope type's (proportional).
fn rotary_dim(
    cfg: Obj,
    rope: Obj,
    special: Special,
    head_dim: usize,
    prf_default: Option<f64>,
    log: &mut Log,
) -> Result<(usize, Option<Variant>)> {
    match special {
        Special::RotaryDim => {
            return match log.int(cfg, "rotary_dim")? {
                Some(r) if r >= 2 && r % 2 == 0 && r as usize <= head_dim => Ok((r as usize, None)),
                Some(r) => Err(err(
                    &cfg.name("rotary_dim"),
                    &Value::from(r),
                    &format!("must be even, at least 2 and at most head_dim {head_dim}"),
                )),
                None => Err(Error::Parameter(
                    "config.json has no rotary_dim; GPT-J and CodeGen then rotate the whole hidden size, which is no head's rotation".into(),
                )),
            }
        }
        Special::ChatGlm => {
            let r = head_dim / 2;
            log.notes.push(format!(
                "ChatGLM rotates the first kv_channels / 2 = {r} dims of each head"
            ));
            if r < 2 || r % 2 != 0 {
                return Err(Error::Parameter(format!(
                    "config.json kv_channels {head_dim} gives ChatGLM's rotary dimension {r}, which is not even"
                )));
            }
            return Ok((r, None));
        }
        _ => {}
    }
    let prf_rope = log.num(rope, "partial_rotary_factor")?;
    let prf_top = log.num(cfg, "partial_rotary_factor")?;
    let pct = log.num(cfg, "rotary_pct")?;
    let prf = match (prf_rope.or(prf_top), pct) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::Parameter(format!(
                "config.json partial_rotary_factor {a} and rotary_pct {b} disagree"
            )))
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => match (special, prf_default) {
            (Special::NeoX, _) => {
                log.assumed("rotary_pct", 0.25);
                0.25
            }
            (_, Some(d)) => {
                log.assumed("partial_rotary_factor", d);
                d
            }
            _ => 1.0,
        },
    };
    if !(prf > 0.0 && prf <= 1.0) {
        return Err(Error::Parameter(format!(
            "config.json partial_rotary_factor {prf} must be in (0, 1]"
        )));
    }
    let kind = rope
        .get("rope_type")
        .or(rope.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    if kind == "proportional" {
        // Gemma 4: the whole head rotates; the first int(prf·head_dim // 2) frequencies are
        // the default ones over head_dim, the rest zero.
        if head_dim < 2 || head_dim % 2 != 0 {
            return Err(Error::Parameter(format!(
                "config.json head_dim {head_dim} is odd; proportional RoPE rotates rotate_half of the whole head"
            )));
        }
        let rotated = (prf * head_dim as f64 / 2.0).floor() as usize;
        let factor = log.num(rope, "factor")?.unwrap_or(1.0);
        return Ok((head_dim, Some(Variant::Proportional { rotated, factor })));
    }
    // MLA (qk_rope_head_dim): transformers scales the config's head_dim, which for most MLA
    // models is the rope part itself; the rotated dims must fit in the rope part.
    let mla_head = match (
        cfg.get("qk_rope_head_dim"),
        cfg.get("head_dim").and_then(Value::as_u64),
    ) {
        (Some(_), Some(h)) if prf != 1.0 => Some(h as usize),
        _ => None,
    };
    // Python's int(head_dim * partial_rotary_factor).
    let r = (mla_head.unwrap_or(head_dim) as f64 * prf) as usize;
    if mla_head.is_some() && r > head_dim {
        return Err(Error::Parameter(format!(
            "config.json head_dim {} x partial_rotary_factor {prf} gives rotary dimension {r}, more than qk_rope_head_dim {head_dim}",
            mla_head.unwrap_or(0)
        )));
    }
    if r < 2 || r % 2 != 0 {
        return Err(Error::Parameter(format!(
            "config.json head_dim {head_dim} x partial_rotary_factor {prf} gives rotary dimension {r}, which is not even and non-zero"
        )));
    }
    Ok((r, None))
}

#[allow(clippy::too_many_arguments)]
fn variant(
    cfg: Obj,
    rope: Obj,
    model_type: Option<&str>,
    special: Special,
    base: f64,
    rotary_dim: usize,
    head_dim: usize,
    mpe: Option<u64>,
    log: &mut Log,
) -> Result<(Variant, f64)> {
    let kind = match rope_type(log, rope)? {
        Some(t) if t == "mrope" => "default".to_string(),
        Some(t) => t,
        None => "default".to_string(),
    };
    // transformers' Phi3Config reads Phi-3's legacy names "su" and "yarn" as "longrope".
    let phi3 = matches!(model_type, Some("phi3" | "phimoe"));
    let kind = match kind.as_str() {
        "su" => "longrope".to_string(),
        "yarn" if phi3 => "longrope".to_string(),
        _ => kind,
    };
    // Phi-3 keeps original_max_position_embeddings at the top level, which wins.
    let orig = match log.int(cfg, "original_max_position_embeddings")? {
        Some(o) => Some(o),
        None => log.int(rope, "original_max_position_embeddings")?,
    };
    let orig = orig.or(mpe);
    let need = |key: &str, v: Option<f64>| {
        v.ok_or_else(|| Error::Parameter(format!("config.json rope type {kind:?} needs {key}")))
    };
    let need_int = |key: &str, v: Option<u64>| {
        v.ok_or_else(|| Error::Parameter(format!("config.json rope type {kind:?} needs {key}")))
    };
    let factor = log.num(rope, "factor")?;
    let alpha = log.num(rope, "alpha")?;
    let variant = match kind.as_str() {
        "default" => Variant::Default,
        "proportional" => Variant::Default, // replaced by rotary_dim's variant
        "linear" => Variant::Linear {
            factor: need("factor", factor)?,
        },
        "dynamic" if alpha.is_some() && special == Special::HunYuan => {
            // HunYuan's DynamicNTKAlpha: a fixed base θ · alpha^(d/(d−2)) over head_dim.
            let a = alpha.unwrap_or(1.0);
            if !(a.is_finite() && a > 0.0) {
                return Err(Error::Parameter(format!(
                    "config.json rope_scaling alpha {} must be greater than 0",
                    show(a)
                )));
            }
            if rotary_dim != head_dim || head_dim <= 2 {
                return Err(Error::Parameter(format!(
                    "config.json HunYuan alpha scaling needs the whole head to rotate (rotary dimension {rotary_dim}, head_dim {head_dim})"
                )));
            }
            log.notes.push(format!(
                "HunYuan's alpha {a}: base {} (rope_theta x alpha^(d/(d-2))) up to max_position_embeddings; beyond it transformers' dynamic NTK of rope_theta with factor {}",
                show(base * libm::pow(a, head_dim as f64 / (head_dim - 2) as f64)),
                factor.unwrap_or(1.0)
            ));
            Variant::DynamicAlpha {
                alpha: a,
                factor: factor.unwrap_or(1.0),
                max_position_embeddings: need_int("max_position_embeddings", mpe)?,
            }
        }
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
                beta_fast: or(log.num(rope, "beta_fast")?, 32.0),
                beta_slow: or(log.num(rope, "beta_slow")?, 1.0),
                mscale: log.num(rope, "mscale")?,
                mscale_all_dim: log.num(rope, "mscale_all_dim")?,
                attention_factor: log.num(rope, "attention_factor")?,
                truncate: log.boolean(rope, "truncate")?.unwrap_or(true),
            }
        }
        "llama3" => Variant::Llama3 {
            factor: need("factor", factor)?,
            low_freq_factor: need("low_freq_factor", log.num(rope, "low_freq_factor")?)?,
            high_freq_factor: need("high_freq_factor", log.num(rope, "high_freq_factor")?)?,
            original_max_position_embeddings: need_int("original_max_position_embeddings", orig)?,
        },
        "longrope" => {
            let orig = need_int("original_max_position_embeddings", orig)?;
            let factor = match factor {
                Some(f) => f,
                None => need_int("factor or max_position_embeddings", mpe)? as f64 / orig as f64,
            };
            let short = log.list(rope, "short_factor")?;
            let long = log.list(rope, "long_factor")?;
            let get = |key: &str, v: Option<Vec<f64>>| -> Result<Vec<f64>> {
                v.ok_or_else(|| {
                    Error::Parameter(format!("config.json rope type \"longrope\" needs {key}"))
                })
            };
            Variant::LongRope {
                short_factor: get("short_factor", short)?,
                long_factor: get("long_factor", long)?,
                original_max_position_embeddings: orig,
                factor,
                attention_factor: log.num(rope, "attention_factor")?,
            }
        }
        other => {
            return Err(Error::Parameter(format!(
                "config.json rope_type {other:?} is not supported; expected default, linear, dynamic, yarn, llama3, longrope or proportional"
            )))
        }
    };
    Ok((variant, base))
}

fn axes(cfg: Obj, rope: Obj, rotary_dim: usize, log: &mut Log) -> Result<Axes> {
    let sections_of = |log: &mut Log, m: Obj| -> Result<Option<Vec<usize>>> {
        match m.get("mrope_section") {
            None => Ok(None),
            Some(v @ Value::Array(a)) => {
                let s = a
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .filter(|n| *n > 0)
                            .map(|n| n as usize)
                            .ok_or_else(|| {
                                err(
                                    &m.name("mrope_section"),
                                    x,
                                    "holds a value that is not a positive integer",
                                )
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                log.used(m.name("mrope_section"), v);
                Ok(Some(s))
            }
            Some(v) => Err(err(&m.name("mrope_section"), v, "is not a list")),
        }
    };
    let mut sections: Option<Vec<usize>> = None;
    let scaling = object(cfg, "rope_scaling")?.map(|m| Obj {
        map: m,
        path: "rope_scaling",
    });
    for m in [Some(rope), scaling, Some(cfg)].into_iter().flatten() {
        if let Some(s) = sections_of(log, m)? {
            if sections.as_ref().is_some_and(|p| *p != s) {
                return Err(Error::Parameter(format!(
                    "config.json gives mrope_section twice with different values, {:?} and {s:?}",
                    sections.unwrap_or_default()
                )));
            }
            sections = Some(s);
        }
    }
    let interleaved = match log.boolean(rope, "mrope_interleaved")? {
        Some(b) => b,
        None => log.boolean(cfg, "mrope_interleaved")?.unwrap_or(false),
    };
    let axes = match sections {
        Some(s) if interleaved => Axes::MropeInterleaved(s),
        Some(s) => Axes::Mrope(s),
        None if interleaved => {
            return Err(Error::Parameter(
                "config.json mrope_interleaved true needs mrope_section".into(),
            ))
        }
        None => Axes::Single,
    };
    axes.axis_map(rotary_dim / 2)
        .map_err(|e| Error::Parameter(format!("config.json mrope_section: {e}")))?;
    Ok(axes)
}
