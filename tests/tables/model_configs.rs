//! What the config.json reader decides for the models whose conventions are not the common
//! ones: pairing by model type, legacy keys, wrappers, layers that differ or apply no RoPE,
//! and the refusals. The published config.json files are those of `tests/data/models/`
//! (`tests/tables/models.rs` checks each against the model's own rotary code); ChatGLM, remote code
//! that transformers does not ship, is checked here against its published modeling file's
//! rules.
#![cfg(not(target_arch = "wasm32"))]

use bfrope::table::{AngleMode, HfRope, Layer, Variant};
use bfrope::Pairing;
use serde_json::Value;

fn card(name: &str) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/models/cases.json"
    ))
    .unwrap();
    let cases = HfRope::parse_json(&text).unwrap();
    cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("card:{name}"))
        .unwrap_or_else(|| panic!("no card {name}"))["config"]
        .clone()
}

fn read(config: &Value, layer: Option<Layer>) -> bfrope::Result<HfRope> {
    HfRope::from_config_for(config, layer.as_ref())
}

fn refused(config: &Value, layer: Option<Layer>, needle: &str) {
    match read(config, layer) {
        Ok(h) => panic!("accepted: {}", h.summary()),
        Err(e) => {
            let m = e.to_string();
            assert!(matches!(e, bfrope::Error::Parameter(_)), "{m}");
            assert!(m.contains(needle), "{m:?} does not say {needle:?}");
        }
    }
}

#[test]
fn pairing_follows_the_model_type_where_the_config_is_silent() {
    let v3 = card("deepseek-ai/DeepSeek-V3");
    assert!(
        v3.get("rope_interleave").is_none(),
        "the published config has no rope_interleave"
    );
    let h = read(&v3, None).unwrap();
    assert_eq!(h.pairing, Pairing::Interleaved);
    assert_eq!((h.head_dim, h.recipe.rotary_dim), (64, 64));
    assert!(
        h.explanation.pairing_reason.contains("defaults it to true"),
        "{}",
        h.explanation.pairing_reason
    );
    // apply_rotary_pos_emb_interleave writes the pairs back half-split; DeepSeek-V2's complex
    // rotation keeps them interleaved.
    let deinterleaved = |h: &HfRope| {
        h.explanation
            .notes
            .iter()
            .any(|n| n.contains("de-interleaved"))
    };
    assert!(deinterleaved(&h));
    let mut v2 = v3.clone();
    v2["model_type"] = Value::from("deepseek_v2");
    let h2 = read(&v2, None).unwrap();
    assert_eq!(h2.pairing, Pairing::Interleaved);
    assert!(!deinterleaved(&h2), "{:?}", h2.explanation.notes);
    // Without model_type, the architectures entry names it.
    let mut anonymous = v3.clone();
    anonymous.as_object_mut().unwrap().remove("model_type");
    let a = read(&anonymous, None).unwrap();
    assert_eq!(
        a.explanation.model_type.as_deref(),
        Some("deepseek_v3"),
        "{:?}",
        v3["architectures"]
    );
    assert_eq!(a.pairing, Pairing::Interleaved);
    let mut off = v3.clone();
    off["rope_interleave"] = Value::Bool(false);
    assert_eq!(read(&off, None).unwrap().pairing, Pairing::HalfSplit);
    for (name, pairing) in [
        ("CohereForAI/c4ai-command-r-v01", Pairing::Interleaved),
        ("baidu/ERNIE-4.5-0.3B-PT", Pairing::Interleaved),
        ("kyutai/helium-1-preview-2b", Pairing::Interleaved),
        ("THUDM/glm-4-9b-chat-hf", Pairing::Interleaved),
        ("EleutherAI/gpt-j-6b", Pairing::Interleaved),
        ("meta-llama/Llama-3.1-8B-Instruct", Pairing::HalfSplit),
        ("Qwen/Qwen2.5-7B-Instruct", Pairing::HalfSplit),
    ] {
        assert_eq!(read(&card(name), None).unwrap().pairing, pairing, "{name}");
    }
}

#[test]
fn legacy_keys_of_real_checkpoints() {
    // GPT-J: rotary_dim of n_embd / n_head.
    let h = read(&card("EleutherAI/gpt-j-6b"), None).unwrap();
    assert_eq!((h.head_dim, h.recipe.rotary_dim), (256, 64));
    // JetMoE: kv_channels is the head dim.
    let h = read(&card("jetmoe/jetmoe-8b"), None).unwrap();
    assert_eq!(h.head_dim, 128);
    // Falcon: n_head.
    let h = read(&card("tiiuae/falcon-7b"), None).unwrap();
    assert_eq!(h.head_dim, 64);
    // Moonshine: 32 of 36 dims.
    let h = read(&card("UsefulSensors/moonshine-tiny"), None).unwrap();
    assert_eq!((h.head_dim, h.recipe.rotary_dim), (36, 32));
}

