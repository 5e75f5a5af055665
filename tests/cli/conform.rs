//! `bfrope conform` on f16 and f32 as a user runs it, on the machine's adapter (Mesa
//! lavapipe here): the quick f16 sweep passes through every f16 kernel and the f32 cases
//! through the general kernel, 0 mismatches against the CPU path; fast mode's f32 bits are
//! caught; slices of `--full --dtype f16` (exhaustive) and `--full --dtype f32` (seeded
//! random) pass; wrong dtype/flag combinations are refused with exit 2 in one sentence.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use common::cli::{bfrope as run, gpu_available, stderr};
use std::process::Output;

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON document")
}

fn assert_one_sentence_exit_2(o: &Output, names: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "exit 2 expected: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for n in names {
        assert!(err.contains(n), "the message names {n}: {err}");
    }
}

/// The checks of the first adapter of a `conform --json` document.
fn checks(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["adapters"][0]["checks"]
        .as_array()
        .expect("checks")
        .clone()
}

#[test]
fn conform_f16_sweeps_every_f16_kernel() {
    if !gpu_available("conform --dtype f16") {
        assert_eq!(run(&["conform", "--dtype", "f16"]).status.code(), Some(1));
        return;
    }
    let o = run(&["conform", "--dtype", "f16", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["pass"], true);
    assert_eq!(v["dtypes"], serde_json::json!(["f16"]));
    let checks = checks(&v);
    // The sweep through five kernels and the special-table case, forward and inverse.
    assert_eq!(checks.len(), 12, "{checks:?}");
    for c in &checks {
        assert_eq!(c["dtype"], "f16", "{c}");
        assert_eq!(c["mismatches"], 0, "{c}");
        assert!(c["error"].is_null(), "{c}");
    }
    let sweep = |kernel: &str| -> Vec<&serde_json::Value> {
        checks
            .iter()
            .filter(|c| c["kernel"] == kernel && c["case"].as_str().unwrap().starts_with("sweep"))
            .collect()
    };
    // vec4: every x0 × 14 edge x1 × 6 angles; the others: × 2 angles (halves: one more
    // element, the view starts at offset 1; general: two more, at offset 2 so that no
    // contiguous kernel takes it).
    for (kernel, elements) in [
        ("vec4", 65536 * 14 * 2 * 6),
        ("vec4-half", 65536 * 14 * 2 * 2),
        ("scalar", 65536 * 14 * 2 * 2),
        ("general", 65536 * 14 * 2 * 2 + 2),
        ("halves", 65536 * 14 * 2 * 2 + 1),
    ] {
        let s = sweep(kernel);
        assert_eq!(s.len(), 2, "{kernel}: forward and inverse");
        for c in s {
            assert_eq!(c["checked"], elements, "{kernel}: {c}");
        }
    }
}

#[test]
fn conform_f32_cases_pass_and_fast_mode_is_caught() {
    if !gpu_available("conform --dtype f32") {
        return;
    }
    let o = run(&["conform", "--dtype", "f32", "--seed", "5", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["pass"], true);
    let all = checks(&v);
    let cases: std::collections::BTreeSet<&str> =
        all.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(
        cases.into_iter().collect::<Vec<_>>(),
        [
            "near-cancellation (seed 5)",
            "normal data with specials (seed 5)",
            "random bit patterns (seed 5)",
            "special values x special tables",
            "subnormal data and tables (seed 5)",
        ]
    );
    for c in &all {
        assert_eq!(c["dtype"], "f32", "{c}");
        assert_eq!(
            c["kernel"], "general",
            "f32 has the general kernel only: {c}"
        );
        assert!(c["checked"].as_u64().unwrap() >= 100_000, "{c}");
        assert_eq!(c["mismatches"], 0, "{c}");
    }

    // Plain f32 math on f32 data: NaN payloads, double rounding, cancellation. The same
    // comparison must see it and fail.
    let o = run(&["conform", "--dtype", "f32", "--precision", "fast", "--json"]);
    let v = json(&o);
    let mismatches: u64 = checks(&v)
        .iter()
        .map(|c| c["mismatches"].as_u64().unwrap())
        .sum();
    assert_eq!(o.status.code(), Some(if mismatches > 0 { 1 } else { 0 }));
    assert_eq!(v["pass"], mismatches == 0);
    if v["adapters"][0]["adapter"]["name"]
        .as_str()
        .is_some_and(|n| n.contains("llvmpipe"))
    {
        assert!(
            mismatches > 1000,
            "lavapipe's fast f32 differs from exact: {mismatches}"
        );
        let first = checks(&v)
            .iter()
            .find_map(|c| {
                c["first_mismatches"]
                    .as_array()
                    .and_then(|m| m.first().cloned())
            })
            .expect("a mismatch is named");
        assert!(first.as_str().unwrap().contains("expected (0x"), "{first}");
    }
}

#[test]
fn conform_full_f16_slice_is_exhaustive_on_every_kernel() {
    if !gpu_available("conform --full --dtype f16") {
        return;
    }
    // x0 = 65504 (the largest finite f16) and +inf, every x1: overflow, inf, NaN.
    let o = run(&[
        "conform",
        "--full",
        "--dtype",
        "f16",
        "--full-slice",
        "0x7BFF..0x7C01",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("s left"), "progress: {}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["pass"], true);
    assert_eq!(v["dtype"], "f16");
    assert_eq!(v["exhaustive"], true);
    assert_eq!(v["x0_slice"], serde_json::json!([0x7BFF, 0x7C01]));
    assert_eq!(
        v["kernels"],
        serde_json::json!(["vec4", "vec4-half", "general", "halves"])
    );
    let a = &v["adapters"][0];
    assert_eq!(a["pairs_checked"], 2 * 65536 * 5 * 2 * 4);
    assert_eq!(a["mismatches"], 0);
    for c in a["checks"].as_array().unwrap() {
        assert_eq!(c["pairs_checked"], 2 * 65536, "{c}");
        assert_eq!(c["mismatches"], 0, "{c}");
    }
}

#[test]
fn conform_full_f32_is_a_seeded_random_sweep() {
    if !gpu_available("conform --full --dtype f32") {
        return;
    }
    let o = run(&[
        "conform",
        "--full",
        "--dtype",
        "f32",
        "--full-pairs",
        "131072",
        "--seed",
        "7",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["pass"], true);
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["exhaustive"], false);
    assert_eq!(v["seed"], 7);
    assert_eq!(v["token_slice"], serde_json::json!([0, 2]));
    assert_eq!(v["kernels"], serde_json::json!(["general"]));
    let a = &v["adapters"][0];
    assert_eq!(a["pairs_checked"], 131072 * 5 * 2);
    assert_eq!(a["mismatches"], 0);
    // Fast mode over the same pairs differs (NaN payloads at least) and fails.
    let o = run(&[
        "conform",
        "--full",
        "--dtype",
        "f32",
        "--full-pairs",
        "65536",
        "--precision",
        "fast",
        "--json",
    ]);
    let v = json(&o);
    let m = v["adapters"][0]["mismatches"].as_u64().unwrap();
    assert_eq!(o.status.code(), Some(if m > 0 { 1 } else { 0 }));
    assert!(
        m > 0,
        "uniform random f32 bit patterns hold NaN payloads: {v}"
    );
}

#[test]
fn conform_refuses_wrong_dtype_and_flag_combinations() {
    assert_one_sentence_exit_2(&run(&["conform", "--dtype", "f64"]), &["f64"]);
    assert_one_sentence_exit_2(
        &run(&["conform", "--full", "--dtype", "all"]),
        &["--full", "--dtype"],
    );
    assert_one_sentence_exit_2(
        &run(&["conform", "--full", "--dtype", "f32", "--kernel", "vec4"]),
        &["--kernel vec4", "f32"],
    );
    assert_one_sentence_exit_2(
        &run(&[
            "conform",
            "--full",
            "--dtype",
            "f16",
            "--full-pairs",
            "65536",
        ]),
        &["--full-pairs 65536", "f32"],
    );
    assert_one_sentence_exit_2(
        &run(&["conform", "--full", "--dtype", "f16", "--seed", "3"]),
        &["--seed 3", "f16"],
    );
    assert_one_sentence_exit_2(
        &run(&[
            "conform",
            "--full",
            "--dtype",
            "f32",
            "--full-pairs",
            "1000",
        ]),
        &["1000", "65536"],
    );
    assert_one_sentence_exit_2(
        &run(&[
            "conform",
            "--full",
            "--dtype",
            "f32",
            "--full-pairs",
            "65536",
            "--full-slice",
            "0..2",
        ]),
        &["--full-slice", "65536"],
    );
    assert_one_sentence_exit_2(&run(&["conform", "--full-pairs", "65536"]), &["--full"]);
}

#[test]
fn conform_hf_compares_hf_with_the_cpu_paths_hf() {
    if !gpu_available("conform --precision hf") {
        return;
    }
    // The suite of every dtype: the GPU's hf bits against the CPU path's hf bits.
    let o = run(&["conform", "--precision", "hf", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["pass"], true);
    let all = checks(&v);
    for d in ["bf16", "f16", "f32"] {
        assert!(all.iter().any(|c| c["dtype"] == d), "{d} checked");
    }
    for c in &all {
        assert_eq!(c["mismatches"], 0, "{c}");
        assert!(c["error"].is_null(), "{c}");
    }
    // And a slice of the exhaustive sweep through every bf16 kernel.
    let o = run(&[
        "conform",
        "--full",
        "--precision",
        "hf",
        "--dtype",
        "bf16",
        "--full-slice",
        "0x3F80..0x3F81",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["pass"], true);
    assert_eq!(v["adapters"][0]["mismatches"], 0);
}
