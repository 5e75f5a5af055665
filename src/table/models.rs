//! What a model type decides about its rotary embedding beyond the keys of its config.json:
//! the pairing its attention code rotates, the keys it reads instead of the common ones, the
//! layers that apply no rotation, and the defaults its configuration class assumes for keys a
//! config.json leaves out (`model_defaults.json`, written by `tools/models/defaults.py` from
//! transformers' own classes). Each entry follows the model's modeling file; the support
//! matrix (`docs/MODELS.md`) checks each against the model's own rotary module.

use serde_json::{Map, Value};
use std::sync::OnceLock;

/// How a model type pairs the dims it rotates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PairRule {
    /// Hugging Face's `rotate_half`: element `i` with `i + R/2`.
    Half,
    /// Adjacent elements `(2i, 2i+1)`; the reason names the modeling code that does it.
    Interleaved(&'static str),
    /// The config key decides (DeepSeek's `rope_interleave`), with the class's default.
    Key(&'static str, bool),
}

impl PairRule {
    /// Whether the model's own code writes the rotated pairs back de-interleaved (half-split
    /// order): `apply_rotary_pos_emb_interleave`, which these rules name.
    pub(crate) fn deinterleaves(self) -> bool {
        matches!(
            self,
            PairRule::Key("rope_interleave", _) | PairRule::Interleaved(INTERLEAVE_FN)
        )
    }
}

/// Where a model type keeps what the common keys say elsewhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Special {
    /// The common keys.
    None,
    /// GPT-J, CodeGen: `rotary_dim` dims of `n_embd / n_head`, interleaved (`rotate_every_two`).
    RotaryDim,
    /// ChatGLM (remote code `modeling_chatglm.py`): the first `kv_channels / 2` dims, interleaved,
    /// base `10000 · rope_ratio`.
    ChatGlm,
    /// DBRX: `d_model / n_heads`, `attn_config.rope_theta`.
    Dbrx,
    /// Falcon: RoPE unless `alibi` is true.
    Falcon,
    /// GPT-NeoX: `rotary_pct` (default 0.25), `rotary_emb_base`.
    NeoX,
    /// HunYuan: dynamic NTK by `alpha` (base `θ · alpha^(d/(d−2))`).
    HunYuan,
    /// Cohere2: `head_dim` is always `hidden_size / num_attention_heads` (the class sets it).
    HiddenHeadDim,
    /// Refused by name: the sentence says why.
    Refuse(&'static str),
    /// One rope per layer type, with the local base under `local` (`rope_local_base_freq`,
    /// `local_rope_theta`) and the global one under `global`; `scaling_local`: whether
    /// `rope_scaling` applies to the sliding layers too.
    PerLayerType {
        global: &'static str,
        local: &'static str,
        scaling_local: bool,
    },
}

/// Which layers apply no rotary embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NoRope {
    /// Every attention layer rotates.
    Never,
    /// Llama 4, SmolLM3: `no_rope_layers[i]` is 1 where layer `i` rotates (else derived: every
    /// `no_rope_layer_interval`-th layer does not).
    Listed,
    /// Layers of these types have no rotary embedding (Cohere2's full layers, Qwen3-Next's
    /// linear-attention layers).
    Types(&'static [&'static str]),
    /// As `Types`, where the config key is set (EXAONE 4: global layers are NoPE when a
    /// `sliding_window` is configured).
    TypesIfSet(&'static str, &'static [&'static str]),
}

/// How `layer_types` is derived when a config.json has none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pattern {
    /// Layer `i` is `global` where `(i + 1) % n == 0`, `local` elsewhere; `n` under `key`
    /// (default `default`). An EXAONE-style string (`"LLLG"`) under the key is read too.
    Every {
        key: &'static str,
        default: usize,
        local: &'static str,
        global: &'static str,
    },
    /// Layers listed under `key` are `global`, the rest `local` (Bamba's
    /// `attn_layer_indices`: attention layers among Mamba layers); without the key every layer
    /// is `if_absent` (the class's own default).
    Listed {
        key: &'static str,
        local: &'static str,
        global: &'static str,
        if_absent: &'static str,
    },
}

