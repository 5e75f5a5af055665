//! Running the `bfrope` binary as a user does, for the CLI tests: the command, its stderr,
//! safetensors inputs, and whether the GPU half of a test can run.

use std::path::Path;
use std::process::{Command, Output};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

/// Runs `bfrope` with `args`.
pub fn bfrope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bfrope"))
        .args(args)
        .output()
        .expect("the bfrope binary runs")
}

/// Its stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Little-endian bf16 bytes as bit patterns.
pub fn bits(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Bit patterns as little-endian bytes.
pub fn le16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|b| b.to_le_bytes()).collect()
}

/// I64 values as little-endian bytes.
pub fn le64(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|b| b.to_le_bytes()).collect()
}

/// F32 values as little-endian bytes.
pub fn le32f(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes a safetensors file of `(name, dtype, shape, bytes)`.
pub fn write_any(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, dt, s, b)| (n.to_string(), TensorView::new(*dt, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// Whether `bfrope info` finds an adapter. Without one the GPU half of `what` is skipped
/// loudly; under CI=true that is a failure (GPU tests never pass by skipping in CI).
pub fn gpu_available(what: &str) -> bool {
    let o = bfrope(&["info", "--json"]);
    assert!(
        o.status.success(),
        "bfrope info --json failed: {}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("info --json is JSON");
    let any = !v["adapters"].as_array().expect("adapters array").is_empty();
    if !any {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and wgpu finds no adapter: the GPU half of {what} must run in CI"
        );
        eprintln!("SKIP: no GPU adapter on this machine; the GPU half of {what} did not run");
    }
    any
}

/// `(name, dtype, shape, bytes)` of every tensor of a safetensors file, sorted by name.
pub fn read_all(path: &Path) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}
