//! `bfrope apply` on every layout it accepts (docs/CONTRACT.md §7): `--layout bshd|bhsd`,
//! `--rotation interleaved|half`, `--rotary-dim N`, on the CPU path and the GPU, each output
//! equal to the library's CPU path on the same description (which tests/views/views.rs holds to
//! the oracle); and every contradiction refused with exit 2.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::Path;
use std::process::Output;

use bfrope::{
    cpu, Direction, Layout, Pairing, Positions, Precision, RopeCall, RopeTable, Rotation,
    TableSpec, TensorView,
};
use common::cli::{bfrope, bits, gpu_available, le16, le64, stderr as err, write_any};
use safetensors::tensor::{Dtype, SafeTensors, TensorView as StView};

fn write(path: &Path, tensors: &[(&str, Vec<usize>, Vec<u16>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|b| b.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, StView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.to_string(),
                StView::new(Dtype::BF16, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn read(path: &Path, name: &str) -> Vec<u16> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    bits(st.tensor(name).unwrap().data())
}

/// q with 4 heads and k with 2 (GQA), in `layout`'s memory order, through every rotation.
#[test]
fn layouts_every_accepted_combination_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (b, s, d) = (2usize, 6usize, 16usize);
    let heads = [("q", 4usize), ("k", 2usize)];
    let mut backends = vec!["cpu"];
    if gpu_available("the layout CLI tests") {
        backends.push("gpu");
    }
    for (layout, lname) in [(Layout::Bshd, "bshd"), (Layout::Bhsd, "bhsd")] {
        let dims = |h: usize| match layout {
            Layout::Bshd => [b, s, h, d],
            Layout::Bhsd => [b, h, s, d],
        };
        let input = dir.path().join(format!("{lname}.safetensors"));
        let data: Vec<(&str, Vec<usize>, Vec<u16>)> = heads
            .iter()
            .enumerate()
            .map(|(k, &(n, h))| {
                (
                    n,
                    dims(h).to_vec(),
                    bfrope::conformance::random_bf16(10 + k as u64, b * s * h * d),
                )
            })
            .collect();
        write(&input, &data);
        for (pairing, rname) in [
            (Pairing::Interleaved, "interleaved"),
            (Pairing::HalfSplit, "half"),
        ] {
            for rotary_dim in [d, d / 2, 4] {
                let table = RopeTable::build(&TableSpec {
                    base: 1000.0,
                    rotary_dim,
                    first_position: 7,
                    rows: s,
                    angles: bfrope::AngleMode::Exact,
                })
                .unwrap();
                for backend in &backends {
                    let out = dir.path().join(format!(
                        "out-{lname}-{rname}-{rotary_dim}-{backend}.safetensors"
                    ));
                    let rd = rotary_dim.to_string();
                    let o = bfrope(&[
                        "apply",
                        input.to_str().unwrap(),
                        "-o",
                        out.to_str().unwrap(),
                        "--layout",
                        lname,
                        "--rotation",
                        rname,
                        "--rotary-dim",
                        &rd,
                        "--base",
                        "1000",
                        "--position-offset",
                        "7",
                        "--backend",
                        backend,
                        "--inverse",
                    ]);
                    assert!(
                        o.status.success(),
                        "{lname} {rname} {rotary_dim} {backend}: {}",
                        err(&o)
                    );
                    for (name, h, x) in heads
                        .iter()
                        .zip(&data)
                        .map(|((n, h), (_, _, x))| (n, *h, x))
                    {
                        let positions = Positions::Offset(0);
                        let call = RopeCall {
                            view: TensorView::contiguous(layout, dims(h)),
                            rotation: Rotation {
                                pairing,
                                rotary_dim,
                                direction: Direction::Inverse,
                                precision: Precision::Exact,
                                dtype: bfrope::Dtype::Bf16,
                            },
                            positions: &positions,
                            table: &table,
                        };
                        let want = cpu::apply(&call, x).unwrap();
                        let got = read(&out, name);
                        let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                        assert_eq!(bad, 0, "{name} {lname} {rname} rotary_dim {rotary_dim} on {backend}: {bad} differ");
                    }
                }
            }
        }
    }
}

/// A rank, rotary_dim or table that contradicts the layout is refused: exit 2, one sentence.
#[test]
fn layouts_contradictions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    write(
        &input,
        &[
            (
                "q",
                vec![1, 4, 5, 8],
                bfrope::conformance::random_bf16(1, 160),
            ),
            (
                "r3",
                vec![4, 5, 8],
                bfrope::conformance::random_bf16(2, 160),
            ),
        ],
    );
    let out = dir.path().join("out.safetensors");
    let refused = |extra: &[&str], needle: &str| {
        let mut args = vec![
            "apply",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(extra);
        let o = bfrope(&args);
        let e = err(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{extra:?}: {e}");
        assert!(e.contains(needle), "{extra:?}: expected {needle:?} in {e}");
        assert!(!out.exists());
    };
    refused(&["--tensors", "q", "--rotary-dim", "5"], "--rotary-dim 5");
    refused(&["--tensors", "q", "--rotary-dim", "10"], "--rotary-dim 10");
    refused(&["--tensors", "q", "--rotary-dim", "0"], "--rotary-dim 0");
    refused(
        &["--tensors", "r3", "--layout", "bhsd"],
        "[batch, heads, seq, head_dim]",
    );
    refused(&["--tensors", "q", "--layout", "thd"], "thd");
    refused(&["--tensors", "q", "--rotation", "quarter"], "quarter");
}

/// The library's CPU path on the same description: the reference of the CLI tests.
fn library(
    x: &[u16],
    view: TensorView,
    pairing: Pairing,
    rotary_dim: usize,
    positions: &Positions,
    table: &RopeTable,
) -> Vec<u16> {
    cpu::apply(
        &RopeCall {
            view,
            rotation: Rotation {
                pairing,
                rotary_dim,
                direction: Direction::Forward,
                precision: Precision::Exact,
                dtype: bfrope::Dtype::Bf16,
            },
            positions,
            table,
        },
        x,
    )
    .unwrap()
}

fn built(rotary_dim: usize, rows: usize) -> RopeTable {
    RopeTable::build(&TableSpec::new(rotary_dim, rows)).unwrap()
}

/// `--positions` ([S] shared, [B,S] per row; scattered decode positions), `--layout thd` with
/// `--cu-seqlens` or `--positions [T]`, on CPU and GPU, against the library.
#[test]
fn layouts_positions_and_packed_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let (b, h, s, d) = (2usize, 3usize, 5usize, 16usize);
    let n = b * h * s * d;
    let x = bfrope::conformance::random_bf16(71, n);
    let pos_s: Vec<i64> = vec![4, 0, 9, 130000, 2];
    let pos_bs: Vec<i64> = vec![0, 1, 2, 3, 4, 70000, 70001, 70002, 5, 6];
    let cu: Vec<i64> = vec![0, 2, 2, 5];
    let pos_t: Vec<i64> = vec![3, 1, 4, 1, 5];
    let input = dir.path().join("in.safetensors");
    write_any(
        &input,
        &[
            ("q", Dtype::BF16, vec![b, h, s, d], le16(&x)),
            ("packed", Dtype::BF16, vec![s, b * h, d], le16(&x)),
            ("pos_s", Dtype::I64, vec![s], le64(&pos_s)),
            ("pos_bs", Dtype::I64, vec![b, s], le64(&pos_bs)),
            (
                "pos_t",
                Dtype::I32,
                vec![s],
                pos_t
                    .iter()
                    .flat_map(|&v| (v as i32).to_le_bytes())
                    .collect(),
            ),
            ("cu", Dtype::I64, vec![4], le64(&cu)),
        ],
    );
    let per_token = |p: &[i64], reps: usize| -> Vec<usize> {
        (0..reps)
            .flat_map(|_| p.iter().map(|&v| v as usize))
            .collect()
    };
    let mut cu_pos = Vec::new();
    for w in cu.windows(2) {
        cu_pos.extend((w[0]..w[1]).map(|t| (t - w[0]) as usize));
    }
    // (flags, view, per-token positions, pairing)
    let bhsd = TensorView::bhsd(b, h, s, d);
    let thd = TensorView::bshd(1, s, b * h, d);
    type Case<'a> = (Vec<&'a str>, TensorView, Vec<usize>, Pairing, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                "--tensors",
                "q",
                "--layout",
                "bhsd",
                "--rotation",
                "half",
                "--positions",
                "pos_s",
            ],
            bhsd,
            per_token(&pos_s, b),
            Pairing::HalfSplit,
            "q",
        ),
        (
            vec![
                "--tensors",
                "q",
                "--layout",
                "bhsd",
                "--positions",
                "pos_bs",
            ],
            bhsd,
            per_token(&pos_bs, 1),
            Pairing::Interleaved,
            "q",
        ),
        (
            vec![
                "--tensors",
                "packed",
                "--layout",
                "thd",
                "--cu-seqlens",
                "cu",
            ],
            thd,
            cu_pos.clone(),
            Pairing::Interleaved,
            "packed",
        ),
        (
            vec![
                "--tensors",
                "packed",
                "--layout",
                "thd",
                "--rotation",
                "half",
                "--positions",
                "pos_t",
            ],
            thd,
            per_token(&pos_t, 1),
            Pairing::HalfSplit,
            "packed",
        ),
    ];
    let mut backends = vec!["cpu"];
    if gpu_available("the layout CLI tests") {
        backends.push("gpu");
    }
    for (k, (flags, view, positions, pairing, name)) in cases.iter().enumerate() {
        let table = built(d, positions.iter().max().unwrap() + 1);
        let want = library(
            &x,
            *view,
            *pairing,
            d,
            &Positions::PerToken(positions.clone()),
            &table,
        );
        for backend in &backends {
            let out = dir.path().join(format!("out{k}-{backend}.safetensors"));
            let mut args = vec![
                "apply",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--backend",
                backend,
            ];
            args.extend(flags.iter().copied());
            let o = bfrope(&args);
            assert!(o.status.success(), "{flags:?} {backend}: {}", err(&o));
            assert_eq!(read(&out, name), want, "{flags:?} on {backend}");
        }
    }
}