/// One model type's conventions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Model {
    pub name: &'static str,
    pub pairing: PairRule,
    pub special: Special,
    pub no_rope: NoRope,
    /// How `layer_types` is derived when a config.json has none.
    pub pattern: Option<Pattern>,
}

const fn model(name: &'static str) -> Model {
    Model {
        name,
        pairing: PairRule::Half,
        special: Special::None,
        no_rope: NoRope::Never,
        pattern: None,
    }
}

const fn interleaved(name: &'static str, why: &'static str) -> Model {
    let mut m = model(name);
    m.pairing = PairRule::Interleaved(why);
    m
}

const fn with_special(mut m: Model, s: Special) -> Model {
    m.special = s;
    m
}

const fn with_no_rope(mut m: Model, n: NoRope) -> Model {
    m.no_rope = n;
    m
}

const fn with_pattern(mut m: Model, key: &'static str, default: usize) -> Model {
    m.pattern = Some(Pattern::Every {
        key,
        default,
        local: "sliding_attention",
        global: "full_attention",
    });
    m
}

const fn with_layers(mut m: Model, p: Pattern) -> Model {
    m.pattern = Some(p);
    m
}

const GEMMA3: Special = Special::PerLayerType {
    global: "rope_theta",
    local: "rope_local_base_freq",
    scaling_local: false,
};
const MODERNBERT: Special = Special::PerLayerType {
    global: "global_rope_theta",
    local: "local_rope_theta",
    scaling_local: true,
};
const ROTATE_HALF_2: &str = "its rotate_half takes x[..., 0::2] and x[..., 1::2]";
const COMPLEX: &str = "its attention multiplies (x[2i], x[2i+1]) as complex numbers";
const EVERY_TWO: &str = "its attention uses rotate_every_two";
const INTERLEAVE_FN: &str = "its attention calls apply_rotary_pos_emb_interleave";

