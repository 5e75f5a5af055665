//! The native side of `tests/wasm.rs`'s config-recipe test: the table that `tableFor` builds
//! in the browser from Llama-3.1's config.json hashes, natively, to the same FNV-1a value
//! (the constants below are repeated there), so the page's tables are the native bits.

use bfrope::{AngleMode, HfRope};

/// Llama-3.1-8B's rope settings, as its config.json gives them (transformers 4.x form).
const LLAMA31_CONFIG: &str = r#"{"hidden_size": 4096, "num_attention_heads": 32,
  "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
  "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
  "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#;

const RECIPE_POSITIONS: [u64; 8] = [0, 1, 2047, 8191, 8192, 70000, 70001, 131071];
const LLAMA31_TABLE_FNV_EXACT: u64 = 0x96c9_089d_6ce7_254f;
const LLAMA31_TABLE_FNV_TORCH: u64 = 0x6235_cc50_e2a8_09e8;

/// FNV-1a over the little-endian bytes of the cos values, then the sin values.
fn table_fnv(cos: &[f32], sin: &[f32]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for v in cos.iter().chain(sin) {
        for byte in v.to_bits().to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

#[test]
fn llama31_recipe_table_hash_is_the_browsers() {
    let hf = HfRope::from_config_json(LLAMA31_CONFIG).expect("config");
    for (mode, want) in [
        (AngleMode::Exact, LLAMA31_TABLE_FNV_EXACT),
        (AngleMode::Torch, LLAMA31_TABLE_FNV_TORCH),
    ] {
        let mut r = hf.recipe.clone();
        r.angles = mode;
        let t = r.table_per_token(&RECIPE_POSITIONS).expect("table");
        let (cos, sin): (Vec<f32>, Vec<f32>) = t.cos_sin().iter().map(|&[c, s]| (c, s)).unzip();
        // Not a constant table: the slow frequencies differ between 8191 and 131071.
        assert_ne!(cos[3 * 64 + 63].to_bits(), cos[7 * 64 + 63].to_bits());
        let hash = table_fnv(&cos, &sin);
        println!("{} table fnv {hash:#018x}", mode.name());
        assert_eq!(hash, want, "{} table hash", mode.name());
    }
}
