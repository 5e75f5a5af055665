//! Shared test support: the independent exact oracle, the GPU handle (skip loudly, fail in
//! CI), the golden-file loader and seeded randomness.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod hf;
pub mod oracle;
pub mod record;
pub mod sweep;

use std::collections::HashMap;
use std::sync::OnceLock;

pub use oracle::{is_nan, oracle_dot2, oracle_pair, oracle_rotate, ulp_distance, QNAN};

/// Positions `0, 1, ...` in every batch row, for calls that need no others.
pub static FROM_0: bfrope::Positions = bfrope::Positions::Offset(0);

/// The call most tests make: contiguous BSHD `shape` from position 0, interleaved over the
/// whole head, exact, in `direction`.
pub fn bshd_call(
    shape: bfrope::RopeShape,
    table: &bfrope::RopeTable,
    direction: bfrope::Direction,
) -> bfrope::RopeCall<'_> {
    bfrope::RopeCall::new(shape.into(), &FROM_0, table).with_direction(direction)
}

/// The shared PyTorch reference file (`tests/data/golden/README.md`).
pub const GOLDEN_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/golden/golden_shared.safetensors"
);

/// The GPU every test in this binary shares, or `None` (with a loud message) when the machine
/// has no adapter. Under `CI=true` a missing adapter fails the test instead: GPU tests never
/// pass by skipping in CI.
pub fn gpu() -> Option<bfrope::Gpu> {
    static GPU: OnceLock<Option<bfrope::Gpu>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| match bfrope::Gpu::new_blocking(None) {
        Ok(g) => {
            eprintln!("GPU tests run on {}", g.adapter().summary());
            Some(g)
        }
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and no GPU adapter: {e}");
            }
            None
        }
    });
    if gpu.is_none() {
        eprintln!("==================================================================");
        eprintln!("SKIP: no GPU adapter on this machine; GPU half of this test skipped");
        eprintln!("      (install Mesa lavapipe; under CI=true this is a failure)");
        eprintln!("==================================================================");
    }
    gpu.clone()
}

/// A seeded RNG: the same data on every run.
pub fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

/// A tensor read from the golden file.
#[derive(Debug, Clone)]
pub struct Tensor<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// The golden safetensors file, loaded once.
pub struct Golden {
    bytes: Vec<u8>,
    metadata: HashMap<String, String>,
}

impl Golden {
    /// Reads `golden_shared.safetensors`; panics with the path if it is missing.
    pub fn load() -> Self {
        Self::open(GOLDEN_PATH)
    }

    /// Reads one of the reference files of `tests/data/golden/` by file name.
    pub fn named(file: &str) -> Self {
        Self::open(&format!(
            "{}/tests/data/golden/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
    }

    fn open(path: &str) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).expect("safetensors header");
        let metadata = meta.metadata().clone().unwrap_or_default();
        Self { bytes, metadata }
    }

    /// The names of the cases in the metadata whose JSON has a `kind`.
    pub fn cases(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .metadata
            .iter()
            .filter(|(_, m)| {
                serde_json::from_str::<serde_json::Value>(m).is_ok_and(|j| j.get("kind").is_some())
            })
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    fn view(&self, name: &str, dtype: safetensors::Dtype) -> (Vec<usize>, &[u8]) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).expect("safetensors");
        let t = st
            .tensor(name)
            .unwrap_or_else(|e| panic!("tensor {name}: {e}"));
        assert_eq!(t.dtype(), dtype, "dtype of {name}");
        (t.shape().to_vec(), t.data())
    }

    /// A BF16 tensor as bit patterns.
    pub fn bf16(&self, name: &str) -> Tensor<u16> {
        let (shape, data) = self.view(name, safetensors::Dtype::BF16);
        let data = data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Tensor { shape, data }
    }

    /// An F32 tensor as bit patterns.
    pub fn f32_bits(&self, name: &str) -> Tensor<u32> {
        let (shape, data) = self.view(name, safetensors::Dtype::F32);
        let data = data
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Tensor { shape, data }
    }

    /// An I64 tensor.
    pub fn i64(&self, name: &str) -> Tensor<i64> {
        let (shape, data) = self.view(name, safetensors::Dtype::I64);
        let data = data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        Tensor { shape, data }
    }

    /// The JSON metadata of a case (`B`, `S`, `H`, `D`, `theta`, `start`, ...).
    pub fn case_meta(&self, case: &str) -> serde_json::Value {
        let s = self
            .metadata
            .get(case)
            .unwrap_or_else(|| panic!("no metadata for case {case}"));
        serde_json::from_str(s).expect("case metadata is JSON")
    }
}