/// The model types whose text attention applies RoPE and whose conventions differ from the
/// common ones (half-split pairs, the common keys, every layer rotating). A model type that
/// applies RoPE the common way is in [`COMMON`].
const SPECIAL: &[Model] = &[
    interleaved("blt", ROTATE_HALF_2),
    interleaved("cohere", ROTATE_HALF_2),
    with_special(
        with_pattern(
            with_no_rope(
                interleaved("cohere2", ROTATE_HALF_2),
                NoRope::Types(&["full_attention"]),
            ),
            "sliding_window_pattern",
            4,
        ),
        Special::HiddenHeadDim,
    ),
    with_special(
        with_pattern(
            with_no_rope(
                interleaved("cohere2_moe", ROTATE_HALF_2),
                NoRope::Types(&["full_attention"]),
            ),
            "sliding_window_pattern",
            4,
        ),
        Special::HiddenHeadDim,
    ),
    with_no_rope(model("afmoe"), NoRope::Types(&["full_attention"])),
    with_pattern(
        with_no_rope(
            model("exaone4"),
            NoRope::TypesIfSet("sliding_window", &["full_attention"]),
        ),
        "sliding_window_pattern",
        4,
    ),
    with_pattern(
        with_no_rope(
            model("exaone_moe"),
            NoRope::TypesIfSet("sliding_window", &["full_attention"]),
        ),
        "sliding_window_pattern",
        4,
    ),
    with_no_rope(model("minimax"), NoRope::Types(&["linear_attention"])),
    // LFM2: short convolutions in the "conv" layers, attention only in the listed ones.
    with_layers(
        with_no_rope(model("lfm2"), NoRope::Types(&["conv"])),
        Pattern::Listed {
            key: "full_attn_idxs",
            local: "conv",
            global: "full_attention",
            if_absent: "full_attention",
        },
    ),
    with_no_rope(model("lfm2_moe"), NoRope::Types(&["conv"])),
    with_layers(
        with_no_rope(model("bamba"), NoRope::Types(&["linear_attention"])),
        Pattern::Listed {
            key: "attn_layer_indices",
            local: "linear_attention",
            global: "full_attention",
            if_absent: "linear_attention",
        },
    ),
    with_special(model("nanochat"), Special::Refuse(
        "its rotate_half is cat(x2, -x1), a rotation by the negative angle; rotate it with --base, --rotary-dim, --rotation half and --inverse instead",
    )),
    interleaved("deepseek_v2", COMPLEX),
    Model {
        pairing: PairRule::Key("rope_interleave", true),
        ..model("deepseek_v3")
    },
    interleaved("deepseek_v32", INTERLEAVE_FN),
    interleaved("ernie4_5", ROTATE_HALF_2),
    interleaved("ernie4_5_moe", ROTATE_HALF_2),
    interleaved("glm", ROTATE_HALF_2),
    interleaved("glm4", ROTATE_HALF_2),
    Model {
        pairing: PairRule::Key("rope_interleave", true),
        ..model("glm4_moe_lite")
    },
    interleaved("glm_moe_dsa", INTERLEAVE_FN),
    interleaved("helium", ROTATE_HALF_2),
    interleaved("longcat_flash", INTERLEAVE_FN),
    Model {
        pairing: PairRule::Key("rope_interleave", true),
        ..model("mistral4")
    },
    interleaved("moonshine", ROTATE_HALF_2),
    interleaved("moonshine_streaming", ROTATE_HALF_2),
    Model {
        pairing: PairRule::Key("rope_interleave", true),
        ..model("youtu")
    },
    Model {
        pairing: PairRule::Key("rope_interleave", true),
        ..model("axk1")
    },
    interleaved("axk2", INTERLEAVE_FN),
    with_special(interleaved("gptj", EVERY_TWO), Special::RotaryDim),
    with_special(interleaved("codegen", EVERY_TWO), Special::RotaryDim),
    with_no_rope(interleaved("llama4", COMPLEX), NoRope::Listed),
    with_no_rope(interleaved("llama4_text", COMPLEX), NoRope::Listed),
    with_no_rope(model("smollm3"), NoRope::Listed),
    with_special(
        interleaved(
            "chatglm",
            "its published modeling_chatglm.py rotates (x[2i], x[2i+1])",
        ),
        Special::ChatGlm,
    ),
    with_special(model("dbrx"), Special::Dbrx),

    with_special(model("falcon"), Special::Falcon),
    with_special(model("gpt_neox"), Special::NeoX),
    with_special(model("gpt_neox_japanese"), Special::NeoX),
    with_special(model("hunyuan_v1_dense"), Special::HunYuan),
    with_special(model("hunyuan_v1_moe"), Special::HunYuan),
    with_pattern(with_special(model("gemma3"), GEMMA3), "sliding_window_pattern", 6),
    with_pattern(
        with_special(model("gemma3_text"), GEMMA3),
        "sliding_window_pattern",
        6,
    ),
    with_special(model("modernbert"), MODERNBERT),
    with_special(model("modernbert-decoder"), MODERNBERT),
    with_no_rope(model("qwen3_5"), NoRope::Types(&["linear_attention"])),
    with_no_rope(model("qwen3_5_text"), NoRope::Types(&["linear_attention"])),
    with_no_rope(model("qwen3_5_moe"), NoRope::Types(&["linear_attention"])),
    with_no_rope(model("qwen3_5_moe_text"), NoRope::Types(&["linear_attention"])),
    with_no_rope(model("olmo_hybrid"), NoRope::Types(&["linear_attention"])),
    with_layers(
        with_no_rope(model("mllama_text_model"), NoRope::Types(&["cross_attention"])),
        Pattern::Listed {
            key: "cross_attention_layers",
            local: "self_attention",
            global: "cross_attention",
            if_absent: "self_attention",
        },
    ),
    with_special(model("gemma3n"), GEMMA3),
    with_special(model("gemma3n_text"), GEMMA3),
    interleaved("glm_ocr_text", ROTATE_HALF_2),
    with_layers(
        with_no_rope(model("qwen3_next"), NoRope::Types(&["linear_attention"])),
        Pattern::Every {
            key: "full_attention_interval",
            default: 4,
            local: "linear_attention",
            global: "full_attention",
        },
    ),
];

