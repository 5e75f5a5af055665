//! The shared PyTorch reference (tests/data/golden/README.md): fed PyTorch's own cos/sin, the GPU and the CPU
//! path match the independent oracle bit for bit, and PyTorch's CPU outputs to ≤ 1 ulp (the
//! mismatch counts are printed); the `torch` angle mode rebuilds PyTorch's tables from the
//! base and reproduces its CPU outputs to ≤ 1 ulp. Also: `exact` tables stay accurate at
//! position 2²⁴, checked against an independent 256-bit fixed-point computation.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::{cpu, AngleMode, Positions, RopeCall, RopeShape, RopeTable, TableSpec};
use common::{gpu, is_nan, oracle_rotate, ulp_distance, Golden};
use num_bigint::BigInt;
use num_traits::{One, Signed, Zero};

/// `(different bit patterns, NaN-ness disagreements, max ulp distance among non-NaN)`.
fn compare(got: &[u16], reference: &[u16]) -> (usize, usize, u32) {
    let (mut diff, mut nan, mut max_ulp) = (0, 0, 0);
    for (&g, &r) in got.iter().zip(reference) {
        match (is_nan(g), is_nan(r)) {
            (true, true) => {}
            (false, false) => {
                if g != r {
                    diff += 1;
                    max_ulp = max_ulp.max(ulp_distance(g, r));
                }
            }
            _ => nan += 1,
        }
    }
    (diff, nan, max_ulp)
}

/// Counts exact bit mismatches (NaN must be exactly 0x7FC0 on our side).
fn bit_mismatches(got: &[u16], want: &[u16]) -> usize {
    got.iter().zip(want).filter(|(g, w)| g != w).count()
}

fn run_case(case: &str) {
    let g = Golden::load();
    let meta = g.case_meta(case);
    let cos = g.f32_bits(&format!("{case}.cos"));
    let sin = g.f32_bits(&format!("{case}.sin"));
    let positions = g.i64(&format!("{case}.positions")).data;
    let (rows, pairs) = (cos.shape[0], cos.shape[1]);
    let cos_f: Vec<f32> = cos.data.iter().map(|&b| f32::from_bits(b)).collect();
    let sin_f: Vec<f32> = sin.data.iter().map(|&b| f32::from_bits(b)).collect();
    let table = RopeTable::from_cos_sin(&cos_f, &sin_f, rows, pairs).unwrap();

    // The torch-mode table, rebuilt from the base in the metadata.
    let theta = meta["theta"].as_f64().expect("theta in metadata");
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "{case}: positions are consecutive"
    );
    assert_eq!(
        meta["start"].as_i64(),
        Some(positions[0]),
        "{case}: start vs positions[0]"
    );
    let torch_table = RopeTable::build(&TableSpec {
        base: theta,
        rotary_dim: 2 * pairs,
        first_position: positions[0] as u64,
        rows,
        angles: AngleMode::Torch,
    })
    .unwrap();
    let table_diff = torch_table
        .cos_sin()
        .iter()
        .zip(cos.data.iter().zip(&sin.data))
        .map(|(&[c, s], (&pc, &ps))| (c.to_bits() != pc) as usize + (s.to_bits() != ps) as usize)
        .sum::<usize>();
    eprintln!(
        "golden[{case}] torch-mode table (theta={theta}, first_position={}): {table_diff} of {} cos/sin values differ from PyTorch's bits",
        positions[0],
        2 * rows * pairs
    );

    let gpu = gpu();
    for tensor in ["q", "k"] {
        let x = g.bf16(&format!("{case}.{tensor}"));
        let shape = RopeShape::from_dims(&x.shape).unwrap();
        let dims = shape.dims();
        assert_eq!(x.shape[1], rows, "{case}.{tensor}: seq vs table rows");
        let want = oracle_rotate(
            &x.data,
            dims,
            |r, i| (cos.data[r * pairs + i], sin.data[r * pairs + i]),
            0,
            false,
        );
        let torch_cpu = g.bf16(&format!("{case}.{tensor}_out_cpu")).data;
        let torch_cuda = g.bf16(&format!("{case}.{tensor}_out_cuda")).data;

        let from_0 = Positions::Offset(0);
        let call = RopeCall::new(shape.into(), &from_0, &table);
        let ours_cpu = cpu::apply(&call, &x.data).unwrap();
        let cpu_vs_oracle = bit_mismatches(&ours_cpu, &want);
        let gpu_vs_oracle = gpu.as_ref().map(|gpu| {
            let out = gpu.apply_blocking(&call, &x.data).unwrap();
            bit_mismatches(&out, &want)
        });

        let (d_cpu, nan_cpu, ulp_cpu) = compare(&want, &torch_cpu);
        let (d_cuda, nan_cuda, ulp_cuda) = compare(&want, &torch_cuda);
        let torch_call = RopeCall::new(shape.into(), &from_0, &torch_table);
        let torch_mode = cpu::apply(&torch_call, &x.data).unwrap();
        let (d_tm, nan_tm, ulp_tm) = compare(&torch_mode, &torch_cpu);
        let n = x.data.len();
        eprintln!(
            "golden[{case}.{tensor}] n={n}: bfrope vs oracle: cpu {cpu_vs_oracle}, gpu {}; \
             vs PyTorch CPU {d_cpu} (NaN-ness {nan_cpu}, max {ulp_cpu} ulp); \
             vs PyTorch CUDA {d_cuda} (NaN-ness {nan_cuda}, max {ulp_cuda} ulp); \
             torch-mode table vs PyTorch CPU {d_tm} (NaN-ness {nan_tm}, max {ulp_tm} ulp)",
            gpu_vs_oracle.map_or("skipped".to_string(), |c| c.to_string()),
        );
        assert_eq!(cpu_vs_oracle, 0, "{case}.{tensor}: CPU path vs oracle");
        assert_eq!(
            gpu_vs_oracle.unwrap_or(0),
            0,
            "{case}.{tensor}: GPU vs oracle"
        );
        assert_eq!(nan_cpu, 0, "{case}.{tensor}: NaN-ness vs PyTorch CPU");
        assert!(
            ulp_cpu <= 1,
            "{case}.{tensor}: {ulp_cpu} ulp from PyTorch CPU"
        );
        assert_eq!(
            nan_tm, 0,
            "{case}.{tensor}: torch mode NaN-ness vs PyTorch CPU"
        );
        assert!(
            ulp_tm <= 1,
            "{case}.{tensor}: torch mode {ulp_tm} ulp from PyTorch CPU"
        );
    }
}

