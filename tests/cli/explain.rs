//! `bfrope explain`, `--layer-type` / `--layer`, and the one-line summary `apply` and `table`
//! print for a `--hf-config`: run as a user runs them, on the published config.json files of
//! `tests/data/models/`.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::{Path, PathBuf};

use bfrope::table::{AngleMode, HfRope, Layer};
use bfrope::{cpu, Direction, Positions, Precision, RopeCall, Rotation, TensorView};
use common::cli::{bfrope, bits, le16, stderr, write_any};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

/// Writes the published config.json of `name` to `dir`.
fn card(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/models/cases.json"
    ))
    .unwrap();
    let cases = HfRope::parse_json(&text).unwrap();
    let config = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("card:{name}"))
        .unwrap()["config"]
        .clone();
    let path = dir.join(format!("{}.json", name.replace('/', "_")));
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

fn usage_error(o: &std::process::Output, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains(needle), "{e:?} does not say {needle:?}");
    assert_eq!(e.trim_end().lines().count(), 1, "one sentence: {e}");
    assert!(o.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn explain_says_what_was_read_and_decided() {
    let dir = tempfile::tempdir().unwrap();
    let v3 = card(dir.path(), "deepseek-ai/DeepSeek-V3");
    let o = bfrope(&["explain", "--hf-config", v3.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "model type              deepseek_v3",
        "rotary dim              64 (the whole head)",
        "interleaved: rope_interleave is absent and model type deepseek_v3 defaults it to true",
        "yarn (factor 40, original_max_position_embeddings 4096",
        "rope_scaling.factor = 40",
        "rope_interleave = true (not in the file)",
        "largest position        163839",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    let o = bfrope(&["explain", "--hf-config", v3.to_str().unwrap(), "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["pairing"], "interleaved");
    assert_eq!(j["rotary_dim"], 64);
    assert_eq!(j["rope_type"], "yarn");
    assert_eq!(j["defaults"]["rope_interleave"], "true");
}

#[test]
fn layers_that_differ_need_a_choice() {
    let dir = tempfile::tempdir().unwrap();
    let g = card(dir.path(), "google/gemma-3-27b-it");
    let g = g.to_str().unwrap();
    usage_error(
        &bfrope(&["explain", "--hf-config", g]),
        "say which layer with --layer-type sliding_attention|full_attention or --layer N (0-61)",
    );
    let o = bfrope(&[
        "explain",
        "--hf-config",
        g,
        "--layer-type",
        "full_attention",
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("linear (factor 8)"), "{text}");
    assert!(text.contains("full_attention layers 5, 11, 17"), "{text}");
    usage_error(
        &bfrope(&["explain", "--hf-config", g, "--layer-type", "global"]),
        "--layer-type global is not a layer type",
    );
    usage_error(
        &bfrope(&["explain", "--hf-config", g, "--layer", "99"]),
        "--layer 99 is out of range",
    );
    let o = bfrope(&[
        "explain",
        "--hf-config",
        g,
        "--layer",
        "1",
        "--layer-type",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn no_rope_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let scout = card(dir.path(), "meta-llama/Llama-4-Scout-17B-16E-Instruct");
    let bert = card(dir.path(), "bert-base-uncased");
    let input = dir.path().join("q.safetensors");
    write_any(
        &input,
        &[("q", Dtype::BF16, vec![1, 2, 1, 128], le16(&[0x3F80; 256]))],
    );
    let out = dir.path().join("out.safetensors");
    let apply = |cfg: &Path, extra: &[&str]| {
        let mut args = vec![
            "apply",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--hf-config",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(extra);
        bfrope(&args)
    };
    usage_error(&apply(&scout, &[]), "--layer N (0-47)");
    usage_error(
        &apply(&scout, &["--layer", "3"]),
        "layer 3 of model type \"llama4_text\" applies no rotary embedding",
    );
    usage_error(
        &apply(&bert, &[]),
        "model type \"bert\" uses absolute position embeddings",
    );
    assert!(!out.exists(), "no output for a refused call");
    let o = bfrope(&[
        "table",
        "--layer",
        "2",
        "--rotary-dim",
        "8",
        "--positions",
        "0..2",
        "-o",
        out.to_str().unwrap(),
    ]);
    usage_error(&o, "--layer 2 picks a layer of a --hf-config model");
    assert!(!out.exists());
}

#[test]
fn apply_rotates_as_the_model_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let scout = card(dir.path(), "meta-llama/Llama-4-Scout-17B-16E-Instruct");
    let input = dir.path().join("q.safetensors");
    let x: Vec<u16> = (0..2 * 3 * 128)
        .map(|i| 0x3C00 + (i as u16 * 37) % 0x0800)
        .collect();
    write_any(&input, &[("q", Dtype::BF16, vec![1, 3, 2, 128], le16(&x))]);
    let out = dir.path().join("out.safetensors");
    let o = bfrope(&[
        "apply",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--hf-config",
        scout.to_str().unwrap(),
        "--layer",
        "0",
        "--position-offset",
        "9000",
        "--backend",
        "cpu",
    ]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("model type llama4_text, layer 0, head_dim 128, rotary_dim 128, interleaved pairs, llama3 base 500000"),
        "{e}"
    );
    // The library, fed the same config and layer, gives the same bits.
    let hf = HfRope::from_config_json_for(
        &std::fs::read_to_string(&scout).unwrap(),
        Some(&Layer::Index(0)),
    )
    .unwrap();
    assert_eq!(hf.recipe.angles, AngleMode::Exact);
    let positions = Positions::Offset(9000);
    let (table, positions) = positions.built_table(&hf.recipe, 1, 3).unwrap();
    let call = RopeCall {
        view: TensorView::bshd(1, 3, 2, 128),
        rotation: Rotation {
            pairing: hf.pairing,
            rotary_dim: 128,
            direction: Direction::Forward,
            precision: Precision::Exact,
            dtype: bfrope::Dtype::Bf16,
        },
        positions: &positions,
        table: &table,
    };
    let want = cpu::apply(&call, &x).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(bits(st.tensor("q").unwrap().data()), want);
}
