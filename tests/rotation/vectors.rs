//! The conformance vectors and the grader: every expected output against the independent
//! BigInt oracle, the whole set pinned by its SHA-256, and `bfrope grade` on a perfect results
//! file, on a one-bit change in each class, and on malformed files.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use bfrope::vectors::{self, CLASSES};
use bfrope::{Direction, Dtype, Pairing};
use common::cli::{bfrope, stderr};
use common::oracle::{oracle_pair_in, BF16, F16, F32};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

/// The SHA-256 of `bfrope vectors -o DIR` (all dtypes), as `sha256sum` prints it.
const PINNED: &str = include_str!("../data/vectors.sha256");

#[test]
fn every_expected_output_equals_the_oracle() {
    let set = vectors::generate(&[Dtype::Bf16, Dtype::F16, Dtype::F32]).unwrap();
    let mut checked = 0u64;
    for g in &set.groups {
        let fmt = match g.dtype {
            Dtype::Bf16 => BF16,
            Dtype::F16 => F16,
            Dtype::F32 => F32,
        };
        let [b, s, h, d] = g.shape;
        let pairs = g.rotary_dim / 2;
        let inverse = g.direction == Direction::Inverse;
        for token in 0..b * s {
            let row = token % s;
            for head in 0..h {
                let base = (token * h + head) * d;
                for i in 0..pairs {
                    let (e0, e1) = g.pairing.elements(i, pairs);
                    let (c, sn) = (g.cos[row * pairs + i], g.sin[row * pairs + i]);
                    let (x0, x1) = (g.input[base + e0], g.input[base + e1]);
                    let (y0, y1) = oracle_pair_in(
                        fmt,
                        x0 as u64,
                        x1 as u64,
                        c.to_bits(),
                        sn.to_bits(),
                        inverse,
                    );
                    for (e, y) in [(e0, y0), (e1, y1)] {
                        assert_eq!(
                            g.expected[base + e] as u64,
                            y,
                            "{} element {}: x = ({x0:#x}, {x1:#x}), (cos, sin) = ({c:e}, {sn:e})",
                            g.name,
                            base + e
                        );
                    }
                    checked += 2;
                }
                for k in g.rotary_dim..d {
                    assert_eq!(
                        g.expected[base + k],
                        g.input[base + k],
                        "{} pass-through",
                        g.name
                    );
                }
            }
        }
    }
    assert!(checked > 3_000_000, "{checked}");
}

