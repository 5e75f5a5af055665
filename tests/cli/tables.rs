//! `bfrope apply --hf-config / --inv-freq / --axes` and `bfrope table` (docs/CONTRACT.md §3, §7) on
//! real models: each `hf_models.safetensors` case's q, k and position ids written to a file,
//! its config.json written beside it, the CLI run on the CPU path; every output within 1 bf16
//! ulp of the exact oracle fed the model's own tables. Flags that do not apply are refused
//! (exit 2, one sentence naming the value, no output).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bfrope::table::{AngleMode, HfRope};
use common::oracle::{oracle_rotate_view, OracleView};
use common::Golden;
use safetensors::tensor::{Dtype, TensorView};

fn bfrope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bfrope"))
        .args(args)
        .output()
        .expect("the bfrope binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: exit {:?}: {}",
        o.status.code(),
        stderr(o)
    );
}

/// Writes `(name, dtype, shape, bytes)` tensors.
fn write_st(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn read_tensor(path: &Path, name: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    (t.shape().to_vec(), t.data().to_vec())
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn le16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The case's q, k, positions (and inverse frequencies) as an input file.
fn case_input(g: &Golden, case: &str, dir: &Path) -> PathBuf {
    let mut tensors = Vec::new();
    for t in ["q", "k"] {
        let x = g.bf16(&format!("{case}.{t}"));
        tensors.push((t, Dtype::BF16, x.shape, le16(&x.data)));
    }
    let p = g.i64(&format!("{case}.positions"));
    tensors.push((
        "positions",
        Dtype::I64,
        p.shape,
        p.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    if case == "moshi_ttt_audio" {
        let f = g.f32_bits(&format!("{case}.inv_freq"));
        tensors.push((
            "inv_freq",
            Dtype::F32,
            f.shape,
            f.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
    }
    let path = dir.join(format!("{case}.safetensors"));
    write_st(&path, &tensors);
    path
}

/// Mismatches and the largest bf16 ulp distance of the CLI's output tensor `t` against the
/// oracle fed the case's own tables.
fn against_oracle(g: &Golden, case: &str, t: &str, out: &Path) -> (usize, usize, u32) {
    let meta = g.case_meta(case);
    let rotary_dim = meta["rotary_dim"].as_u64().unwrap() as usize;
    let half_split = meta["rotation"] == "half";
    let x = g.bf16(&format!("{case}.{t}"));
    let d = &x.shape;
    let (dims, strides) = if meta["layout"] == "bhsd" {
        (
            [d[0], d[2], d[1], d[3]],
            [d[1] * d[2] * d[3], d[3], d[2] * d[3]],
        )
    } else {
        (
            [d[0], d[1], d[2], d[3]],
            [d[1] * d[2] * d[3], d[2] * d[3], d[3]],
        )
    };
    let cos = g.f32_bits(&format!("{case}.cos"));
    let sin = g.f32_bits(&format!("{case}.sin"));
    let w = cos.shape[2];
    let rows: Vec<usize> = (0..dims[0] * dims[1]).collect();
    let want = oracle_rotate_view(
        &x.data,
        &OracleView {
            dims,
            strides,
            offset: 0,
            half_split,
            rotary_dim,
            rows: &rows,
            inverse: false,
        },
        |r, i| (cos.data[r * w + i], sin.data[r * w + i]),
    );
    let (_, got) = read_tensor(out, t);
    let got = u16s(&got);
    let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    let max = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| common::ulp_distance(a, b))
        .max()
        .unwrap();
    (differ, want.len(), max)
}

#[test]
fn apply_with_each_real_models_config_json_matches_its_own_tables() {
    let g = Golden::named("hf_models.safetensors");
    let dir = tempfile::tempdir().unwrap();
    for case in g.cases() {
        let meta = g.case_meta(&case);
        let input = case_input(&g, &case, dir.path());
        let out = dir.path().join(format!("{case}.out.safetensors"));
        let o = out.to_str().unwrap();
        let mut args: Vec<String> = vec![
            "apply".into(),
            input.to_str().unwrap().into(),
            "-o".into(),
            o.into(),
        ];
        args.extend(
            [
                "--backend",
                "cpu",
                "--angles",
                "torch",
                "--positions",
                "positions",
                "--layout",
            ]
            .map(String::from),
        );
        args.push(meta["layout"].as_str().unwrap().into());
        match meta["kind"].as_str().unwrap() {
            "hf" => {
                let cfg = dir.path().join(format!("{case}.config.json"));
                std::fs::write(&cfg, serde_json::to_string_pretty(&meta["config"]).unwrap())
                    .unwrap();
                args.extend(["--hf-config".into(), cfg.to_str().unwrap().into()]);
                // GLM's shape here carries no model_type: its pairing is given explicitly;
                // DeepSeek's comes from the config's rope_interleave, the rest default to half.
                if case.starts_with("glm4") {
                    args.extend(["--rotation", "interleaved"].map(String::from));
                }
            }
            _ if case == "moshi_ttt_audio" => {
                args.extend(
                    ["--inv-freq", "inv_freq", "--rotation", "interleaved"].map(String::from),
                );
            }
            _ => {
                args.extend(
                    [
                        "--axes",
                        meta["axes"].as_str().unwrap(),
                        "--rotation",
                        "interleaved",
                    ]
                    .map(String::from),
                );
            }
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = bfrope(&argv);
        assert_ok(&ran, &case);
        let mut report = Vec::new();
        for t in ["q", "k"] {
            let (differ, n, max) = against_oracle(&g, &case, t, &out);
            assert!(
                max <= 1,
                "{case}.{t}: {differ}/{n} outputs differ, up to {max} ulp"
            );
            report.push(format!("{t} {differ}/{n}"));
        }
        eprintln!(
            "cli[{case}]: vs oracle fed the model's tables: {} ({})",
            report.join(", "),
            stderr(&ran).trim()
        );
    }
}

/// Meta's published config.json of Llama-3.1-8B-Instruct, whole (keys bfrope does not use
/// are ignored).
const LLAMA31_8B: &str = r#"{
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256
}"#;

#[test]
fn table_writes_what_the_library_builds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, LLAMA31_8B).unwrap();
    let out = dir.path().join("table.safetensors");
    for angles in ["torch", "exact"] {
        let ran = bfrope(&[
            "table",
            "--hf-config",
            cfg.to_str().unwrap(),
            "--angles",
            angles,
            "--positions",
            "8190..8200",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_ok(&ran, "table");
        let mut hf = HfRope::from_config_json(LLAMA31_8B).unwrap();
        hf.recipe.angles = angles.parse::<AngleMode>().unwrap();
        let want = hf.recipe.table_rows(8190, 10).unwrap();
        let (cshape, cos) = read_tensor(&out, "cos");
        let (_, sin) = read_tensor(&out, "sin");
        let (pshape, pos) = read_tensor(&out, "positions");
        assert_eq!(cshape, vec![10, 64]);
        assert_eq!(pshape, vec![10]);
        assert_eq!(pos[..8], 8190i64.to_le_bytes());
        let got: Vec<[f32; 2]> = f32s(&cos)
            .into_iter()
            .zip(f32s(&sin))
            .map(|(c, s)| [c, s])
            .collect();
        assert!(got
            .iter()
            .zip(want.cos_sin())
            .all(|(a, b)| a[0].to_bits() == b[0].to_bits() && a[1].to_bits() == b[1].to_bits()));
        assert!(stderr(&ran).contains("llama3"), "{}", stderr(&ran));
    }
    // Multi-axis: Qwen2-VL's positions from a file, one row per token.
    let g = Golden::named("hf_models.safetensors");
    let input = case_input(&g, "qwen2vl_mrope", dir.path());
    let qcfg = dir.path().join("qwen2vl.json");
    std::fs::write(&qcfg, g.case_meta("qwen2vl_mrope")["config"].to_string()).unwrap();
    let from = format!("{}:positions", input.display());
    let ran = bfrope(&[
        "table",
        "--hf-config",
        qcfg.to_str().unwrap(),
        "--angles",
        "torch",
        "--positions-from",
        &from,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ok(&ran, "table mrope");
    let (cshape, cos) = read_tensor(&out, "cos");
    assert_eq!(cshape, vec![30, 64]);
    let want = g.f32_bits("qwen2vl_mrope.cos");
    let cos = f32s(&cos);
    for t in 0..30 {
        for i in 0..64 {
            let (a, b) = (cos[t * 64 + i], f32::from_bits(want.data[t * 128 + i]));
            assert!(
                (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1,
                "token {t} frequency {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn flags_that_do_not_apply_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = Golden::named("hf_models.safetensors");
    let input = case_input(&g, "moshi_ttt_audio", dir.path());
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, LLAMA31_8B).unwrap();
    let bad_cfg = dir.path().join("bad.json");
    std::fs::write(
        &bad_cfg,
        r#"{"head_dim": 128, "rope_scaling": {"rope_type": "su-perfancy", "factor": 2}}"#,
    )
    .unwrap();
    let d64 = dir.path().join("d64.json");
    std::fs::write(&d64, r#"{"head_dim": 64, "rope_theta": 10000}"#).unwrap();
    let d = d64.to_str().unwrap();
    let out = dir.path().join("out.safetensors");
    let (i, o, c, b) = (
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        cfg.to_str().unwrap(),
        bad_cfg.to_str().unwrap(),
    );
    let from = format!("{i}:positions");
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["apply", i, "-o", o, "--inv-freq", "inv_freq", "--base", "500000"], "--base 500000 does not apply"),
        (vec!["apply", i, "-o", o, "--hf-config", c, "--cos", "inv_freq", "--sin", "inv_freq"], "--hf-config"),
        (vec!["apply", i, "-o", o, "--axes", "axial:8,12,12"], "--positions NAME"),
        (vec!["apply", i, "-o", o, "--axes", "spiral:1,2"], "spiral:1,2"),
        (vec!["apply", i, "-o", o, "--hf-config", b], "su-perfancy"),
        (vec!["apply", i, "-o", o, "--hf-config", d], "head_dim 64"),
        (vec!["apply", i, "-o", o, "--inv-freq", "positions"], "F32 [N/2]"),
        (vec!["apply", i, "-o", o, "--axes", "mrope:16,24,24", "--positions", "positions"], "[3, 40]"),
        (vec!["table", "--base", "10000", "--positions", "0..4", "-o", o], "--rotary-dim"),
        (vec!["table", "--rotary-dim", "8", "--positions", "4..4", "-o", o], "--positions \"4..4\""),
        (vec!["table", "--rotary-dim", "8", "--axes", "axial:2,2", "--positions", "0..4", "-o", o], "--positions-from"),
        (vec!["table", "--rotary-dim", "8", "--positions", "0..4", "--positions-from", &from, "-o", o], "cannot be combined"),
        (vec!["table", "--rotary-dim", "8", "--positions-from", &from, "-o", i], "is --positions-from"),
    ];
    for (args, needle) in cases {
        let ran = bfrope(&args);
        let err = stderr(&ran);
        assert_eq!(ran.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} does not name {needle:?}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one sentence: {err}"
        );
        assert!(!out.exists(), "{args:?} left an output");
    }
}