/// The Hugging Face case end to end: Llama-3.1's q (8 heads) and k (2 heads) in BHSD,
/// half-split, with the model's own per-token `[B, S, 128]` tables from
/// `tests/data/golden/hf_models.safetensors`: the CLI equals the library (tests/hf/models.rs
/// holds the library to the oracle on these cases), on CPU and GPU.
#[test]
fn layouts_hugging_face_bhsd_half_split_gqa_end_to_end() {
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/golden/hf_models.safetensors"
    );
    let bytes = std::fs::read(golden).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |n: &str| -> Vec<f32> {
        st.tensor(n)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let (cos, sin) = (f32s("llama31_gqa.cos"), f32s("llama31_gqa.sin"));
    let (b, s, r) = (2usize, 24usize, 128usize);
    let table = RopeTable::from_repeated_halves(&cos, &sin, b * s, r).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec!["cpu"];
    if gpu_available("the layout CLI tests") {
        backends.push("gpu");
    }
    for backend in backends {
        let out = dir.path().join(format!("llama-{backend}.safetensors"));
        let o = bfrope(&[
            "apply",
            golden,
            "-o",
            out.to_str().unwrap(),
            "--backend",
            backend,
            "--tensors",
            "llama31_gqa.q,llama31_gqa.k",
            "--layout",
            "bhsd",
            "--rotation",
            "half",
            "--cos",
            "llama31_gqa.cos",
            "--sin",
            "llama31_gqa.sin",
        ]);
        assert!(o.status.success(), "{backend}: {}", err(&o));
        for (t, heads) in [("q", 8usize), ("k", 2usize)] {
            let name = format!("llama31_gqa.{t}");
            let x = bits(st.tensor(&name).unwrap().data());
            let want = library(
                &x,
                TensorView::bhsd(b, heads, s, 128),
                Pairing::HalfSplit,
                r,
                &Positions::PerToken((0..b * s).collect()),
                &table,
            );
            assert_eq!(read(&out, &name), want, "{name} on {backend}");
        }
    }
}