#[test]
fn chatglm_follows_its_published_modeling_file() {
    // modeling_chatglm.py: RotaryEmbedding(kv_channels // 2, rope_ratio), base 10000·rope_ratio,
    // the first kv_channels/2 dims rotated in (2i, 2i+1) pairs.
    let glm3 = card("THUDM/chatglm3-6b");
    let h = read(&glm3, None).unwrap();
    assert_eq!((h.head_dim, h.recipe.rotary_dim), (128, 64));
    assert_eq!(h.pairing, Pairing::Interleaved);
    assert_eq!(h.recipe.base, 10000.0);
    let mut glm4 = glm3.clone();
    glm4["rope_ratio"] = Value::from(500);
    assert_eq!(read(&glm4, None).unwrap().recipe.base, 5_000_000.0);
    glm4["original_rope"] = Value::Bool(false);
    refused(&glm4, None, "original_rope false");
}

#[test]
fn gemma3_layers_take_their_own_base_and_scaling() {
    let g = card("google/gemma-3-27b-it");
    refused(
        &g,
        None,
        "--layer-type sliding_attention|full_attention or --layer N (0-61)",
    );
    let local = read(&g, Some(Layer::Type("sliding_attention".into()))).unwrap();
    assert_eq!(
        (local.recipe.base, local.recipe.variant.clone()),
        (10000.0, Variant::Default)
    );
    let global = read(&g, Some(Layer::Type("full_attention".into()))).unwrap();
    assert_eq!(global.recipe.base, 1_000_000.0);
    assert_eq!(global.recipe.variant, Variant::Linear { factor: 8.0 });
    // Every sixth layer is global (sliding_window_pattern 6).
    assert_eq!(
        read(&g, Some(Layer::Index(5))).unwrap().recipe,
        global.recipe
    );
    assert_eq!(
        read(&g, Some(Layer::Index(4))).unwrap().recipe,
        local.recipe
    );
    refused(&g, Some(Layer::Index(62)), "--layer 62 is out of range");
    refused(&g, Some(Layer::Type("global".into())), "not a layer type");
    // The transformers 5 per-layer form reads the same.
    let mut v5 = g.clone();
    let t = v5["text_config"].as_object_mut().unwrap();
    for k in ["rope_scaling", "rope_theta", "rope_local_base_freq"] {
        t.remove(k);
    }
    t.insert(
        "rope_parameters".into(),
        serde_json::json!({
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0}
        }),
    );
    assert_eq!(
        read(&v5, Some(Layer::Index(5))).unwrap().recipe,
        global.recipe
    );
    assert_eq!(
        read(&v5, Some(Layer::Index(0))).unwrap().recipe,
        local.recipe
    );
}

#[test]
fn layers_without_rope_are_refused_never_rotated() {
    let scout = card("meta-llama/Llama-4-Scout-17B-16E-Instruct");
    refused(&scout, None, "rotates its layers differently");
    refused(&scout, Some(Layer::Index(3)), "no_rope_layers");
    let h = read(&scout, Some(Layer::Index(0))).unwrap();
    assert_eq!(h.pairing, Pairing::Interleaved);
    assert!(matches!(
        h.recipe.variant,
        Variant::Llama3 { low_freq_factor, high_freq_factor, .. } if low_freq_factor == high_freq_factor
    ));
    let r7b = card("CohereForAI/c4ai-command-r7b-12-2024");
    refused(
        &r7b,
        Some(Layer::Index(3)),
        "no rotary embedding on full_attention layers",
    );
    refused(
        &r7b,
        Some(Layer::Type("full_attention".into())),
        "there is nothing to rotate",
    );
    assert!(read(&r7b, Some(Layer::Type("sliding_attention".into()))).is_ok());
    let next = card("Qwen/Qwen3-Next-80B-A3B-Instruct");
    refused(&next, Some(Layer::Index(0)), "linear_attention");
    assert_eq!(
        read(&next, Some(Layer::Index(3)))
            .unwrap()
            .recipe
            .rotary_dim,
        64
    );
    // LFM2: attention (and RoPE) only in the layers full_attn_idxs lists, short convolutions
    // elsewhere; without the key every layer is attention (the class's default).
    let lfm2 = serde_json::json!({
        "model_type": "lfm2", "hidden_size": 2048, "num_attention_heads": 32,
        "num_hidden_layers": 16, "full_attn_idxs": [2, 5, 8, 10, 12, 14], "rope_theta": 1000000.0
    });
    refused(&lfm2, None, "conv");
    refused(&lfm2, Some(Layer::Index(0)), "conv");
    assert_eq!(read(&lfm2, Some(Layer::Index(2))).unwrap().head_dim, 64);
    let mut all = lfm2.clone();
    all.as_object_mut().unwrap().remove("full_attn_idxs");
    assert_eq!(read(&all, None).unwrap().head_dim, 64);
    let mut moe = lfm2.clone();
    moe["model_type"] = "lfm2_moe".into();
    moe.as_object_mut().unwrap().remove("full_attn_idxs");
    moe["layer_types"] = serde_json::json!(["conv", "conv", "full_attention", "conv"]);
    moe["num_hidden_layers"] = 4.into();
    refused(&moe, Some(Layer::Index(1)), "conv");
    assert!(read(&moe, Some(Layer::Index(2))).is_ok());
}

