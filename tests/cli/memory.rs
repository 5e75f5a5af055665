//! Bounded memory and reproducible bytes (docs/CONTRACT.md §6–§7): `bfrope apply` maps its input and
//! streams its output, so a 1 GiB rotation peaks far below the file's size on the CPU path
//! and on the GPU path (lavapipe, whose "device memory" is this process's memory too);
//! the output keeps the input's header verbatim (order, `__metadata__`), and repeats give
//! the same bytes.
//!
//! Peak resident memory is measured with `/usr/bin/time -f %M` (the test script installs
//! `time`). `BFROPE_RSS_GIB=2` measures a 2 GiB tensor instead; `BFROPE_RSS_BIN=path`
//! measures another build of the binary (the figures of the README and the closing notes).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> PathBuf {
    std::env::var_os("BFROPE_RSS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bfrope")))
}

/// Writes a safetensors file with one BF16 `q` of `dims` (pseudo-random normal-range bits,
/// generated piece by piece) and a small F32 `w` after it, with metadata.
fn write_big(path: &Path, dims: [usize; 4]) -> u64 {
    let n: usize = dims.iter().product();
    let bytes = n as u64 * 2;
    let header = format!(
        r#"{{"__metadata__":{{"format":"pt","note":"bfrope memory test"}},"q":{{"dtype":"BF16","shape":[{},{},{},{}],"data_offsets":[0,{bytes}]}},"w":{{"dtype":"F32","shape":[4],"data_offsets":[{bytes},{}]}}}}"#,
        dims[0],
        dims[1],
        dims[2],
        dims[3],
        bytes + 16
    );
    let mut header = header.into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&header).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut piece = vec![0u8; 1 << 20];
    let mut left = bytes as usize;
    while left > 0 {
        let len = left.min(piece.len());
        for w in piece[..len].chunks_exact_mut(2) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // sign, exponent 2^-8 .. 2^7, random mantissa
            let h = ((state >> 48) as u16 & 0x807F) | ((0x77 + (state % 16) as u16) << 7);
            w.copy_from_slice(&h.to_le_bytes());
        }
        f.write_all(&piece[..len]).unwrap();
        left -= len;
    }
    for v in [1.0f32, 2.0, 3.0, 4.0] {
        f.write_all(&v.to_le_bytes()).unwrap();
    }
    f.flush().unwrap();
    8 + header.len() as u64 + bytes + 16
}

/// Runs `bfrope apply` under `/usr/bin/time` and returns the peak resident set in bytes.
fn peak_rss(input: &Path, output: &Path, backend: &str) -> u64 {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is missing: install Debian's `time` package (scripts/test.sh does)"
    );
    let o = Command::new(time)
        .args(["-f", "peak-rss-kib %M"])
        .arg(bin())
        .arg("apply")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["--backend", backend, "--tensors", "q"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "apply --backend {backend} failed: {err}"
    );
    let kib: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in: {err}"));
    kib * 1024
}

fn same_files(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

#[test]
fn memory_a_1_gib_rotation_stays_bounded_on_cpu_and_gpu() {
    let gib: usize = std::env::var("BFROPE_RSS_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    let file = write_big(&input, [16 * gib, 4096, 64, 128]);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    // The contract: about 1.3x the input plus a fixed amount. What bfrope does: a few
    // pieces of 32 MiB and the adapter's own, whatever the size.
    let bound = file * 13 / 10 + (256 << 20);
    // Measuring another build (BFROPE_RSS_BIN): report, don't judge.
    let judge = std::env::var_os("BFROPE_RSS_BIN").is_none();
    let cpu_out = dir.path().join("cpu.safetensors");
    let rss = peak_rss(&input, &cpu_out, "cpu");
    eprintln!(
        "apply --backend cpu of a {:.0} MiB file: peak RSS {:.0} MiB",
        mib(file),
        mib(rss)
    );
    if judge {
        assert!(rss <= bound, "CPU path peak RSS {rss} > {bound}");
    }
    if judge {
        assert!(
            rss < 512 << 20,
            "CPU path peak RSS {:.0} MiB: not bounded by pieces",
            mib(rss)
        );
    }
    if common::cli::gpu_available("the memory test") {
        let gpu_out = dir.path().join("gpu.safetensors");
        let rss = peak_rss(&input, &gpu_out, "gpu");
        eprintln!(
            "apply --backend gpu of a {:.0} MiB file: peak RSS {:.0} MiB",
            mib(file),
            mib(rss)
        );
        if judge {
            assert!(rss <= bound, "GPU path peak RSS {rss} > {bound}");
        }
        if judge {
            assert!(
                rss < 768 << 20,
                "GPU path peak RSS {:.0} MiB: not bounded by pieces",
                mib(rss)
            );
        }
        assert!(same_files(&cpu_out, &gpu_out), "GPU and CPU outputs differ");
    }
}

#[test]
fn memory_repeats_give_the_same_bytes_and_keep_the_header_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    write_big(&input, [2, 16, 4, 64]);
    let bytes = std::fs::read(&input).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut outs = Vec::new();
    for (k, backend) in ["cpu", "cpu", "cpu", "auto"].iter().enumerate() {
        let out = dir.path().join(format!("out{k}.safetensors"));
        let o = Command::new(bin())
            .arg("apply")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--backend", backend])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(std::fs::read(&out).unwrap());
    }
    for (k, o) in outs.iter().enumerate() {
        assert_eq!(o.len(), bytes.len(), "run {k}: same size");
        assert_eq!(
            o[..8 + n],
            bytes[..8 + n],
            "run {k}: the input's header verbatim"
        );
        assert_eq!(o, &outs[0], "run {k}: the same bytes as run 0");
        assert_eq!(o[o.len() - 16..], bytes[bytes.len() - 16..], "w copied");
        assert_ne!(o[8 + n..], bytes[8 + n..], "q rotated");
    }
}