/// Placement flags that contradict each other or the tensor are refused: exit 2.
#[test]
fn layouts_placement_contradictions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    let (b, s, h, d) = (2usize, 4usize, 2usize, 8usize);
    let x = bfrope::conformance::random_bf16(5, b * s * h * d);
    let halves: Vec<f32> = (0..b * s)
        .flat_map(|i| {
            let row: Vec<f32> = (0..d / 2)
                .map(|k| ((i * 7 + k) as f32 * 0.1).cos())
                .collect();
            [row.clone(), row].concat()
        })
        .collect();
    let mut broken = halves.clone();
    broken[d - 1] += 1.0;
    let f32b = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    write_any(
        &input,
        &[
            ("q", Dtype::BF16, vec![b, s, h, d], le16(&x)),
            ("p", Dtype::I64, vec![s], le64(&[0, 1, 2, 3])),
            ("neg", Dtype::I64, vec![s], le64(&[0, -1, 2, 3])),
            ("p3", Dtype::I64, vec![3], le64(&[0, 1, 2])),
            ("f", Dtype::F32, vec![s], f32b(&[0.0; 4])),
            ("hc", Dtype::F32, vec![b, s, d], f32b(&halves)),
            ("hs", Dtype::F32, vec![b, s, d], f32b(&halves)),
            ("broken", Dtype::F32, vec![b, s, d], f32b(&broken)),
        ],
    );
    let out = dir.path().join("out.safetensors");
    let refused = |extra: &[&str], needle: &str| {
        let mut args = vec![
            "apply",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
            "--tensors",
            "q",
        ];
        args.extend_from_slice(extra);
        let o = bfrope(&args);
        let e = err(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{extra:?}: {e}");
        assert!(e.contains(needle), "{extra:?}: expected {needle:?} in {e}");
        assert!(!out.exists());
    };
    refused(
        &["--positions", "p", "--position-offset", "3"],
        "cannot be combined",
    );
    refused(&["--cu-seqlens", "p"], "--layout thd only");
    refused(&["--layout", "thd"], "needs --cu-seqlens");
    refused(
        &["--layout", "thd", "--positions", "p"],
        "has shape [2, 4, 2, 8]",
    );
    refused(&["--positions", "neg"], "-1 at index 1");
    refused(&["--positions", "p3"], "needs [4] or [2, 4]");
    refused(&["--positions", "f"], "I32 or I64");
    refused(&["--positions", "nope"], "\"nope\"");
    refused(
        &["--cos", "hc", "--sin", "hs", "--positions", "p"],
        "one row per token",
    );
    refused(&["--cos", "broken", "--sin", "hs"], "not two equal halves");
    refused(
        &["--cos", "hc", "--sin", "hs", "--rotary-dim", "4"],
        "8 values per row",
    );
    // The HF form accepted: the same as the library on its first halves.
    let o = bfrope(&[
        "apply",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--tensors",
        "q",
        "--cos",
        "hc",
        "--sin",
        "hs",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let table = RopeTable::from_repeated_halves(&halves, &halves, b * s, d).unwrap();
    let want = library(
        &x,
        TensorView::bshd(b, s, h, d),
        Pairing::Interleaved,
        d,
        &Positions::PerToken((0..b * s).collect()),
        &table,
    );
    assert_eq!(read(&out, "q"), want);
}

/// `--layout thd` with per-token tables (docs/CONTRACT.md §7): `[T, N/2]`, HF's `[T, N]` and
/// `[1, T, N/2]` without positions are one row per packed token; `[T, N/2]` with
/// `--cu-seqlens` is read by position where the two readings agree, refused naming both
/// where they differ, and `--table-rows` says which. CPU and GPU against the library.
#[test]
fn layouts_thd_per_token_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (t, h, d) = (5usize, 3usize, 8usize);
    let x = bfrope::conformance::random_bf16(41, t * h * d);
    let row = |i: usize| -> Vec<f32> { (0..d / 2).map(|k| (i * 5 + k) as f32 * 0.37).collect() };
    let cos: Vec<f32> = (0..t)
        .flat_map(|i| row(i).into_iter().map(f32::cos))
        .collect();
    let sin: Vec<f32> = (0..t)
        .flat_map(|i| row(i).into_iter().map(f32::sin))
        .collect();
    let repeat = |v: &[f32]| -> Vec<f32> {
        v.chunks_exact(d / 2)
            .flat_map(|r| [r, r].concat())
            .collect()
    };
    let f32b = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let input = dir.path().join("in.safetensors");
    write_any(
        &input,
        &[
            ("packed", Dtype::BF16, vec![t, h, d], le16(&x)),
            ("c2", Dtype::F32, vec![t, d / 2], f32b(&cos)),
            ("s2", Dtype::F32, vec![t, d / 2], f32b(&sin)),
            ("chf", Dtype::F32, vec![t, d], f32b(&repeat(&cos))),
            ("shf", Dtype::F32, vec![t, d], f32b(&repeat(&sin))),
            ("c3", Dtype::F32, vec![1, t, d / 2], f32b(&cos)),
            ("s3", Dtype::F32, vec![1, t, d / 2], f32b(&sin)),
            (
                "cshort",
                Dtype::F32,
                vec![t - 1, d / 2],
                f32b(&cos[..(t - 1) * d / 2]),
            ),
            (
                "sshort",
                Dtype::F32,
                vec![t - 1, d / 2],
                f32b(&sin[..(t - 1) * d / 2]),
            ),
            ("cu", Dtype::I64, vec![3], le64(&[0, 2, 5])),
            ("cu1", Dtype::I64, vec![2], le64(&[0, 5])),
            ("q", Dtype::BF16, vec![1, t, h, d], le16(&x)),
        ],
    );
    let table = RopeTable::from_cos_sin(&cos, &sin, t, d / 2).unwrap();
    let view = TensorView::bshd(1, t, h, d);
    let per_token = library(
        &x,
        view,
        Pairing::Interleaved,
        d,
        &Positions::PerToken((0..t).collect()),
        &table,
    );
    // cu [0, 2, 5]: positions 0, 1, 0, 1, 2.
    let by_position = library(
        &x,
        view,
        Pairing::Interleaved,
        d,
        &Positions::PerToken(vec![0, 1, 0, 1, 2]),
        &table,
    );
    assert_ne!(per_token, by_position, "the two readings must differ here");
    let mut backends = vec!["cpu"];
    if gpu_available("the layout CLI tests") {
        backends.push("gpu");
    }
    let out = dir.path().join("out.safetensors");
    let run = |extra: &[&str], backend: &str| -> Output {
        let mut args = vec![
            "apply",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--backend",
            backend,
            "--tensors",
            "packed",
            "--layout",
            "thd",
        ];
        args.extend_from_slice(extra);
        bfrope(&args)
    };
    #[rustfmt::skip]
    let accepted: &[(&[&str], &Vec<u16>)] = &[
        (&["--cos", "c2", "--sin", "s2"], &per_token),                                  // [T, N/2], per token
        (&["--cos", "chf", "--sin", "shf"], &per_token),                                // HF [T, N], per token
        (&["--cos", "c3", "--sin", "s3"], &per_token),                                  // [1, T, N/2], per token
        (&["--cos", "c2", "--sin", "s2", "--table-rows", "token"], &per_token),         // said explicitly
        (&["--cos", "c2", "--sin", "s2", "--cu-seqlens", "cu", "--table-rows", "position"], &by_position),
        (&["--cos", "c2", "--sin", "s2", "--cu-seqlens", "cu1"], &per_token),           // positions 0..T: both readings agree
    ];
    for backend in &backends {
        for (extra, want) in accepted {
            let o = run(extra, backend);
            assert!(o.status.success(), "{extra:?} {backend}: {}", err(&o));
            assert_eq!(&read(&out, "packed"), *want, "{extra:?} on {backend}");
        }
    }
    #[rustfmt::skip]
    let refused: &[(&[&str], &str)] = &[
        // Both readings fit and differ: the error names both and the flag.
        (&["--cos", "c2", "--sin", "s2", "--cu-seqlens", "cu"], "read by position (placed by --cu-seqlens cu) or one row per token"),
        (&["--cos", "c2", "--sin", "s2", "--cu-seqlens", "cu", "--table-rows", "token"], "--cu-seqlens cu does not apply"),
        (&["--cos", "c2", "--sin", "s2", "--table-rows", "position"], "no --cu-seqlens or --positions"),
        (&["--cos", "cshort", "--sin", "sshort"], "has 4 rows, but as one row per token of the 5 packed tokens it needs 5"),
        (&["--cos", "c3", "--sin", "s3", "--cu-seqlens", "cu"], "one row per token; --positions, --cu-seqlens"),
        (&["--cos", "c3", "--sin", "s3", "--table-rows", "position"], "needs a 2-D table"),
        (&["--table-rows", "token"], "--cos/--sin tables only"),
    ];
    std::fs::remove_file(&out).unwrap();
    for (extra, needle) in refused {
        let o = run(extra, "cpu");
        let e = err(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{extra:?}: {e}");
        assert!(e.contains(needle), "{extra:?}: expected {needle:?} in {e}");
        assert!(!out.exists(), "{extra:?}: no output");
    }
    // --table-rows is for packed tensors only.
    let mut args = vec![
        "apply",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend([
        "--tensors",
        "q",
        "--cos",
        "c2",
        "--sin",
        "s2",
        "--table-rows",
        "token",
    ]);
    let o = bfrope(&args);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--layout thd only"), "{}", err(&o));
}
