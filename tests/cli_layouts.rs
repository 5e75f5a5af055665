//! `bfrope apply` on every layout it accepts (DESIGN.md §7): `--layout bshd|bhsd`,
//! `--rotation interleaved|half`, `--rotary-dim N`, on the CPU path and the GPU, each output
//! equal to the library's CPU path on the same description (which tests/views.rs holds to
//! the oracle); and every contradiction refused with exit 2.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::{Command, Output};

use bfrope::{
    cpu, Direction, Layout, Pairing, Positions, Precision, RopeCall, RopeTable, Rotation,
    TableSpec, TensorView,
};
use safetensors::tensor::{Dtype, SafeTensors, TensorView as StView};

fn bfrope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bfrope"))
        .args(args)
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn bits(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

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

fn gpu_available() -> bool {
    let o = bfrope(&["info", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("info --json");
    let any = !v["adapters"].as_array().unwrap().is_empty();
    if !any {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no adapter"
        );
        eprintln!("SKIP: no adapter; GPU half of the layout CLI tests did not run");
    }
    any
}

/// q with 4 heads and k with 2 (GQA), in `layout`'s memory order, through every rotation.
#[test]
fn layouts_every_accepted_combination_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (b, s, d) = (2usize, 6usize, 16usize);
    let heads = [("q", 4usize), ("k", 2usize)];
    let mut backends = vec!["cpu"];
    if gpu_available() {
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