#[cfg(test)]
mod oracle_self_tests {
    use super::oracle::*;

    const F1: u32 = 0x3F80_0000; // 1.0f32
    const FM1: u32 = 0xBF80_0000; // -1.0f32
    const F0: u32 = 0x0000_0000; // +0.0f32
    const FN0: u32 = 0x8000_0000; // -0.0f32
    const FINF: u32 = 0x7F80_0000; // +inf f32
    const FNAN: u32 = 0x7FC0_0000; // NaN f32

    /// `(a, b, c, d, expected)`: expected = RNE bf16 of a·b + c·d.
    #[rustfmt::skip]
    const CASES: &[(u16, u32, u16, u32, u16)] = &[
        (0x3F80, F1, 0x0000, F0, 0x3F80),          // 1·1 + 0·0 = 1, exact
        (0x3F80, F1, 0x3F80, F1, 0x4000),          // 1 + 1 = 2: exact, next binade
        (0x3F80, F1, 0x3F80, 0x3B80_0000, 0x3F80), // 1 + 2^-8: exact midpoint of 1 and 1+2^-7, tie to even (down)
        (0x3F81, F1, 0x3F80, 0x3B80_0000, 0x3F82), // (1+2^-7) + 2^-8: midpoint, tie to even (up)
        (0x3F80, F1, 0x3F80, 0x3B80_0001, 0x3F81), // 1 + just above 2^-8: above the midpoint, rounds up
        (0x3F80, F1, 0x3F80, 0x3B7F_FFFF, 0x3F80), // 1 + just below 2^-8: below the midpoint, rounds down
        (0x3FFF, F1, 0x3F80, 0x3B80_0000, 0x4000), // (2-2^-7) + 2^-8: tie to even carries into the exponent -> 2.0
        (0x7F7F, F1, 0x7F7F, F1, 0x7F80),          // max + max: overflow to +inf
        (0x7F7F, F1, 0x7B00, F1, 0x7F80),          // max + 2^119 (half an ulp of max): tie, max is odd -> +inf
        (0x7F7F, F1, 0x7A80, F1, 0x7F7F),          // max + 2^118 (quarter ulp): stays at max, largest finite
        (0xFF7F, F1, 0xFF7F, F1, 0xFF80),          // -max - max: overflow to -inf
        (0x7F7F, 0x4000_0000, 0x7F7F, FM1, 0x7F7F), // 2·max - max: the product overflows bf16 but the exact sum does not
        (0x8000, F1, 0x8000, F1, 0x8000),          // -0 + -0 = -0: both terms -0
        (0x8000, F1, 0x0000, F1, 0x0000),          // -0 + +0 = +0
        (0x0000, FM1, 0x8000, F1, 0x8000),         // (+0)(-1) + (-0)(1) = -0 + -0 = -0: signs of zero products
        (0x8000, FN0, 0x0000, FM1, 0x0000),        // (-0)(-0) + (+0)(-1) = +0 + -0 = +0
        (0x3F80, F1, 0x3F80, FM1, 0x0000),         // 1 - 1: exact cancellation gives +0
        (0xBF80, F1, 0x3F80, F1, 0x0000),          // -1 + 1: exact cancellation gives +0 whatever the order
        (0x0001, F1, 0x0000, F0, 0x0001),          // smallest subnormal 2^-133 passes through exactly
        (0x0001, 0x3F00_0000, 0x0000, F0, 0x0000), // 2^-134: half the smallest subnormal, tie to even -> +0
        (0x0001, 0x3F40_0000, 0x0000, F0, 0x0001), // 0.75·2^-133: above the midpoint -> smallest subnormal
        (0x8001, 0x3F00_0000, 0x0000, F0, 0x8000), // -2^-134 ties to -0 (the sum's sign)
        (0x0003, 0x3F00_0000, 0x0000, F0, 0x0002), // 1.5·2^-133: tie to even -> 2·2^-133
        (0x0080, F1, 0x8001, F1, 0x007F),          // smallest normal - smallest subnormal = largest subnormal
        (0x007F, F1, 0x0001, F1, 0x0080),          // largest subnormal + smallest subnormal = smallest normal
        (0x0080, 0x3F00_0000, 0x0000, F0, 0x0040), // 2^-126 / 2 = subnormal result, exact
        (0x3F80, 0x0000_0001, 0x0000, F0, 0x0000), // 1 · 2^-149 (f32 subnormal): far below bf16's range -> +0
        (0x7FC0, F1, 0x3F80, F1, 0x7FC0),          // NaN in -> canonical NaN
        (0x7F81, F1, 0x3F80, F1, 0x7FC0),          // signalling-pattern NaN -> canonical NaN
        (0xFFFF, F0, 0x0000, F0, 0x7FC0),          // negative NaN payload -> canonical NaN
        (0x3F80, FNAN, 0x3F80, F1, 0x7FC0),        // NaN in the table -> canonical NaN
        (0x7F80, F0, 0x3F80, F1, 0x7FC0),          // inf·0 -> NaN
        (0x0000, FINF, 0x3F80, F1, 0x7FC0),        // 0·inf -> NaN
        (0x7F80, F1, 0x7F80, FM1, 0x7FC0),         // inf - inf -> NaN
        (0x7F80, F1, 0x7F80, F1, 0x7F80),          // inf + inf = inf
        (0x7F80, FM1, 0x3F80, F1, 0xFF80),         // -inf + 1 = -inf: the sign propagates
        (0x7F80, 0x0000_0001, 0xFF7F, F1, 0x7F80), // inf·(tiny f32) + -max = inf
        (0x4049, 0x3F35_04F3, 0xC049, 0x3F35_04F3, 0x0000), // x·c + (-x)·c cancels exactly -> +0
    ];

