//! `bfrope apply` on F16 and F32 tensors: named with --tensors or picked by default
//! (every BF16, F16 and F32 tensor of the layout's rank that is not a table, positions or
//! sequence starts), rotated in their own dtype (output dtype = input dtype) and checked
//! against the independent oracle; every other tensor copied byte for byte; the GPU and CPU
//! backends equal bit for bit; F64 and integer tensors refused with one sentence naming the
//! tensor and its dtype (exit 2).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::Path;

use common::cli::{bfrope, gpu_available, le16, le32f, le64, read_all, stderr as err, write_any};
use common::oracle::{oracle_pair_f16, oracle_pair_f32};
use common::rng;
use rand::Rng;
use safetensors::tensor::Dtype;

const B: usize = 1;
const S: usize = 5;
const D: usize = 8;
const ROWS: usize = 7;

/// The input: q F16 [1, 5, 2, 8], k F32 [1, 5, 1, 8] (random bit patterns, specials
/// included), a BF16 v, an F64 and an I64 tensor of rank 4, and the F32 cos/sin tables
/// [7, 4] (rank 2, never data).
struct Input {
    q: Vec<u16>,
    k: Vec<u32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

fn make_input(path: &Path) -> Input {
    let mut r = rng(0xC11D);
    let q: Vec<u16> = (0..B * S * 2 * D).map(|_| r.random()).collect();
    let k: Vec<u32> = (0..B * S * D).map(|_| r.random()).collect();
    let v: Vec<u16> = (0..B * S * 2 * D).map(|_| r.random()).collect();
    let cos: Vec<f32> = (0..ROWS * D / 2).map(|i| (i as f32 * 0.37).cos()).collect();
    let sin: Vec<f32> = (0..ROWS * D / 2).map(|i| (i as f32 * 0.37).sin()).collect();
    let k_bytes: Vec<u8> = k.iter().flat_map(|w| w.to_le_bytes()).collect();
    let scores: Vec<u8> = (0..4).flat_map(|i| (i as f64).to_le_bytes()).collect();
    write_any(
        path,
        &[
            ("q", Dtype::F16, vec![B, S, 2, D], le16(&q)),
            ("k", Dtype::F32, vec![B, S, 1, D], k_bytes),
            ("v", Dtype::BF16, vec![B, S, 2, D], le16(&v)),
            ("scores", Dtype::F64, vec![1, 1, 2, 2], scores),
            ("ids", Dtype::I64, vec![1, 1, 2, 2], le64(&[1, 2, 3, 4])),
            ("cos", Dtype::F32, vec![ROWS, D / 2], le32f(&cos)),
            ("sin", Dtype::F32, vec![ROWS, D / 2], le32f(&sin)),
        ],
    );
    Input { q, k, cos, sin }
}

fn tensor(all: &[(String, Dtype, Vec<usize>, Vec<u8>)], name: &str) -> (Dtype, Vec<u8>) {
    let t = all.iter().find(|t| t.0 == name).expect("tensor in output");
    (t.1, t.3.clone())
}

/// The oracle's interleaved rotation of a `[1, S, heads, D]` tensor at positions 0..S.
fn expected<T: Copy>(
    x: &[T],
    heads: usize,
    inp: &Input,
    pair: impl Fn(T, T, u32, u32) -> (T, T),
) -> Vec<T> {
    let mut y = x.to_vec();
    for s in 0..S {
        for h in 0..heads {
            let head = (s * heads + h) * D;
            for i in 0..D / 2 {
                let (c, sn) = (inp.cos[s * D / 2 + i], inp.sin[s * D / 2 + i]);
                let (a, b) = pair(
                    x[head + 2 * i],
                    x[head + 2 * i + 1],
                    c.to_bits(),
                    sn.to_bits(),
                );
                y[head + 2 * i] = a;
                y[head + 2 * i + 1] = b;
            }
        }
    }
    y
}

fn run_apply(input: &Path, output: &Path, extra: &[&str]) {
    let mut args = vec![
        "apply",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--cos",
        "cos",
        "--sin",
        "sin",
    ];
    args.extend_from_slice(extra);
    let o = bfrope(&args);
    assert!(o.status.success(), "bfrope {args:?}: {}", err(&o));
}

/// By default every F16, F32 and BF16 tensor of rank 4 is rotated in its own dtype (== oracle
/// for F16 and F32); the tables, the F64 and the I64 tensors are copied as they were.
#[test]
fn cli_default_rotates_f16_f32_bf16_in_their_dtype_and_copies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (inp_path, out_path) = (
        dir.path().join("in.safetensors"),
        dir.path().join("out.safetensors"),
    );
    let inp = make_input(&inp_path);
    run_apply(&inp_path, &out_path, &["--backend", "cpu"]);
    let before = read_all(&inp_path);
    let after = read_all(&out_path);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (&b.0, b.1, &b.2),
            (&a.0, a.1, &a.2),
            "name, dtype and shape kept"
        );
        let rotated = ["q", "k", "v"].contains(&b.0.as_str());
        assert_eq!(b.3 == a.3, !rotated, "{}: rotated iff it is data", b.0);
    }
    let (dt, q) = tensor(&after, "q");
    assert_eq!(dt, Dtype::F16);
    let q: Vec<u16> = q
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let want = expected(&inp.q, 2, &inp, |a, b, c, s| {
        oracle_pair_f16(a, b, c, s, false)
    });
    assert_eq!(q, want, "F16 q vs oracle");
    let (dt, k) = tensor(&after, "k");
    assert_eq!(dt, Dtype::F32);
    let k: Vec<u32> = k
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let want = expected(&inp.k, 1, &inp, |a, b, c, s| {
        oracle_pair_f32(a, b, c, s, false)
    });
    assert_eq!(k, want, "F32 k vs oracle");
}

