//! `bfrope apply` on ONNX RotaryEmbedding (opset 23) inputs: the node tests of ONNX's
//! `onnx/backend/test/case/node/rotaryembedding.py` with their shapes and attributes, inputs
//! generated here from a seed (uniform [0, 1) as `np.random.rand`, position ids below 50),
//! each file holding ONNX's own inputs (`input`, `cos_cache`, `sin_cache`, `position_ids`)
//! in X's dtype (FLOAT, FLOAT16, BFLOAT16). Every output is checked against ONNX's reference
//! arithmetic (`onnx/reference/ops/op_rotary_embedding.py`) computed here element by element
//! with the independent exact oracle, on the CPU path and the GPU. Then the equivalences: the
//! 3-D `[B, S, hidden]` input with `--heads` gives the same bytes as the same data as 4-D BSHD
//! `[B, S, N, hidden/N]`, and F16/BF16 tables give the same bytes as their values in F32
//! tables. Every contradiction (`--heads` against the tensor, a 3-D tensor without it, a
//! table of another dtype) is refused with one sentence and exit 2.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::Path;

use common::cli::{bfrope, gpu_available, le16, le32f, le64, read_all, stderr as err, write_any};
use common::oracle::{oracle_pair_in, Format, BF16, F16, F32};
use common::rng;
use rand::Rng;
use safetensors::tensor::Dtype;

/// One node test of ONNX's `rotaryembedding.py`.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    /// X's shape: `[B, num_heads, S, head_size]` or `[B, S, hidden]`.
    x: &'static [usize],
    /// The `num_heads` attribute (3-D input only).
    num_heads: Option<usize>,
    interleaved: bool,
    /// The `rotary_embedding_dim` attribute (0: head_size).
    rotary_dim: usize,
    /// With `position_ids` `[B, S]` the caches are `[50, R/2]`, else `[B, S, R/2]`.
    position_ids: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "test_rotary_embedding",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: false,
        rotary_dim: 0,
        position_ids: true,
    },
    Case {
        name: "test_rotary_embedding_3d_input",
        x: &[2, 3, 32],
        num_heads: Some(4),
        interleaved: false,
        rotary_dim: 0,
        position_ids: true,
    },
    Case {
        name: "test_rotary_embedding_interleaved",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: true,
        rotary_dim: 0,
        position_ids: true,
    },
    Case {
        name: "test_rotary_embedding_with_rotary_dim",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: false,
        rotary_dim: 4,
        position_ids: true,
    },
    Case {
        name: "test_rotary_embedding_with_interleaved_rotary_dim",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: true,
        rotary_dim: 4,
        position_ids: true,
    },
    Case {
        name: "test_rotary_embedding_no_position_ids",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: false,
        rotary_dim: 0,
        position_ids: false,
    },
    Case {
        name: "test_rotary_embedding_no_position_ids_interleaved",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: true,
        rotary_dim: 0,
        position_ids: false,
    },
    Case {
        name: "test_rotary_embedding_no_position_ids_rotary_dim",
        x: &[2, 4, 3, 8],
        num_heads: None,
        interleaved: false,
        rotary_dim: 4,
        position_ids: false,
    },
];

/// Rows of ONNX's position-indexed caches.
const MAX_POS: usize = 50;

/// The three dtypes ONNX's RotaryEmbedding takes (X, cos_cache and sin_cache alike).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    F32,
    F16,
    Bf16,
}

impl Ty {
    fn st(self) -> Dtype {
        match self {
            Ty::F32 => Dtype::F32,
            Ty::F16 => Dtype::F16,
            Ty::Bf16 => Dtype::BF16,
        }
    }
    fn format(self) -> Format {
        match self {
            Ty::F32 => F32,
            Ty::F16 => F16,
            Ty::Bf16 => BF16,
        }
    }
    fn bytes(self) -> usize {
        if self == Ty::F32 {
            4
        } else {
            2
        }
    }
    /// The bit pattern of this dtype nearest to `v` (ties to even).
    fn round(self, v: f32) -> u64 {
        match self {
            Ty::F32 => v.to_bits() as u64,
            Ty::F16 => half::f16::from_f32(v).to_bits() as u64,
            Ty::Bf16 => half::bf16::from_f32(v).to_bits() as u64,
        }
    }
    /// The f32 bits of a pattern of this dtype (exact: every f16 and bf16 is an f32).
    fn widen(self, bits: u64) -> u32 {
        match self {
            Ty::F32 => bits as u32,
            Ty::F16 => half::f16::from_bits(bits as u16).to_f32().to_bits(),
            Ty::Bf16 => (bits as u32) << 16,
        }
    }
    /// Patterns as little-endian bytes.
    fn le(self, v: &[u64]) -> Vec<u8> {
        match self {
            Ty::F32 => v.iter().flat_map(|&b| (b as u32).to_le_bytes()).collect(),
            _ => v.iter().flat_map(|&b| (b as u16).to_le_bytes()).collect(),
        }
    }
    /// Little-endian bytes as patterns.
    fn patterns(self, b: &[u8]) -> Vec<u64> {
        b.chunks_exact(self.bytes())
            .map(|c| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect()
    }
    fn name(self) -> &'static str {
        match self {
            Ty::F32 => "FLOAT",
            Ty::F16 => "FLOAT16",
            Ty::Bf16 => "BFLOAT16",
        }
    }
}