/// Model types whose text attention applies RoPE with the common conventions (half-split
/// `rotate_half`, `head_dim` or `hidden_size / num_attention_heads`, `partial_rotary_factor`,
/// `rope_theta`, `rope_parameters` / `rope_scaling`, `layer_types` with a rope per type).
const COMMON: &[&str] = &[
    "apertus",
    "arcee",
    "aria_text",
    "bitnet",
    "chameleon",
    "cosmos3_edge_text",
    "csm",
    "cwm",
    "diffllama",
    "doge",
    "dots1",
    "emu3",
    "ernie4_5_vl_moe",
    "esmc",
    "eurobert",
    "evolla",
    "falcon_h1",
    "flex_olmo",
    "gemma",
    "gemma2",
    "gemma4",
    "gemma4_text",
    "gemma4_unified_text",
    "glm4_moe",
    "glm4v",
    "glm4v_moe",
    "glmasr_encoder",
    "gpt_oss",
    "granite",
    "granite_swa",
    "granitemoe",
    "granitemoe_swa",
    "granitemoehybrid",
    "granitemoeshared",
    "higgs_audio_v2",
    "hunyuan_vl",
    "hy_v3",
    "hy_v4",
    "hyperclovax",
    "idefics",
    "jais2",
    "jetmoe",
    "jina_embeddings_v3",
    "kyutai_speech_to_text",
    "laguna",
    "lasr_encoder",
    "llama",
    "mellum",
    "mimo_v2_flash",
    "minicpm3",
    "minimax_m2",
    "minimax_m3_vl_text",
    "ministral",
    "ministral3",
    "mistral",
    "mixtral",
    "moshi",
    "muse_glimmer_assistant",
    "muse_glimmer_text",
    "nemotron",
    "nemotron_h",
    "nomic_bert",
    "olmo",
    "olmo2",
    "olmo3",
    "olmoe",
    "paddleocr_vl_text",
    "persimmon",
    "phi",
    "phi3",
    "phi4_multimodal",
    "phimoe",
    "qwen2",
    "qwen2_5_omni_text",
    "qwen2_5_vl",
    "qwen2_5_vl_text",
    "qwen2_moe",
    "qwen2_vl",
    "qwen2_vl_text",
    "qwen3",
    "qwen3_moe",
    "qwen3_vl",
    "qwen3_vl_moe",
    "qwen3_vl_moe_text",
    "qwen3_vl_text",
    "recurrent_gemma",
    "seed_oss",
    "solar_open",
    "stablelm",
    "starcoder2",
    "step3p5",
    "timesfm2_5",
    "vaultgemma",
    "voxtral_realtime_encoder",
    "voxtral_realtime_text",
    "zamba2",
    "zaya",
];

/// Model types known to apply no rotary embedding in their text attention, and what they use.
const NO_ROPE: &[(&str, &str)] = &[
    ("bert", "absolute position embeddings"),
    ("roberta", "absolute position embeddings"),
    ("distilbert", "absolute position embeddings"),
    ("gpt2", "absolute position embeddings"),
    ("gpt_bigcode", "absolute position embeddings"),
    ("opt", "absolute position embeddings"),
    ("bloom", "ALiBi attention biases"),
    ("mpt", "ALiBi attention biases"),
    ("t5", "relative position biases"),
    (
        "jamba",
        "no position encoding in its attention layers (NoPE)",
    ),
];