/// The GPU backend writes the same bytes as the CPU backend for F16 and F32 tensors, in every
/// arithmetic mode they share bit for bit (exact, hf), both pairings and directions.
#[test]
fn cli_f16_f32_gpu_equals_cpu() {
    if !gpu_available("cli_f16_f32_gpu_equals_cpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inp_path = dir.path().join("in.safetensors");
    make_input(&inp_path);
    for extra in [
        &["--tensors", "q,k"][..],
        &["--tensors", "q,k", "--rotation", "half", "--inverse"],
        &["--tensors", "k,q", "--precision", "hf"],
        &["--tensors", "q,k", "--precision", "hf", "--inverse"],
    ] {
        let mut outs = Vec::new();
        for backend in ["cpu", "gpu"] {
            let out = dir.path().join(format!("out_{backend}.safetensors"));
            let mut args = extra.to_vec();
            args.extend_from_slice(&["--backend", backend]);
            run_apply(&inp_path, &out, &args);
            outs.push(std::fs::read(&out).unwrap());
        }
        assert!(outs[0] == outs[1], "{extra:?}: GPU and CPU outputs differ");
    }
}

/// F64 and integer tensors named in --tensors are refused (exit 2) with one sentence naming
/// the tensor and its dtype; nothing is written.
#[test]
fn cli_refuses_f64_and_integer_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let inp_path = dir.path().join("in.safetensors");
    make_input(&inp_path);
    for (name, dtype) in [("scores", "F64"), ("ids", "I64")] {
        let out = dir.path().join("out.safetensors");
        let o = bfrope(&[
            "apply",
            inp_path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--tensors",
            &format!("q,{name}"),
            "--cos",
            "cos",
            "--sin",
            "sin",
            "--backend",
            "cpu",
        ]);
        let e = err(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {e}");
        assert!(
            e.contains(&format!("{name:?}")) && e.contains(dtype) && e.trim().lines().count() == 1,
            "{name}: {e}"
        );
        assert!(!out.exists(), "{name}: no output after a refusal");
    }
}