/// A case's inputs in one dtype, as ONNX hands them in.
struct Inputs {
    x: Vec<u64>,
    cos: Vec<u64>,
    sin: Vec<u64>,
    cache_shape: Vec<usize>,
    position_ids: Option<Vec<i64>>,
}

impl Case {
    /// `(batch, seq, heads, head_size)`.
    fn dims(&self) -> (usize, usize, usize, usize) {
        match (self.x, self.num_heads) {
            (&[b, h, s, d], None) => (b, s, h, d),
            (&[b, s, hidden], Some(n)) => (b, s, n, hidden / n),
            _ => unreachable!("an ONNX case is 4-D, or 3-D with num_heads"),
        }
    }
    /// The case with X as ONNX's 3-D input `[B, S, N·D]` and `num_heads` N (every case is
    /// `B = 2, S = 3, N = 4, D = 8`).
    fn as_3d(&self) -> Case {
        assert_eq!(self.dims(), (2, 3, 4, 8), "{}", self.name);
        Case {
            x: &[2, 3, 32],
            num_heads: Some(4),
            ..*self
        }
    }
    fn rotary(&self) -> usize {
        if self.rotary_dim == 0 {
            self.dims().3
        } else {
            self.rotary_dim
        }
    }
    fn inputs(&self, ty: Ty, seed: u64) -> Inputs {
        let mut r = rng(seed);
        let (b, s, h, d) = self.dims();
        let half = self.rotary() / 2;
        let mut uniform =
            |n: usize| -> Vec<u64> { (0..n).map(|_| ty.round(r.random::<f32>())).collect() };
        let x = uniform(b * s * h * d);
        let cache_shape = if self.position_ids {
            vec![MAX_POS, half]
        } else {
            vec![b, s, half]
        };
        let n: usize = cache_shape.iter().product();
        let sin = uniform(n);
        let cos = uniform(n);
        let position_ids = self.position_ids.then(|| {
            (0..b * s)
                .map(|_| r.random_range(0..MAX_POS as i64))
                .collect()
        });
        Inputs {
            x,
            cos,
            sin,
            cache_shape,
            position_ids,
        }
    }

    /// ONNX's reference (`op_rotary_embedding.py`) with every product-sum decided by the
    /// exact oracle: X as `[B, S, N, D]` (a 4-D X transposed from `[B, N, S, D]`, a 3-D one
    /// reshaped), cos/sin gathered by position_ids (or taken per token), the first
    /// `rotary_embedding_dim` dims split in halves or interleaved, the rest copied.
    fn reference(&self, ty: Ty, inp: &Inputs, interleaved: bool) -> Vec<u64> {
        let (b, s, h, d) = self.dims();
        let r = self.rotary();
        let at = |bi: usize, si: usize, hi: usize, di: usize| match self.x.len() {
            4 => ((bi * h + hi) * s + si) * d + di,
            _ => ((bi * s + si) * h + hi) * d + di,
        };
        let mut y = inp.x.clone();
        for bi in 0..b {
            for si in 0..s {
                let row = match &inp.position_ids {
                    Some(p) => p[bi * s + si] as usize,
                    None => bi * s + si,
                };
                for hi in 0..h {
                    for i in 0..r / 2 {
                        let (i0, i1) = if interleaved {
                            (2 * i, 2 * i + 1)
                        } else {
                            (i, i + r / 2)
                        };
                        let (e0, e1) = (at(bi, si, hi, i0), at(bi, si, hi, i1));
                        let c = ty.widen(inp.cos[row * r / 2 + i]);
                        let sn = ty.widen(inp.sin[row * r / 2 + i]);
                        let (y0, y1) =
                            oracle_pair_in(ty.format(), inp.x[e0], inp.x[e1], c, sn, false);
                        y[e0] = y0;
                        y[e1] = y1;
                    }
                }
            }
        }
        y
    }