#[test]
fn every_class_has_members_in_every_dtype_that_has_it() {
    let set = vectors::generate(&[Dtype::Bf16, Dtype::F16, Dtype::F32]).unwrap();
    for dtype in [Dtype::Bf16, Dtype::F16, Dtype::F32] {
        let mut counts = [0usize; CLASSES.len()];
        for g in set.groups.iter().filter(|g| g.dtype == dtype) {
            for &m in &g.classes {
                for (j, c) in counts.iter_mut().enumerate() {
                    *c += (m >> j & 1) as usize;
                }
            }
        }
        for (c, n) in CLASSES.iter().zip(counts) {
            let expected = !(dtype == Dtype::F32 && c.name == "every-x0");
            assert_eq!(n > 0, expected, "{dtype}: class {} has {n} outputs", c.name);
        }
        // Ties are built, not found by chance: hundreds in every dtype.
        let ties = CLASSES.iter().position(|c| c.name == "tie").unwrap();
        assert!(counts[ties] >= 1000, "{dtype}: {} ties", counts[ties]);
    }
    assert!(set
        .groups
        .iter()
        .any(|g| g.pairing == Pairing::HalfSplit && g.rotary_dim < g.shape[3]));
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn vectors_dir(dtype: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let o = bfrope(&["vectors", "-o", out.to_str().unwrap(), "--dtype", dtype]);
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

#[test]
fn the_written_set_is_the_pinned_one() {
    let dir = vectors_dir("all");
    let got = format!(
        "{}  vectors.json\n{}  vectors.safetensors\n",
        sha256(&dir.path().join("v/vectors.json")),
        sha256(&dir.path().join("v/vectors.safetensors"))
    );
    assert_eq!(
        got, PINNED,
        "the vectors changed: every byte is part of the published set; if the change is meant, \
         update tests/data/vectors.sha256 and say why in docs/VECTORS.md"
    );
}

/// The groups' expected outputs renamed `<group>.output`, with `edit` applied to the bytes
/// of each group.
fn results_from(dir: &Path, out: &Path, edit: &dyn Fn(&str, &mut Vec<u8>)) {
    let bytes = std::fs::read(dir.join("vectors.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, StDtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in st.tensors() {
        if let Some(group) = name.strip_suffix(".expected") {
            let mut data = t.data().to_vec();
            edit(group, &mut data);
            owned.push((
                format!("{group}.output"),
                t.dtype(),
                t.shape().to_vec(),
                data,
            ));
        }
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(out, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// `(group, element, dtype)` of an output of class `bit` that is not NaN, in `set`.
fn member(set: &vectors::VectorSet, bit: u16) -> (String, usize, Dtype) {
    for g in &set.groups {
        for (e, &m) in g.classes.iter().enumerate() {
            if m & (1 << bit) != 0 {
                return (g.name.clone(), e, g.dtype);
            }
        }
    }
    panic!("no output of class bit {bit}");
}

fn grade_json(dir: &Path, results: &Path) -> (i32, serde_json::Value, String) {
    let o = bfrope(&[
        "grade",
        dir.to_str().unwrap(),
        results.to_str().unwrap(),
        "--json",
    ]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap(), v, stderr(&o))
}

#[test]
fn grade_passes_the_exact_outputs_and_names_the_class_of_a_one_bit_change() {
    let tmp = vectors_dir("bf16");
    let dir = tmp.path().join("v");
    let perfect = tmp.path().join("perfect.safetensors");
    results_from(&dir, &perfect, &|_, _| {});
    let (code, v, err) = grade_json(&dir, &perfect);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["pass"], true);
    assert_eq!(v["mismatches"], 0);
    let text = bfrope(&["grade", dir.to_str().unwrap(), perfect.to_str().unwrap()]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("PASS"));

    let set = vectors::generate(&[Dtype::Bf16]).unwrap();
    for class in CLASSES {
        let (group, e, dtype) = member(&set, class.bit);
        let g = set.groups.iter().find(|g| g.name == group).unwrap();
        let want = g.expected[e];
        // One bit of the output changed; a NaN output (NaN-ness is what counts) becomes +0.
        let changed: u16 = if vectors::value(dtype, want).is_nan() {
            0
        } else {
            want as u16 ^ 1
        };
        let results = tmp.path().join(format!("{}.safetensors", class.name));
        results_from(&dir, &results, &|name, data| {
            if name == group {
                data[2 * e..2 * e + 2].copy_from_slice(&changed.to_le_bytes());
            }
        });
        let (code, v, err) = grade_json(&dir, &results);
        assert_eq!(code, 1, "class {}: {err}", class.name);
        assert_eq!(v["mismatches"], 1, "class {}", class.name);
        let graded = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["group"] == group.as_str())
            .unwrap();
        assert_eq!(
            graded["classes"][class.name]["mismatches"], 1,
            "class {} of {group}: {graded}",
            class.name
        );
        let text = bfrope(&["grade", dir.to_str().unwrap(), results.to_str().unwrap()]);
        let out = String::from_utf8_lossy(&text.stdout);
        assert!(
            out.contains(&format!("  {}", class.name)) && out.contains("FAIL"),
            "class {}: {out}",
            class.name
        );
    }
}

#[test]
fn grade_refuses_malformed_results_naming_the_output() {
    let tmp = vectors_dir("f32");
    let dir = tmp.path().join("v");
    let refused = |results: &Path, needle: &str| {
        let o = bfrope(&["grade", dir.to_str().unwrap(), results.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{err:?} does not say {needle:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
    };
    // A missing output.
    let bytes = std::fs::read(dir.join("vectors.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.ends_with(".expected"))
        .map(str::to_string)
        .collect();
    let dropped = names[0].replace(".expected", ".output");
    let missing = tmp.path().join("missing.safetensors");
    {
        let mut tensors: HashMap<String, TensorView> = HashMap::new();
        for n in &names[1..] {
            let t = st.tensor(n).unwrap();
            tensors.insert(n.replace(".expected", ".output"), t);
        }
        std::fs::write(&missing, safetensors::serialize(tensors, None).unwrap()).unwrap();
    }
    refused(&missing, &dropped);
    // A misshapen output.
    let misshapen = tmp.path().join("misshapen.safetensors");
    let shapes = tmp.path().join("shapes.safetensors");
    results_from(&dir, &shapes, &|_, _| {});
    {
        let b = std::fs::read(&shapes).unwrap();
        let s = SafeTensors::deserialize(&b).unwrap();
        let mut tensors: HashMap<String, TensorView> = HashMap::new();
        let mut first = true;
        for (n, t) in s.tensors() {
            if n == dropped {
                let len = t.shape().iter().product::<usize>();
                tensors.insert(n, TensorView::new(t.dtype(), vec![len], t.data()).unwrap());
                first = false;
            } else {
                tensors.insert(n, t);
            }
        }
        assert!(!first);
        std::fs::write(&misshapen, safetensors::serialize(tensors, None).unwrap()).unwrap();
    }
    refused(&misshapen, &dropped);
    // Not a safetensors file at all.
    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a tensor file").unwrap();
    refused(&garbage, "garbage.safetensors");
    refused(&tmp.path().join("absent.safetensors"), "absent.safetensors");
}

#[test]
fn vectors_never_replaces_a_file() {
    let tmp = vectors_dir("f32");
    let dir = tmp.path().join("v");
    let before = std::fs::read(dir.join("vectors.json")).unwrap();
    let o = bfrope(&["vectors", "-o", dir.to_str().unwrap(), "--dtype", "f32"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"));
    assert_eq!(std::fs::read(dir.join("vectors.json")).unwrap(), before);
    let file = tmp.path().join("file");
    std::fs::write(&file, b"mine").unwrap();
    let o = bfrope(&["vectors", "-o", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

#[test]
fn the_doc_lists_every_class_with_its_bit() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/VECTORS.md")).unwrap();
    for c in CLASSES {
        assert!(
            doc.contains(&format!("| {} | `{}` |", c.bit, c.name)),
            "docs/VECTORS.md has no row for class {} ({})",
            c.bit,
            c.name
        );
    }
}

/// The page's path (no safetensors crate): the exact outputs as a results file grade as a pass
/// against the CLI's vectors file, a changed output fails, a missing one is an error naming it.
#[test]
fn the_pages_reader_and_grader_agree_with_the_cli() {
    let set = vectors::generate(&[Dtype::F16]).unwrap();
    let perfect = vectors::exact_results(&set);
    let tmp = vectors_dir("f16");
    let vfile = std::fs::read(tmp.path().join("v/vectors.safetensors")).unwrap();
    let grades = vectors::grade_files("vectors", &vfile, "results", &perfect).unwrap();
    assert_eq!(grades.len(), set.groups.len());
    assert!(grades.iter().all(|g| g.all.mismatches == 0));
    // The CLI grades the same file as a pass too.
    let results = tmp.path().join("perfect.safetensors");
    std::fs::write(&results, &perfect).unwrap();
    let (code, _, err) = grade_json(&tmp.path().join("v"), &results);
    assert_eq!(code, 0, "{err}");
    // The reader reads the CLI's file.
    let read = vectors::read_safetensors(&vfile).unwrap();
    let g = &set.groups[0];
    let (_, (dtype, shape, data)) = read
        .iter()
        .find(|(n, _)| *n == format!("{}.expected", g.name))
        .unwrap();
    assert_eq!((*dtype, &shape[..]), ("F16", &g.shape[..]));
    assert_eq!(vectors::patterns(Dtype::F16, data), g.expected);
    // A changed output is a mismatch; a missing one is an error naming it.
    let mut changed = perfect.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x40;
    let grades = vectors::grade_files("vectors", &vfile, "results", &changed).unwrap();
    assert_eq!(grades.iter().map(|g| g.all.mismatches).sum::<u64>(), 1);
    let other = vectors_dir("f32");
    let f32_file = std::fs::read(other.path().join("v/vectors.safetensors")).unwrap();
    let e = vectors::grade_files("vectors", &f32_file, "results", &perfect)
        .unwrap_err()
        .to_string();
    assert!(e.contains("f32-") && e.contains(".output"), "{e}");
    assert!(vectors::read_safetensors(b"garbage!").is_err());
}