#[test]
fn models_without_rope_are_refused() {
    for (name, needle) in [
        ("bert-base-uncased", "absolute position embeddings"),
        ("gpt2", "absolute position embeddings"),
        ("bigscience/bloom-560m", "ALiBi"),
        ("mosaicml/mpt-7b", "ALiBi"),
        ("tiiuae/falcon-rw-1b", "ALiBi"),
        ("facebook/opt-125m", "absolute position embeddings"),
    ] {
        refused(&card(name), None, needle);
    }
    refused(
        &card("databricks/dbrx-instruct"),
        None,
        "attn_config.rope_theta 500000",
    );
}

#[test]
fn proportional_rope_rotates_the_first_frequencies_of_the_whole_head() {
    // Gemma 4's global layers: partial_rotary_factor 0.25 of head_dim 512.
    let config = serde_json::json!({
        "model_type": "gemma4_text", "hidden_size": 2048, "num_attention_heads": 8, "head_dim": 256,
        "global_head_dim": 512, "num_hidden_layers": 6,
        "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
                        "sliding_attention", "sliding_attention", "full_attention"],
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}
        }
    });
    let h = read(&config, Some(Layer::Type("full_attention".into()))).unwrap();
    assert_eq!((h.head_dim, h.recipe.rotary_dim), (512, 512));
    let (f, _) = h.recipe.frequencies(0).unwrap();
    assert_eq!(f.inv_freq.len(), 256);
    assert!(f.inv_freq[..64].iter().all(|&x| x > 0.0));
    assert!(f.inv_freq[64..].iter().all(|&x| x == 0.0));
    // Exponent 2i/head_dim, not 2i/rotated.
    assert_eq!(f.inv_freq[1], libm::pow(1e6, -2.0 / 512.0));
    let mut torch = h.recipe.clone();
    torch.angles = AngleMode::Torch;
    let t = torch.table_rows(1000, 1).unwrap();
    assert_eq!(
        t.get(0, 200),
        [1.0, 0.0],
        "a zero frequency leaves its pair in place"
    );
    let local = read(&config, Some(Layer::Index(0))).unwrap();
    assert_eq!((local.head_dim, local.recipe.rotary_dim), (256, 256));
}

#[test]
fn explanation_names_keys_read_defaults_and_unknown_keys() {
    let mut g = card("google/gemma-3-1b-it");
    g["rope_flavour"] = Value::from("spicy");
    let h = read(&g, Some(Layer::Type("sliding_attention".into()))).unwrap();
    let e = &h.explanation;
    assert_eq!(e.model_type.as_deref(), Some("gemma3_text"));
    assert!(
        e.used.iter().any(|(k, _)| k == "rope_local_base_freq"),
        "{:?}",
        e.used
    );
    assert!(
        e.warnings.iter().any(|w| w.contains("rope_flavour")),
        "{:?}",
        e.warnings
    );
    assert!(
        e.layers
            .iter()
            .any(|l| l.starts_with("full_attention layers 5, 11, 17, 23")),
        "{:?}",
        e.layers
    );
    // A config with NaN/Infinity as Python writes them parses; a key bfrope reads refuses it.
    let text = r#"{"model_type": "llama", "head_dim": 64, "time_step_limit": [0.0, Infinity], "rope_theta": NaN}"#;
    let e = HfRope::from_config_json(text).unwrap_err().to_string();
    assert!(e.contains("rope_theta \"NaN\""), "{e}");
}