    /// The flags that say what the node's attributes say.
    fn flags(&self) -> Vec<String> {
        let mut f = vec![
            "--rotation".to_string(),
            if self.interleaved {
                "interleaved"
            } else {
                "half"
            }
            .to_string(),
        ];
        match self.num_heads {
            Some(n) => f.extend(["--heads".to_string(), n.to_string()]),
            None => f.extend(["--layout".to_string(), "bhsd".to_string()]),
        }
        if self.rotary_dim != 0 {
            f.extend(["--rotary-dim".to_string(), self.rotary_dim.to_string()]);
        }
        f
    }
}

fn run(input: &Path, output: &Path, flags: &[String]) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let mut args: Vec<&str> = vec![
        "apply",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ];
    args.extend(flags.iter().map(String::as_str));
    let o = bfrope(&args);
    assert!(o.status.success(), "bfrope {args:?}: {}", err(&o));
    read_all(output)
}

fn tensor<'a>(all: &'a [(String, Dtype, Vec<usize>, Vec<u8>)], name: &str) -> &'a [u8] {
    &all.iter()
        .find(|t| t.0 == name)
        .expect("tensor in output")
        .3
}

fn backends() -> Vec<&'static str> {
    let mut b = vec!["cpu"];
    if gpu_available("the ONNX RotaryEmbedding CLI tests") {
        b.push("gpu");
    }
    b
}

/// Every node test of ONNX's RotaryEmbedding, in FLOAT, FLOAT16 and BFLOAT16 (X and caches
/// in one dtype, as the operator requires), on ONNX's own inputs with nothing reshaped and no
/// tensor named: each output equals ONNX's reference arithmetic decided exactly, and the
/// inputs that are not X come out unchanged.
#[test]
fn onnx_node_tests_match_the_exact_reference() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends() {
        for (k, case) in CASES.iter().enumerate() {
            for ty in [Ty::F32, Ty::F16, Ty::Bf16] {
                let what = format!("{} {} on {backend}", case.name, ty.name());
                let inp = case.inputs(ty, 0x0_2300 + k as u64);
                let input = dir
                    .path()
                    .join(format!("{}-{}.safetensors", case.name, ty.name()));
                let mut tensors = vec![
                    ("input", ty.st(), case.x.to_vec(), ty.le(&inp.x)),
                    (
                        "cos_cache",
                        ty.st(),
                        inp.cache_shape.clone(),
                        ty.le(&inp.cos),
                    ),
                    (
                        "sin_cache",
                        ty.st(),
                        inp.cache_shape.clone(),
                        ty.le(&inp.sin),
                    ),
                ];
                let (b, s, _, _) = case.dims();
                if let Some(p) = &inp.position_ids {
                    tensors.push(("position_ids", Dtype::I64, vec![b, s], le64(p)));
                }
                write_any(&input, &tensors);
                let mut flags = case.flags();
                flags.extend(
                    [
                        "--cos",
                        "cos_cache",
                        "--sin",
                        "sin_cache",
                        "--backend",
                        backend,
                    ]
                    .map(String::from),
                );
                if inp.position_ids.is_some() {
                    flags.extend(["--positions", "position_ids"].map(String::from));
                }
                let out = dir.path().join("out.safetensors");
                let all = run(&input, &out, &flags);
                let got = ty.patterns(tensor(&all, "input"));
                let want = case.reference(ty, &inp, case.interleaved);
                let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(got.len(), want.len(), "{what}");
                assert_eq!(
                    bad,
                    0,
                    "{what}: {bad} of {} outputs differ from the exact reference",
                    want.len()
                );
                // The other pairing gives other bits: the comparison above can tell them apart.
                assert_ne!(
                    got,
                    case.reference(ty, &inp, !case.interleaved),
                    "{what}: the pairing is not tested"
                );
                let x = all.iter().find(|t| t.0 == "input").unwrap();
                assert_eq!(
                    (x.1, x.2.as_slice()),
                    (ty.st(), case.x),
                    "{what}: X keeps its dtype and shape"
                );
                for (name, dtype, shape, bytes) in &tensors[1..] {
                    let t = all.iter().find(|t| t.0 == *name).unwrap();
                    assert_eq!(
                        (&t.1, &t.2, &t.3),
                        (dtype, shape, bytes),
                        "{what}: {name} copied"
                    );
                }
            }
        }
    }
}

