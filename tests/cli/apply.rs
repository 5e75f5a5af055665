//! The `bfrope` binary as a user runs it (docs/CONTRACT.md §7): round trips through safetensors files,
//! GPU and CPU backends giving the same bytes, user tables, position offsets, and every bad
//! input refused with exit 2, one sentence naming the value, and no output file.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bfrope::{cpu, AngleMode, Direction, Positions, RopeCall, RopeShape, RopeTable, TableSpec};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

fn bfrope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bfrope"))
}

fn run(args: &[&str]) -> Output {
    bfrope()
        .args(args)
        .output()
        .expect("the bfrope binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tensor to write: dtype, shape, little-endian bytes.
type Tensor = (Dtype, Vec<usize>, Vec<u8>);

fn write_st(path: &Path, tensors: &[(&str, Tensor)], metadata: Option<HashMap<String, String>>) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (dt, shape, data))| {
            (
                n.to_string(),
                TensorView::new(*dt, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, metadata).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every tensor of a file, and its metadata.
fn read_st(path: &Path) -> (HashMap<String, Tensor>, Option<HashMap<String, String>>) {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = st
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                (t.dtype(), t.shape().to_vec(), t.data().to_vec()),
            )
        })
        .collect();
    (tensors, meta.metadata().clone())
}

/// Seeded bf16 bytes of normal-ish magnitude.
fn bf16_data(seed: u64, n: usize) -> Vec<u8> {
    bfrope::conformance::random_bf16(seed, n)
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect()
}

fn bits(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

const QK: [usize; 4] = [2, 12, 3, 16];

/// An input with q, k (BF16 rank 4), an F32 weight, an I64 vector, a BF16 rank-2 tensor,
/// and metadata.
fn standard_input(dir: &Path) -> PathBuf {
    let n: usize = QK.iter().product();
    let path = dir.join("in.safetensors");
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_st(
        &path,
        &[
            ("q", (Dtype::BF16, QK.to_vec(), bf16_data(1, n))),
            ("k", (Dtype::BF16, QK.to_vec(), bf16_data(2, n))),
            (
                "w",
                (
                    Dtype::F32,
                    vec![2, 3],
                    f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                ),
            ),
            ("ids", (Dtype::I64, vec![4], (0..32u8).collect())),
            ("norm", (Dtype::BF16, vec![4, 16], bf16_data(3, 64))),
        ],
        Some(meta),
    );
    path
}

fn apply(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "apply".to_string(),
        input.display().to_string(),
        "-o".to_string(),
        output.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    bfrope()
        .args(&args)
        .output()
        .expect("the bfrope binary runs")
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "bfrope failed with {:?}: {}",
        o.status.code(),
        stderr(o)
    );
}

/// The library's CPU path on the same data, the reference for the CLI's output.
fn lib_rotate(x: &[u8], table: &RopeTable, row_offset: usize, dir: Direction) -> Vec<u16> {
    let shape = RopeShape::from_dims(&QK).unwrap();
    let positions = Positions::Offset(row_offset);
    let call = RopeCall::new(shape.into(), &positions, table).with_direction(dir);
    cpu::apply(&call, &bits(x)).unwrap()
}

#[test]
fn apply_cpu_rotates_selected_tensors_and_copies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("out.safetensors");
    let o = apply(&input, &out, &["--backend", "cpu"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("CPU path"), "report: {}", stderr(&o));
    let (src, src_meta) = read_st(&input);
    let (dst, dst_meta) = read_st(&out);
    assert_eq!(dst_meta, src_meta, "metadata kept");
    assert_eq!(dst.len(), src.len(), "every tensor written");
    for name in ["w", "ids", "norm"] {
        assert_eq!(dst[name], src[name], "{name} copied unchanged");
    }
    let table = RopeTable::build(&TableSpec::new(QK[3], QK[1])).unwrap();
    for name in ["q", "k"] {
        assert_eq!(dst[name].0, Dtype::BF16);
        assert_eq!(dst[name].1, QK.to_vec());
        let expect = lib_rotate(&src[name].2, &table, 0, Direction::Forward);
        assert_eq!(
            bits(&dst[name].2),
            expect,
            "{name} rotated as the library does"
        );
        assert_ne!(dst[name].2, src[name].2, "{name} changed");
    }
}