/// What bfrope knows of a model type.
pub(crate) enum Known {
    /// Applies RoPE with these conventions.
    Rope(Model),
    /// Applies none; the reason.
    NoRope(&'static str),
    /// Not a model type bfrope knows.
    Unknown,
}

pub(crate) fn lookup(model_type: &str) -> Known {
    if let Some(m) = SPECIAL.iter().find(|m| m.name == model_type) {
        return Known::Rope(*m);
    }
    if let Some(&name) = COMMON.iter().find(|&&n| n == model_type) {
        return Known::Rope(model(name));
    }
    if let Some((_, why)) = NO_ROPE.iter().find(|(n, _)| *n == model_type) {
        return Known::NoRope(why);
    }
    Known::Unknown
}

/// The model types that apply RoPE (sorted): for messages and the support matrix.
pub fn rope_model_types() -> Vec<&'static str> {
    let mut v: Vec<&str> = SPECIAL
        .iter()
        .map(|m| m.name)
        .chain(COMMON.iter().copied())
        .collect();
    v.sort_unstable();
    v
}

/// transformers' class defaults for one model type (`model_defaults.json`).
pub(crate) struct Defaults<'a>(Option<&'a Map<String, Value>>);

fn table() -> &'static Map<String, Value> {
    static TABLE: OnceLock<Map<String, Value>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let v: Value = serde_json::from_str(include_str!("model_defaults.json"))
            .expect("model_defaults.json is valid JSON");
        v.get("models")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    })
}

impl Defaults<'static> {
    pub(crate) fn of(model_type: Option<&str>) -> Self {
        Defaults(
            model_type
                .and_then(|m| table().get(m))
                .and_then(Value::as_object),
        )
    }
}

impl<'a> Defaults<'a> {
    /// The default base of a layer type (or of the model).
    pub(crate) fn theta(&self, layer_type: Option<&str>) -> f64 {
        match self.0.and_then(|m| m.get("theta")) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(10000.0),
            Some(Value::Object(per)) => {
                let pick = |k: &str| per.get(k).and_then(Value::as_f64);
                let local = matches!(layer_type, Some(t) if t.contains("sliding"));
                layer_type
                    .and_then(pick)
                    .or_else(|| pick(if local { "local" } else { "global" }))
                    .unwrap_or(10000.0)
            }
            _ => 10000.0,
        }
    }

    /// The default `rope_parameters` (without `rope_theta`), flat or for one layer type.
    pub(crate) fn params(&self, layer_type: Option<&str>) -> Option<Map<String, Value>> {
        let p = self.0?.get("params")?.as_object()?;
        if p.contains_key("rope_type") || p.contains_key("type") {
            return Some(p.clone());
        }
        p.get(layer_type?)?.as_object().cloned()
    }

    /// The default `partial_rotary_factor`.
    pub(crate) fn partial_rotary_factor(&self) -> Option<f64> {
        self.0?.get("prf")?.as_f64()
    }

    /// The model type of a wrapper's text config.
    pub(crate) fn text_model_type(&self) -> Option<&'a str> {
        self.0?.get("text")?.as_str()
    }
}

/// The config.json name of `key` in a model type's class (its `attribute_map`: GPT-J's
/// `n_embd` for `hidden_size`, JetMoE's `kv_channels` for `head_dim`, ...).
pub(crate) fn alias(model_type: &str, key: &str) -> Option<&'static str> {
    table().get(model_type)?.get("alias")?.get(key)?.as_str()
}

/// The model type an `architectures` class name names (`LlamaForCausalLM` → `llama`,
/// `Qwen2VLForConditionalGeneration` → `qwen2_vl`), among the types bfrope knows.
pub(crate) fn from_architecture(arch: &str) -> Option<&'static str> {
    let mut stem = arch;
    for suffix in [
        "ForConditionalGeneration",
        "ForCausalLM",
        "ForSequenceClassification",
        "ForTokenClassification",
        "ForQuestionAnswering",
        "ForMaskedLM",
        "LMHeadModel",
        "Model",
    ] {
        if let Some(s) = stem.strip_suffix(suffix) {
            stem = s;
            break;
        }
    }
    let key = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let want = key(stem);
    rope_model_types()
        .into_iter()
        .chain(NO_ROPE.iter().map(|(n, _)| *n))
        .find(|n| key(n) == want)
}