/// ONNX's 3-D input `[B, S, hidden]` with `--heads N` is the same data as 4-D BSHD
/// `[B, S, N, hidden/N]` (identical output bytes, the 3-D shape kept), and the F16/BF16
/// caches give the same bytes as their values widened into F32 tables — on every ONNX case
/// turned into a 3-D one (num_heads 4) and every dtype.
#[test]
fn onnx_3d_input_equals_4d_bshd_and_half_tables_equal_f32_tables() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends() {
        for (k, case) in CASES.iter().enumerate() {
            let (b, s, h, d) = case.dims();
            let three = case.as_3d();
            for ty in [Ty::F32, Ty::F16, Ty::Bf16] {
                let what = format!("{} as 3-D, {} on {backend}", case.name, ty.name());
                let inp = case.inputs(ty, 0x3D00 + k as u64);
                // X of the 3-D case in memory: [B, S, N·D]; the 4-D case's data is [B, N, S, D],
                // so the same values are laid out anew (one tensor per layout, the same numbers).
                let mut x3 = vec![0u64; inp.x.len()];
                for bi in 0..b {
                    for si in 0..s {
                        for hi in 0..h {
                            for di in 0..d {
                                let from = match case.x.len() {
                                    4 => ((bi * h + hi) * s + si) * d + di,
                                    _ => ((bi * s + si) * h + hi) * d + di,
                                };
                                x3[((bi * s + si) * h + hi) * d + di] = inp.x[from];
                            }
                        }
                    }
                }
                let widen = |v: &[u64]| -> Vec<f32> {
                    v.iter().map(|&p| f32::from_bits(ty.widen(p))).collect()
                };
                let input = dir
                    .path()
                    .join(format!("3d-{}-{}.safetensors", case.name, ty.name()));
                let mut tensors = vec![
                    ("x3", ty.st(), vec![b, s, h * d], ty.le(&x3)),
                    ("x4", ty.st(), vec![b, s, h, d], ty.le(&x3)),
                    ("cos", ty.st(), inp.cache_shape.clone(), ty.le(&inp.cos)),
                    ("sin", ty.st(), inp.cache_shape.clone(), ty.le(&inp.sin)),
                    (
                        "cos32",
                        Dtype::F32,
                        inp.cache_shape.clone(),
                        le32f(&widen(&inp.cos)),
                    ),
                    (
                        "sin32",
                        Dtype::F32,
                        inp.cache_shape.clone(),
                        le32f(&widen(&inp.sin)),
                    ),
                ];
                if let Some(p) = &inp.position_ids {
                    tensors.push(("position_ids", Dtype::I64, vec![b, s], le64(p)));
                }
                write_any(&input, &tensors);
                let hs = h.to_string();
                let mut outputs = Vec::new();
                for (x, heads, table) in [
                    ("x3", Some(hs.as_str()), "cos"),
                    ("x4", None, "cos"),
                    ("x4", Some(hs.as_str()), "cos"),
                    ("x3", Some(hs.as_str()), "cos32"),
                ] {
                    let mut flags = three.flags();
                    if heads.is_none() {
                        let at = flags.iter().position(|f| f == "--heads").unwrap();
                        flags.drain(at..at + 2);
                    }
                    let sin_table = table.replace("cos", "sin");
                    flags.extend(
                        [
                            "--tensors",
                            x,
                            "--cos",
                            table,
                            "--sin",
                            &sin_table,
                            "--backend",
                            backend,
                        ]
                        .map(String::from),
                    );
                    if inp.position_ids.is_some() {
                        flags.extend(["--positions", "position_ids"].map(String::from));
                    }
                    let out = dir.path().join("out.safetensors");
                    let all = run(&input, &out, &flags);
                    let shape = &all.iter().find(|t| t.0 == x).unwrap().2;
                    assert_eq!(
                        shape,
                        &tensors.iter().find(|t| t.0 == x).unwrap().2,
                        "{what}: {x} keeps its shape"
                    );
                    outputs.push((
                        format!("{x} heads {heads:?} tables {table}"),
                        tensor(&all, x).to_vec(),
                    ));
                }
                // The 3-D run against the exact reference too (the equalities alone would
                // pass if every form were wrong the same way).
                let want = three.reference(ty, &Inputs { x: x3, ..inp }, case.interleaved);
                assert_eq!(
                    ty.patterns(&outputs[0].1),
                    want,
                    "{what}: 3-D output vs the exact reference"
                );
                for (label, bytes) in &outputs[1..] {
                    assert_eq!(
                        bytes, &outputs[0].1,
                        "{what}: {label} differs from {}",
                        outputs[0].0
                    );
                }
            }
        }
    }
}