#[test]
fn apply_then_inverse_gives_the_tensor_back() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let fwd = dir.path().join("fwd.safetensors");
    let back = dir.path().join("back.safetensors");
    assert_ok(&apply(
        &input,
        &fwd,
        &["--backend", "cpu", "--position-offset", "100"],
    ));
    assert_ok(&apply(
        &fwd,
        &back,
        &["--backend", "cpu", "--position-offset", "100", "--inverse"],
    ));
    let (src, _) = read_st(&input);
    let (dst, _) = read_st(&back);
    for name in ["q", "k"] {
        let (a, b) = (bits(&src[name].2), bits(&dst[name].2));
        let mut far = 0;
        for (&x, &y) in a.iter().zip(&b) {
            let (x, y) = (
                half::bf16::from_bits(x).to_f32(),
                half::bf16::from_bits(y).to_f32(),
            );
            if x.is_nan() {
                assert!(y.is_nan());
            } else if x.is_infinite() {
                // inf·cos − inf·sin is NaN: infinities do not survive a rotation.
            } else if (x - y).abs() > 0.02 * x.abs().max(1.0) {
                far += 1;
            }
        }
        // A pair holding a special value (inf, NaN, huge) loses its partner; everything else
        // comes back within bf16 rounding.
        assert!(
            far <= a.len() / 200,
            "{name}: {far} of {} elements not recovered",
            a.len()
        );
    }
}

#[test]
fn tensors_flag_rotates_only_the_named_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("out.safetensors");
    assert_ok(&apply(
        &input,
        &out,
        &["--backend", "cpu", "--tensors", "k"],
    ));
    let (src, _) = read_st(&input);
    let (dst, _) = read_st(&out);
    assert_eq!(dst["q"], src["q"], "q not named, so unchanged");
    assert_ne!(dst["k"].2, src["k"].2);
}

#[test]
fn position_offset_builds_the_table_from_that_position() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("out.safetensors");
    assert_ok(&apply(
        &input,
        &out,
        &[
            "--backend",
            "cpu",
            "--position-offset",
            "4096",
            "--base",
            "500000",
            "--angles",
            "torch",
            "--inverse",
        ],
    ));
    let spec = TableSpec {
        base: 500000.0,
        rotary_dim: QK[3],
        first_position: 4096,
        rows: QK[1],
        angles: AngleMode::Torch,
    };
    let table = RopeTable::build(&spec).unwrap();
    let (src, _) = read_st(&input);
    let (dst, _) = read_st(&out);
    let expect = lib_rotate(&src["q"].2, &table, 0, Direction::Inverse);
    assert_eq!(bits(&dst["q"].2), expect);
}