#[test]
fn golden_small_theta1e4_b2_s64_h4_d64() {
    run_case("small_theta1e4");
}

#[test]
fn golden_llama3_base_theta5e5_s256_h8_d128() {
    run_case("llama3_base");
}

#[test]
fn golden_long_offset_pos100000_s128_h4_d128() {
    run_case("long_offset");
}

#[test]
fn golden_special_bits_all_65536_patterns_d64() {
    run_case("special_bits");
}

// ---- Exact-mode tables at large positions, against 256-bit fixed point -------------------

/// Fractional bits of the fixed-point numbers below.
const P: usize = 256;

fn fx_one() -> BigInt {
    BigInt::one() << P
}

fn fx_mul(a: &BigInt, b: &BigInt) -> BigInt {
    (a * b) >> P
}

fn fx_from_f64(x: f64) -> BigInt {
    // x = m · 2^e exactly.
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7FF) as i64;
    let m = if e == 0 {
        (bits & ((1 << 52) - 1)) << 1
    } else {
        (bits & ((1 << 52) - 1)) | (1 << 52)
    };
    let shift = e - 1075 + P as i64;
    let v = BigInt::from(m);
    let v = if shift >= 0 {
        v << shift as usize
    } else {
        v >> (-shift) as usize
    };
    if x < 0.0 {
        -v
    } else {
        v
    }
}

/// atanh(1/n)·2^P by its series.
fn fx_atanh_inv(n: u64) -> BigInt {
    let n2 = BigInt::from(n * n);
    let mut term = fx_one() / n; // 1/n^(2k+1)
    let mut sum = BigInt::zero();
    let mut k = 0u64;
    while !term.is_zero() {
        sum += &term / (2 * k + 1);
        term /= &n2;
        k += 1;
    }
    sum
}

/// atan(1/n)·2^P by its series.
fn fx_atan_inv(n: u64) -> BigInt {
    let n2 = BigInt::from(n * n);
    let mut term = fx_one() / n;
    let mut sum = BigInt::zero();
    let mut k = 0u64;
    while !term.is_zero() {
        let t = &term / (2 * k + 1);
        if k % 2 == 0 {
            sum += t;
        } else {
            sum -= t;
        }
        term /= &n2;
        k += 1;
    }
    sum
}

/// ln(x) for x > 0 given in fixed point: x = 2^k · m with m in [1, 2).
fn fx_ln(x: &BigInt) -> BigInt {
    let k = x.bits() as i64 - 1 - P as i64;
    let m = if k >= 0 {
        x >> k as usize
    } else {
        x << (-k) as usize
    };
    let ln2 = 2 * fx_atanh_inv(3);
    // ln m = 2 atanh((m−1)/(m+1)), with (m−1)/(m+1) ≤ 1/3.
    let z = ((&m - fx_one()) << P) / (&m + fx_one());
    let z2 = fx_mul(&z, &z);
    let mut term = z.clone();
    let mut sum = BigInt::zero();
    let mut j = 1u64;
    while !term.is_zero() {
        sum += &term / j;
        term = fx_mul(&term, &z2);
        j += 2;
    }
    2 * sum + ln2 * k
}