    #[test]
    fn oracle_hand_picked_cases() {
        let mut bad = Vec::new();
        for &(a, b, c, d, want) in CASES {
            let got = oracle_dot2(a, b, c, d);
            if got != want {
                bad.push(format!(
                    "dot2({a:#06x}, {b:#010x}, {c:#06x}, {d:#010x}) = {got:#06x}, want {want:#06x}"
                ));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn oracle_agrees_with_f64_where_f64_is_exact() {
        // Small integers times small integers: every product and sum is exact in f64 and
        // the rounding to bf16 of an exact f64 is `half`'s RNE conversion.
        let mut rng = super::rng(7);
        use rand::Rng;
        for _ in 0..20_000 {
            let a: i32 = rng.random_range(-300..300);
            let c: i32 = rng.random_range(-300..300);
            let b: i32 = rng.random_range(-300..300);
            let d: i32 = rng.random_range(-300..300);
            let (ha, hc) = (
                half::bf16::from_f32(a as f32),
                half::bf16::from_f32(c as f32),
            );
            let exact = ha.to_f64() * b as f64 + hc.to_f64() * d as f64;
            let want = half::bf16::from_f64(exact).to_bits();
            let got = oracle_dot2(
                ha.to_bits(),
                (b as f32).to_bits(),
                hc.to_bits(),
                (d as f32).to_bits(),
            );
            // half maps an exact 0.0 to +0, as the contract does for cancellations.
            assert_eq!(got, want, "{a}*{b} + {c}*{d} = {exact}");
        }
    }

    #[test]
    fn oracle_ulp_distance() {
        assert_eq!(ulp_distance(0x0000, 0x8000), 0);
        assert_eq!(ulp_distance(0x0001, 0x8001), 2);
        assert_eq!(ulp_distance(0x7F7F, 0x7F80), 1);
        assert_eq!(ulp_distance(0x3F80, 0x3F81), 1);
        assert!(is_nan(0x7FC0) && is_nan(0xFF81) && !is_nan(0x7F80));
    }
}