/// `--heads` against the tensor, a 3-D tensor without it, `--layout bhsd` with a 3-D tensor,
/// and tables of a dtype other than F32, F16 and BF16: exit 2, one sentence naming the values,
/// no output.
#[test]
fn onnx_contradictions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    let bf = |n: usize| le16(&vec![0x3F80u16; n]);
    write_any(
        &input,
        &[
            ("x3", Dtype::BF16, vec![2, 3, 32], bf(192)),
            ("x30", Dtype::BF16, vec![2, 3, 30], bf(180)),
            ("q", Dtype::BF16, vec![2, 3, 4, 8], bf(192)),
            ("packed", Dtype::BF16, vec![6, 4, 8], bf(192)),
            ("cos", Dtype::F32, vec![50, 4], le32f(&[1.0; 200])),
            ("sin", Dtype::F32, vec![50, 4], le32f(&[0.0; 200])),
            ("cos64", Dtype::F64, vec![50, 4], vec![0; 1600]),
            ("sin_i32", Dtype::I32, vec![50, 4], vec![0; 800]),
            ("cos_u8", Dtype::U8, vec![50, 4], vec![0; 200]),
            ("cu", Dtype::I64, vec![3], le64(&[0, 3, 6])),
        ],
    );
    let out = dir.path().join("out.safetensors");
    let refused = |extra: &[&str], needles: &[&str]| {
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
        for needle in needles {
            assert!(e.contains(needle), "{extra:?}: expected {needle:?} in {e}");
        }
        assert!(!out.exists(), "{extra:?}: no output");
    };
    // hidden not divisible by N.
    refused(
        &["--tensors", "x30", "--heads", "4"],
        &["x30", "[2, 3, 30]", "hidden size 30", "--heads 4"],
    );
    // A 4-D tensor whose heads disagree, in either layout; a packed one too.
    refused(
        &["--tensors", "q", "--heads", "2"],
        &["\"q\"", "[2, 3, 4, 8]", "4 heads", "--heads is 2"],
    );
    refused(
        &["--tensors", "q", "--heads", "4", "--layout", "bhsd"],
        &["[2, 3, 4, 8]", "3 heads", "--heads is 4"],
    );
    refused(
        &[
            "--tensors",
            "packed",
            "--heads",
            "2",
            "--layout",
            "thd",
            "--cu-seqlens",
            "cu",
        ],
        &["[6, 4, 8]", "4 heads", "--heads is 2"],
    );
    // By default every 3-D and 4-D tensor is taken with --heads: one that disagrees is named.
    refused(&["--heads", "4"], &["x30", "hidden size 30"]);
    // No heads at all.
    refused(&["--tensors", "x3", "--heads", "0"], &["--heads 0"]);
    // A 3-D tensor without --heads (bshd is the default layout, and explicit).
    refused(&["--tensors", "x3"], &["x3", "[2, 3, 32]", "needs --heads"]);
    refused(
        &["--tensors", "x3", "--layout", "bshd"],
        &["[2, 3, 32]", "needs --heads"],
    );
    // --layout bhsd with a 3-D tensor, with or without --heads.
    refused(
        &["--tensors", "x3", "--heads", "4", "--layout", "bhsd"],
        &["[2, 3, 32]", "--layout bhsd", "4-D"],
    );
    refused(
        &["--tensors", "x3", "--layout", "bhsd"],
        &["[2, 3, 32]", "--layout bhsd"],
    );
    // Tables of other dtypes, each named.
    refused(
        &["--tensors", "q", "--cos", "cos64", "--sin", "sin"],
        &["cos64", "F64", "F32, F16 or BF16"],
    );
    refused(
        &["--tensors", "q", "--cos", "cos", "--sin", "sin_i32"],
        &["sin_i32", "I32"],
    );
    refused(
        &[
            "--tensors",
            "x3",
            "--heads",
            "4",
            "--cos",
            "cos_u8",
            "--sin",
            "sin",
        ],
        &["cos_u8", "U8"],
    );

    // And the accepted forms of the same file, for contrast: 3-D with --heads, 4-D with
    // matching --heads, packed with matching --heads.
    for extra in [
        &[
            "--tensors",
            "x3",
            "--heads",
            "4",
            "--cos",
            "cos",
            "--sin",
            "sin",
        ][..],
        &["--tensors", "q", "--heads", "4"],
        &["--tensors", "q", "--heads", "3", "--layout", "bhsd"],
        &[
            "--tensors",
            "packed",
            "--heads",
            "4",
            "--layout",
            "thd",
            "--cu-seqlens",
            "cu",
        ],
    ] {
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
        assert!(o.status.success(), "{extra:?}: {}", err(&o));
        std::fs::remove_file(&out).unwrap();
    }
}
