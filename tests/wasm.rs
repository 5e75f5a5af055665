//! The wasm library itself, in a real browser (`wasm-bindgen-test`, run by `web/test.sh`):
//! the CPU path on wasm32 gives the native bits, exact and torch tables are libm's bits, and
//! when the browser has WebGPU the kernel matches the CPU path on the special-value sweep.
//!
//! ```text
//! CHROMEDRIVER=/usr/bin/chromedriver \
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test --target wasm32-unknown-unknown --test wasm
//! ```
#![cfg(target_arch = "wasm32")]

use bfrope::conformance::{special_sweep, SWEEP_X1};
use bfrope::table::torch_inv_freq;
use bfrope::{cpu, AngleMode, Direction, Gpu, Precision, RopeTable, TableSpec};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// FNV-1a over the little-endian bytes, the same on every target.
fn fnv1a(bits: &[u16]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bits {
        for byte in b.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

fn is_finite_nonzero(b: u16) -> bool {
    b & 0x7FFF != 0 && b & 0x7F80 != 0x7F80
}

/// Angle 0 is the identity and a quarter turn swaps with a sign, exactly, for every finite
/// non-zero pair of the sweep (the results are representable, so rounding plays no part).
#[wasm_bindgen_test]
fn cpu_exact_quarter_turns() {
    let mut checked = 0usize;
    for x0 in 0..=u16::MAX {
        for &x1 in &SWEEP_X1 {
            if !is_finite_nonzero(x0) || !is_finite_nonzero(x1) {
                continue;
            }
            for direction in [Direction::Forward, Direction::Inverse] {
                assert_eq!(
                    cpu::rotate_pair(x0, x1, 1.0, 0.0, direction),
                    (x0, x1),
                    "identity, x0=0x{x0:04X} x1=0x{x1:04X} {direction:?}"
                );
            }
            let (x0n, x1n) = (x0 ^ 0x8000, x1 ^ 0x8000);
            assert_eq!(
                cpu::rotate_pair(x0, x1, 0.0, 1.0, Direction::Forward),
                (x1n, x0),
                "+pi/2, x0=0x{x0:04X} x1=0x{x1:04X}"
            );
            assert_eq!(
                cpu::rotate_pair(x0, x1, 0.0, 1.0, Direction::Inverse),
                (x1, x0n),
                "-pi/2, x0=0x{x0:04X} x1=0x{x1:04X}"
            );
            checked += 1;
        }
    }
    console_log!("cpu: {checked} finite non-zero pairs exact at 0 and ±pi/2");
    assert_eq!(checked, (65_536 - 2 - 256) * 6);
}

/// The whole special-value sweep on the wasm CPU path hashes to the bits the native CPU path
/// gives (hashes computed natively with the same FNV-1a), both directions.
#[wasm_bindgen_test]
fn cpu_sweep_matches_native_bits() {
    let case = special_sweep();
    for (direction, native) in [
        (Direction::Forward, 0x851B_CF8F_6E56_5959_u64),
        (Direction::Inverse, 0xB2C1_7593_7942_44E1_u64),
    ] {
        let got = case.expected(direction).expect("cpu rotate");
        assert_eq!(got.len(), case.shape.elements());
        let hash = fnv1a(&got);
        console_log!(
            "cpu sweep {direction:?}: {} elements, FNV-1a 0x{hash:016X}",
            got.len()
        );
        assert_eq!(
            hash, native,
            "{direction:?}: wasm CPU bits differ from native"
        );
    }
}

/// Built tables are exactly libm's bits, computed here inline, in both angle modes.
#[wasm_bindgen_test]
fn tables_are_libm_bits() {
    for (base, dim, first) in [(10000.0, 128, 0u64), (500000.0, 64, (1 << 24) - 3)] {
        let spec = TableSpec {
            base,
            rotary_dim: dim,
            first_position: first,
            rows: 7,
            angles: AngleMode::Exact,
        };
        let table = RopeTable::build(&spec).expect("exact table");
        let torch = RopeTable::build(&TableSpec {
            angles: AngleMode::Torch,
            ..spec
        })
        .expect("torch table");
        let pairs = dim / 2;
        let inv_f32 = torch_inv_freq(base, dim);
        for r in 0..spec.rows {
            let pos = first + r as u64;
            for (i, &freq32) in inv_f32.iter().enumerate().take(pairs) {
                let angle = pos as f64 * libm::pow(base, -((2 * i) as f64) / dim as f64);
                let want = [libm::cos(angle) as f32, libm::sin(angle) as f32];
                let got = table.get(r, i);
                assert_eq!(
                    got.map(f32::to_bits),
                    want.map(f32::to_bits),
                    "exact base {base} row {r} pair {i}"
                );
                let a32 = (pos as f32 * freq32) as f64;
                let want = [libm::cos(a32) as f32, libm::sin(a32) as f32];
                assert_eq!(
                    torch.get(r, i).map(f32::to_bits),
                    want.map(f32::to_bits),
                    "torch base {base} row {r} pair {i}"
                );
            }
        }
    }
}

/// With WebGPU: the kernel on the special-value sweep, both directions, 0 mismatching pairs
/// against the CPU path. Without WebGPU the test says so loudly and passes (the CPU tests
/// above still ran).
#[wasm_bindgen_test]
async fn webgpu_sweep_matches_cpu() {
    let gpu = match Gpu::new(None).await {
        Ok(gpu) => gpu,
        Err(e) => {
            console_log!("!!!!!!!! NO WEBGPU in this browser ({e}); GPU test SKIPPED, CPU tests only !!!!!!!!");
            return;
        }
    };
    console_log!("webgpu adapter: {}", gpu.adapter().summary());
    let case = special_sweep();
    for direction in [Direction::Forward, Direction::Inverse] {
        let expected = case.expected(direction).expect("cpu rotate");
        let got = gpu
            .rotate_bits(
                &case.x,
                case.shape,
                &case.table,
                case.row_offset,
                direction,
                Precision::Exact,
            )
            .await
            .expect("gpu rotate");
        let (count, first) = case.compare(direction, &expected, &got, 5);
        console_log!(
            "webgpu sweep {direction:?}: {} pairs, {count} mismatches",
            expected.len() / 2
        );
        for m in &first {
            console_log!("  {m}");
        }
        assert_eq!(count, 0, "{direction:?}: WebGPU differs from the CPU path");
    }
}