/// exp(y): Taylor on y/2^20, then 20 squarings.
fn fx_exp(y: &BigInt) -> BigInt {
    let r = y >> 20usize;
    let mut term = fx_one();
    let mut sum = BigInt::zero();
    let mut j = 1u64;
    while !term.is_zero() {
        sum += &term;
        term = fx_mul(&term, &r) / j;
        j += 1;
    }
    for _ in 0..20 {
        sum = fx_mul(&sum, &sum);
    }
    sum
}

/// (cos r, sin r) by Taylor series, |r| ≤ π.
fn fx_cos_sin(r: &BigInt) -> (BigInt, BigInt) {
    let (mut c, mut s) = (BigInt::zero(), BigInt::zero());
    let mut term = fx_one(); // r^j / j!
    let mut j = 0u64;
    while !term.is_zero() || j < 4 {
        match j % 4 {
            0 => c += &term,
            1 => s += &term,
            2 => c -= &term,
            _ => s -= &term,
        }
        j += 1;
        term = fx_mul(&term, r) / j;
    }
    (c, s)
}

/// |t − exact| as an f64 (exact to f64 precision).
fn abs_error(t: f32, exact: &BigInt) -> f64 {
    let err = (fx_from_f64(t as f64) - exact).abs();
    // err · 2^−P, keeping 60 significant bits.
    let drop = (err.bits() as i64 - 60).max(0);
    let top: f64 = (&err >> drop as usize).to_string().parse().unwrap();
    top * 2f64.powi(drop as i32 - P as i32)
}

/// The spacing of f32 values at `t` (its ulp).
fn f32_ulp(t: f32) -> f64 {
    if t == 0.0 || t.abs() < f32::MIN_POSITIVE {
        return 2f64.powi(-149);
    }
    2f64.powi(t.abs().log2().floor() as i32 - 23)
}

/// `exact` tables compute the angle `position·θᵢ` in f64 (docs/CONTRACT.md §3), so besides the final
/// rounding to f32 (≤ ½ ulp, plus libm's sub-ulp f64 error) each value may carry the angle's
/// own rounding: ≤ position·θᵢ·2⁻⁵¹ absolute (θᵢ from libm's pow and the product each round
/// once). Each value must be within 1 f32 ulp of the true cos/sin, or within that inherent
/// angle error plus ½ ulp; the largest distance in ulps is printed.
#[test]
fn exact_table_accurate_at_position_2pow24_base1e4_and_5e5_d128() {
    let pi = 16 * fx_atan_inv(5) - 4 * fx_atan_inv(239);
    let two_pi = 2 * &pi;
    let first = (1u64 << 24) - 1;
    let rotary_dim = 128;
    let mut failures = Vec::new();
    for base in [1e4, 5e5] {
        let spec = TableSpec {
            base,
            rotary_dim,
            first_position: first,
            rows: 3,
            angles: AngleMode::Exact,
        };
        let table = RopeTable::build(&spec).unwrap();
        let ln_base = fx_ln(&fx_from_f64(base));
        let (mut worst, mut worst_at, mut beyond_1ulp) = (0f64, String::new(), 0);
        for i in 0..rotary_dim / 2 {
            // θᵢ = base^(−2i/d) = exp(−(2i/d)·ln base)
            let theta = fx_exp(&(-(&ln_base * (2 * i as u64)) / rotary_dim as u64));
            let theta_f64 = base.powf(-((2 * i) as f64) / rotary_dim as f64);
            for row in 0..3 {
                let pos = first + row as u64;
                let angle = &theta * pos;
                // Reduce to [−π, π]; angle ≥ 0, so truncating division is floor.
                let k = (&angle + &pi) / &two_pi;
                let r = angle - k * &two_pi;
                let (c, s) = fx_cos_sin(&r);
                let [tc, ts] = table.get(row, i);
                let angle_err = pos as f64 * theta_f64 * 2f64.powi(-51);
                for (name, t, exact) in [("cos", tc, &c), ("sin", ts, &s)] {
                    let err = abs_error(t, exact);
                    let ulps = err / f32_ulp(t);
                    if ulps > worst {
                        worst = ulps;
                        worst_at = format!("{name}[pos={pos},i={i}] = {t:e}");
                    }
                    if ulps > 1.0 {
                        beyond_1ulp += 1;
                        if err > angle_err + 0.5 * f32_ulp(t) {
                            failures.push(format!(
                                "base={base} {name}[pos={pos},i={i}] = {t:e}: error {err:e} = {ulps:.3} ulp, \
                                 inherent angle error bound {angle_err:e}"
                            ));
                        }
                    }
                }
            }
        }
        eprintln!(
            "exact table base={base} d={rotary_dim} positions {first}..={}: max error {worst:.3} ulp at {worst_at}; \
             {beyond_1ulp} of {} values beyond 1 ulp (all within the f64 angle's own error)",
            first + 2,
            2 * 3 * rotary_dim / 2
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