/// cos/sin tables `[rows, D/2]` written into the input, rows `0..rows`.
fn input_with_tables(dir: &Path, rows: usize, pairs: usize) -> (PathBuf, RopeTable) {
    let n: usize = QK.iter().product();
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for r in 0..rows {
        for i in 0..pairs {
            // Arbitrary angles: the CLI must use the table as given.
            let a = (r as f64) * 0.37 + (i as f64) * 0.011;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    let path = dir.join("tables.safetensors");
    write_st(
        &path,
        &[
            ("q", (Dtype::BF16, QK.to_vec(), bf16_data(7, n))),
            (
                "freqs_cos",
                (Dtype::F32, vec![rows, pairs], f32_bytes(&cos)),
            ),
            (
                "freqs_sin",
                (Dtype::F32, vec![rows, pairs], f32_bytes(&sin)),
            ),
        ],
        None,
    );
    let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
    (path, table)
}

#[test]
fn user_tables_are_read_from_the_position_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (input, table) = input_with_tables(dir.path(), QK[1] + 5, QK[3] / 2);
    let (src, _) = read_st(&input);
    for offset in [0usize, 5] {
        let out = dir.path().join(format!("out{offset}.safetensors"));
        let off = offset.to_string();
        assert_ok(&apply(
            &input,
            &out,
            &[
                "--backend",
                "cpu",
                "--cos",
                "freqs_cos",
                "--sin",
                "freqs_sin",
                "--position-offset",
                &off,
            ],
        ));
        let (dst, _) = read_st(&out);
        let expect = lib_rotate(&src["q"].2, &table, offset, Direction::Forward);
        assert_eq!(bits(&dst["q"].2), expect, "offset {offset}");
        assert_eq!(
            dst["freqs_cos"], src["freqs_cos"],
            "tables copied unchanged"
        );
        assert_eq!(dst["freqs_sin"], src["freqs_sin"]);
    }
}

#[test]
fn gpu_and_cpu_backends_write_identical_bytes() {
    if !common::cli::gpu_available("the GPU CLI tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let (tables, _) = input_with_tables(dir.path(), QK[1] + 3, QK[3] / 2);
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (input.clone(), vec![]),
        (
            input.clone(),
            vec![
                "--position-offset",
                "65535",
                "--angles",
                "torch",
                "--inverse",
            ],
        ),
        (
            tables,
            vec![
                "--cos",
                "freqs_cos",
                "--sin",
                "freqs_sin",
                "--position-offset",
                "3",
            ],
        ),
    ];
    // Each case whole, and in slices of two tokens (a binding limit of 256 bytes: tokens of
    // 3 heads x 16 x 2 bytes), which must not change a bit.
    let sliced = ["--max-binding", "256"];
    let runs = cases.iter().flat_map(|c| [(c, &[][..]), (c, &sliced[..])]);
    for (k, ((inp, extra), slicing)) in runs.enumerate() {
        let g = dir.path().join(format!("gpu{k}.safetensors"));
        let c = dir.path().join(format!("cpu{k}.safetensors"));
        let mut ga = vec!["--backend", "gpu"];
        ga.extend(extra);
        ga.extend(slicing);
        let mut ca = vec!["--backend", "cpu"];
        ca.extend(extra);
        let o = apply(inp, &g, &ga);
        assert_ok(&o);
        assert!(
            stderr(&o).contains("on GPU"),
            "report names the GPU: {}",
            stderr(&o)
        );
        assert_ok(&apply(inp, &c, &ca));
        assert_eq!(
            std::fs::read(&g).unwrap(),
            std::fs::read(&c).unwrap(),
            "case {k} {extra:?} {slicing:?}"
        );
    }
}

#[test]
fn auto_backend_runs_and_reports_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("out.safetensors");
    let o = apply(&input, &out, &[]);
    assert_ok(&o);
    let err = stderr(&o);
    let info = run(&["info", "--json"]);
    assert_ok(&info);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let adapters = v["adapters"].as_array().unwrap();
    let software = |a: &serde_json::Value| a["device_type"] == "Cpu";
    if adapters.is_empty() {
        assert!(err.contains("using the CPU path"), "{err}");
    } else if adapters.iter().all(software) {
        // A software rasteriser (lavapipe, SwiftShader) only: auto takes the faster CPU path
        // and says why; --backend gpu still runs on it.
        assert!(
            err.contains("on the CPU path (auto: ") && err.contains("software rasteriser"),
            "{err}"
        );
        let o = apply(&input, &out, &["--backend", "gpu"]);
        assert_ok(&o);
        assert!(stderr(&o).contains("on GPU"), "{}", stderr(&o));
    } else {
        assert!(err.contains("on GPU"), "{err}");
    }
    // One line on stderr: no progress bar where stderr is not a terminal.
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn shape_messages_name_the_pairing_and_floats_are_short() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("odd.safetensors");
    write_st(
        &input,
        &[("q", (Dtype::BF16, vec![1, 2, 1, 7], bf16_data(4, 14)))],
        None,
    );
    let out = d.join("out.safetensors");
    for (rotation, named, not) in [
        ("half", "half-split", "interleaved"),
        ("interleaved", "interleaved", "half-split"),
    ] {
        let o = apply(&input, &out, &["--backend", "cpu", "--rotation", rotation]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("head_dim 7 is odd"), "{err}");
        assert!(
            err.contains(named) && !err.contains(not),
            "{rotation}: {err}"
        );
    }
    assert!(!out.exists());
    // A base echoed back: short, whatever its magnitude.
    let qk = standard_input(d);
    let o = apply(
        &qk,
        &out,
        &[
            "--backend",
            "cpu",
            "--base",
            "1e-300",
            "--cos",
            "w",
            "--sin",
            "w",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--base 1e-300 cannot"), "{err}");
    let table = d.join("t.safetensors");
    for (base, shown) in [
        ("1e-300", "base 1e-300"),
        ("1e300", "base 1e300"),
        ("500000", "base 500000"),
        ("0.5", "base 0.5"),
    ] {
        let o = run(&[
            "table",
            "--base",
            base,
            "--rotary-dim",
            "8",
            "--positions",
            "0..2",
            "-o",
            table.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_ok(&o);
        assert!(err.contains(shown), "{err}");
        assert!(err.len() < 200, "a short line: {err}");
        let (_, meta) = read_st(&table);
        assert_eq!(meta.unwrap()["base"], base, "the metadata's base");
    }
    let o = run(&[
        "table",
        "--base",
        "-1e-300",
        "--rotary-dim",
        "8",
        "--positions",
        "0..2",
        "-o",
        "-",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--base -1e-300 is not"), "{err}");
}

#[test]
fn info_json_parses() {
    let o = run(&["info", "--json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("info --json is JSON");
    for a in v["adapters"].as_array().expect("adapters array") {
        assert!(a["name"].is_string());
        assert!(a["backend"].is_string());
        assert!(a["max_storage_binding"].as_u64().is_some());
        assert!(a["timestamps"].is_boolean());
    }
    assert_ok(&run(&["info"]));
}

#[test]
fn conform_passes_on_the_adapter() {
    if !common::cli::gpu_available("the GPU CLI tests") {
        let o = run(&["conform"]);
        assert_eq!(o.status.code(), Some(1), "no adapter: conform fails");
        return;
    }
    let o = run(&["conform", "--json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("conform --json is JSON");
    assert_eq!(v["pass"], true);
    let checks = v["adapters"][0]["checks"].as_array().unwrap();
    assert!(checks.len() >= 4);
    let sweep = &checks[0];
    assert_eq!(sweep["checked"], 65536 * 11 * 6 * 2);
    assert_eq!(sweep["mismatches"], 0);
}

#[test]
fn main_job_is_bit_identical() {
    let o = run(&[]);
    assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("CPU path:"), "{out}");
    assert!(
        out.contains("bit-identical: yes") || out.contains("bit-identical: not compared"),
        "{out}"
    );
}

/// Runs a bad `apply` and checks exit 2, one line on stderr mentioning `needle`, no output
/// file and no temporary file left, and the input untouched.
fn refused(dir: &Path, input: &Path, output: &Path, extra: &[&str], needle: &str) {
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let input_bytes = std::fs::read(input).ok();
    let output_existed = output.exists();
    let o = apply(input, output, extra);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{extra:?}: expected exit 2, stderr: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{extra:?}: one line: {err}"
    );
    assert!(err.starts_with("error: "), "{extra:?}: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "{extra:?}: stderr should mention {needle:?}: {err}"
    );
    if !output_existed {
        assert!(!output.exists(), "{extra:?}: no output file");
    }
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before.len(), after.len(), "{extra:?}: no file left behind");
    assert_eq!(std::fs::read(input).ok(), input_bytes, "input untouched");
}

#[test]
fn bad_inputs_exit_2_with_one_sentence_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let out = d.join("out.safetensors");
    // Wrong dtype of a selected tensor (F16 and F32 rotate; integers and F64 do not).
    refused(d, &input, &out, &["--tensors", "ids"], "\"ids\" is I64");
    // A missing tensor name.
    refused(d, &input, &out, &["--tensors", "q,nope"], "nope");
    // Non-finite or non-positive base.
    for base in ["nan", "inf", "-inf", "0", "-1"] {
        refused(d, &input, &out, &["--base", base], base);
    }
    // --cos without --sin and the reverse.
    refused(d, &input, &out, &["--cos", "w"], "--sin");
    refused(d, &input, &out, &["--sin", "w"], "--cos");
    // An unknown angle mode, layout, backend; a negative offset.
    refused(d, &input, &out, &["--angles", "float"], "float");
    refused(d, &input, &out, &["--layout", "sbhd"], "sbhd");
    refused(d, &input, &out, &["--backend", "tpu"], "tpu");
    refused(d, &input, &out, &["--position-offset", "-1"], "-1");
    // Fast precision has no CPU path.
    refused(
        d,
        &input,
        &out,
        &["--backend", "cpu", "--precision", "fast"],
        "fast",
    );
    // Tables: a rank-1 tensor, a tensor of the wrong dtype.
    refused(d, &input, &out, &["--cos", "w", "--sin", "ids"], "ids");
    refused(d, &input, &out, &["--cos", "ids", "--sin", "ids"], "I64");

    // Odd head_dim.
    let odd = d.join("odd.safetensors");
    write_st(
        &odd,
        &[("q", (Dtype::BF16, vec![1, 4, 2, 7], bf16_data(4, 56)))],
        None,
    );
    refused(d, &odd, &out, &[], "7");
    refused(d, &odd, &out, &["--tensors", "q"], "odd");
    // Rank 3 named explicitly.
    let rank3 = d.join("rank3.safetensors");
    write_st(
        &rank3,
        &[("x", (Dtype::BF16, vec![4, 2, 8], bf16_data(5, 64)))],
        None,
    );
    refused(d, &rank3, &out, &["--tensors", "x"], "[4, 2, 8]");
    // Nothing to rotate by default.
    refused(d, &rank3, &out, &[], "no BF16, F16 or F32 tensor of rank 4");

    // Tables of the wrong shape: too few pairs, too few rows for the offset, mismatched.
    let (tables, _) = input_with_tables(d, QK[1], QK[3] / 2);
    let t = ["--cos", "freqs_cos", "--sin", "freqs_sin"];
    refused(
        d,
        &tables,
        &out,
        &[&t[..], &["--position-offset", "1"]].concat(),
        "freqs_cos",
    );
    let narrow = d.join("narrow.safetensors");
    let n: usize = QK.iter().product();
    write_st(
        &narrow,
        &[
            ("q", (Dtype::BF16, QK.to_vec(), bf16_data(6, n))),
            (
                "c",
                (Dtype::F32, vec![QK[1], 4], f32_bytes(&vec![1.0; QK[1] * 4])),
            ),
            (
                "s",
                (Dtype::F32, vec![QK[1], 4], f32_bytes(&vec![0.0; QK[1] * 4])),
            ),
            (
                "s2",
                (Dtype::F32, vec![QK[1], 8], f32_bytes(&vec![0.0; QK[1] * 8])),
            ),
        ],
        None,
    );
    refused(
        d,
        &narrow,
        &out,
        &["--cos", "c", "--sin", "s"],
        "4 values per row",
    );
    refused(d, &narrow, &out, &["--cos", "c", "--sin", "s2"], "s2");
    // Built-table flags do not mix with user tables.
    refused(
        d,
        &tables,
        &out,
        &[&t[..], &["--base", "500000"]].concat(),
        "500000",
    );

    // An unreadable file, a directory, a truncated file, a file that is not safetensors.
    refused(
        d,
        &d.join("missing.safetensors"),
        &out,
        &[],
        "missing.safetensors",
    );
    refused(d, d, &out, &[], "is a directory, not a regular file");
    let bytes = std::fs::read(&input).unwrap();
    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    refused(d, &truncated, &out, &[], "truncated.safetensors");
    let short = d.join("short.safetensors");
    std::fs::write(&short, &bytes[..5]).unwrap();
    refused(d, &short, &out, &[], "short.safetensors");
    let garbage = d.join("garbage.safetensors");
    std::fs::write(
        &garbage,
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}",
    )
    .unwrap();
    refused(d, &garbage, &out, &[], "garbage.safetensors");

    // Output equal to the input: the same path, another spelling, a hard link, a symlink.
    refused(d, &input, &input, &[], "in.safetensors");
    std::fs::create_dir(d.join("sub")).unwrap();
    refused(d, &input, &d.join("sub/../in.safetensors"), &[], "input");
    let hard = d.join("hard.safetensors");
    std::fs::hard_link(&input, &hard).unwrap();
    refused(d, &input, &hard, &[], "hard.safetensors");
    #[cfg(unix)]
    {
        let soft = d.join("soft.safetensors");
        std::os::unix::fs::symlink(&input, &soft).unwrap();
        refused(d, &input, &soft, &[], "soft.safetensors");
    }
    // An output directory that does not exist.
    refused(
        d,
        &input,
        &d.join("nowhere/out.safetensors"),
        &[],
        "nowhere",
    );
}

#[test]
fn a_failed_run_keeps_an_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("out.safetensors");
    std::fs::write(&out, b"previous").unwrap();
    let o = apply(&input, &out, &["--tensors", "w"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}

/// `--adapter` matching nothing is the user's mistake: exit 2, one sentence that lists the
/// adapters there are, no fallback to the CPU path, no output.
#[test]
fn no_matching_adapter_is_a_usage_error_listing_the_adapters() {
    if !common::cli::gpu_available("the GPU CLI tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("out.safetensors");
    let info = run(&["info", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let first = v["adapters"][0]["name"].as_str().unwrap().to_string();
    for backend in ["gpu", "auto"] {
        let o = apply(
            &input,
            &out,
            &["--backend", backend, "--adapter", "no-such-adapter-xyz"],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("no-such-adapter-xyz"), "{err}");
        assert!(err.contains(&first), "lists the adapters: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
    let o = run(&["conform", "--adapter", "no-such-adapter-xyz"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&first), "{}", stderr(&o));
}

/// With no adapter (WGPU_BACKEND=metal hides every adapter off Apple platforms): `info` says
/// so and exits 0, the main job and `apply` use the CPU path and say so, `--backend gpu` and
/// `conform` fail with exit 1 in one sentence.
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
#[test]
fn without_an_adapter_the_cli_says_so() {
    let no_gpu = |args: &[&str]| {
        bfrope()
            .args(args)
            .env("WGPU_BACKEND", "metal")
            .output()
            .expect("the bfrope binary runs")
    };
    let o = no_gpu(&["info"]);
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no GPU adapter found"));
    let o = no_gpu(&["info", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["adapters"].as_array().map(|a| a.len()), Some(0));

    let o = no_gpu(&[]);
    assert_ok(&o);
    assert!(stderr(&o).contains("no GPU adapter found; using the CPU path"));

    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let args = |out: &Path, extra: &[&str]| {
        let mut v = vec![
            "apply".to_string(),
            input.display().to_string(),
            "-o".to_string(),
            out.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let out = dir.path().join("auto.safetensors");
    let o = bfrope()
        .args(args(&out, &[]))
        .env("WGPU_BACKEND", "metal")
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(stderr(&o).contains("no GPU adapter found; using the CPU path"));
    assert!(out.exists());

    let out = dir.path().join("gpu.safetensors");
    let o = bfrope()
        .args(args(&out, &["--backend", "gpu"]))
        .env("WGPU_BACKEND", "metal")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert!(!out.exists());

    let o = no_gpu(&["conform"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no GPU adapter found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn conform_with_fast_precision_reports_mismatches() {
    if !common::cli::gpu_available("the GPU CLI tests") {
        return;
    }
    // Plain f32 math double-rounds on every driver: the suite must catch it and exit 1.
    let o = run(&["conform", "--precision", "fast"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL"), "{out}");
    assert!(
        out.contains("expected (0x"),
        "first mismatches printed: {out}"
    );
}

/// What a user hit: names in `--tensors` are trimmed, a name given twice is refused.
#[test]
fn tensors_names_are_trimmed_and_duplicates_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let plain = d.join("plain.safetensors");
    assert_ok(&apply(
        &input,
        &plain,
        &["--backend", "cpu", "--tensors", "q,k"],
    ));
    let spaced = d.join("spaced.safetensors");
    assert_ok(&apply(
        &input,
        &spaced,
        &["--backend", "cpu", "--tensors", " q , k "],
    ));
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&spaced).unwrap()
    );
    let out = d.join("out.safetensors");
    refused(d, &input, &out, &["--tensors", "q,k,q"], "\"q\" twice");
    refused(d, &input, &out, &["--tensors", "q, q"], "\"q\" twice");
    refused(d, &input, &out, &["--tensors", "q, ,k"], "empty name");
}

/// A table holding NaN or infinities is accepted with a warning on stderr; the output
/// follows the contract (the CPU path's bits, which tests/rotation/specials.rs checks against the
/// oracle), the same on the GPU.
#[test]
fn non_finite_tables_are_accepted_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pairs = QK[3] / 2;
    let rows = QK[1];
    let n: usize = QK.iter().product();
    let mut cos = vec![1.0f32; rows * pairs];
    let mut sin = vec![0.0f32; rows * pairs];
    cos[3] = f32::NAN;
    sin[5] = f32::INFINITY;
    cos[pairs + 2] = f32::NEG_INFINITY;
    let x = bf16_data(11, n);
    let input = d.join("nan.safetensors");
    write_st(
        &input,
        &[
            ("q", (Dtype::BF16, QK.to_vec(), x.clone())),
            ("c", (Dtype::F32, vec![rows, pairs], f32_bytes(&cos))),
            ("s", (Dtype::F32, vec![rows, pairs], f32_bytes(&sin))),
        ],
        None,
    );
    let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
    let want = lib_rotate(&x, &table, 0, Direction::Forward);
    let mut backends = vec!["cpu"];
    if common::cli::gpu_available("the GPU CLI tests") {
        backends.push("gpu");
    }
    for backend in backends {
        let out = d.join(format!("{backend}.safetensors"));
        let o = apply(
            &input,
            &out,
            &[
                "--backend",
                backend,
                "--tensors",
                "q",
                "--cos",
                "c",
                "--sin",
                "s",
            ],
        );
        assert_ok(&o);
        let err = stderr(&o);
        assert!(
            err.contains("warning: --cos c holds 2 non-finite values"),
            "{backend}: {err}"
        );
        assert!(
            err.contains("warning: --sin s holds 1 non-finite"),
            "{backend}: {err}"
        );
        let (got, _) = read_st(&out);
        assert_eq!(bits(&got["q"].2), want, "{backend}");
        assert!(
            bits(&got["q"].2).contains(&0x7FC0),
            "{backend}: NaN where cos is NaN"
        );
    }
}

/// Mesa's `XDG_RUNTIME_DIR` complaint is not printed as if it were bfrope's.
#[test]
fn no_xdg_runtime_dir_complaint_without_the_variable() {
    for args in [&["info"][..], &["conform", "--seed", "3"][..]] {
        let o = bfrope()
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{args:?}: {err}");
    }
}
