//! `bfrope conform`: the conformance suite on real adapters. Every adapter's output bits are
//! compared with the CPU path's, for each dtype (`--dtype`, default all three):
//!
//! - bf16: the library's full suite (`conformance::suite`, the one the web page runs): the
//!   special-value sweep, seeded random data and bit patterns, special tables;
//! - f16: every one of the 65,536 f16 patterns as `x0` against 14 edge `x1` values at six
//!   angles, through each kernel the library has for f16 (vec4, vec4-half, scalar, the general
//!   kernel on words and on 16-bit halves), and special values against special tables;
//! - f32 (the general kernel's f32 modules, the only f32 kernel): seeded random bit patterns,
//!   normal data of mixed magnitudes with specials, near-cancellation, subnormal data with
//!   tiny tables, special values against special, huge and subnormal tables, over several
//!   views (BSHD, BHSD, half-split, an odd offset with pass-through dims);
//!
//! each forward and inverse. Exit 1 on any mismatch.
//!
//! `--full` is the exhaustive check instead, of one dtype: all 2^32 `(x0, x1)` pairs of bf16
//! (the default) or f16 at angles 0, π/4, π/2, 1 rad and one table value of position
//! 1,000,000, forward and inverse, on the GPU, through every kernel (`--kernel`: the
//! contiguous vec4 kernels, interleaved and half-split; the general kernel on whole words,
//! half-split pairs; the general kernel on 16-bit halves, half-split pairs at an odd element
//! offset), each output compared with the CPU path's pair rotation on every core. f32 cannot
//! be exhaustive (2^64 pairs): `--full --dtype f32` is a seeded random sweep of
//! `--full-pairs` pairs (default 2^32) through the general kernel.

use std::process::ExitCode;
use std::time::Instant;

use bfrope::conformance::{self, Case};
use bfrope::{Direction, Dtype, Gpu, Precision};

use crate::{CliError, CliResult};

/// Mismatches kept per check for the report.
const KEEP: usize = 5;

/// Arguments of `bfrope conform`.
#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    /// Run on the adapter whose name, backend or driver contains SUBSTRING (default: the best).
    #[arg(long, value_name = "SUBSTRING", conflicts_with = "all_adapters")]
    adapter: Option<String>,
    /// Run on every adapter wgpu finds.
    #[arg(long)]
    all_adapters: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Kernel arithmetic to check: exact (the contract), hf (transformers' arithmetic, against
    /// the CPU path's hf results) or fast (plain f32 against the exact results, expected to
    /// differ; shows what the exact mode guards against).
    #[arg(long, value_enum, default_value = "exact")]
    precision: crate::apply::PrecisionArg,
    /// The dtypes to check: bf16, f16, f32 or all (default: all for the suite, bf16 for
    /// --full, which checks one dtype per run).
    #[arg(long, value_enum)]
    dtype: Option<DtypeSel>,
    /// Seed of the random-data checks (the suite; with --full, of --dtype f32's random pairs).
    #[arg(long)]
    seed: Option<u64>,
    /// Check every (x0, x1) pair (2^32) of bf16 or f16 at five angles, forward and inverse,
    /// instead of the suite (hours on a small machine; progress and an estimate on stderr).
    /// f32 is not exhaustive: --full --dtype f32 checks --full-pairs seeded random pairs
    /// (random bit patterns, normal data, near-cancellation).
    #[arg(long)]
    full: bool,
    /// With --full: only x0 bit patterns in START..END (hex 0x.. or decimal; a test's slice);
    /// with --dtype f32, only the random pairs' tokens START..END of 65,536 pairs each.
    #[arg(long, value_name = "START..END", value_parser = parse_slice, requires = "full", hide = true)]
    full_slice: Option<(u32, u32)>,
    /// With --full --dtype f32: how many seeded random pairs (a multiple of 65,536, at most
    /// 2^32; default 2^32).
    #[arg(long, value_name = "N", value_parser = parse_pairs, requires = "full")]
    full_pairs: Option<u64>,
    /// With --full: the kernels to sweep (vec4: contiguous interleaved; vec4-half: contiguous
    /// half-split; general: any view, whole words, half-split; halves: any view, 16-bit halves,
    /// half-split at an odd offset). f32 has the general kernel only.
    #[arg(long, value_enum, requires = "full")]
    kernel: Option<FullKernelArg>,
    /// With --full: x0 values (f32: tokens of 65,536 pairs) per GPU call (default 1024; 512
    /// for f32).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096), requires = "full", hide = true)]
    full_chunk: Option<u32>,
}

/// The dtypes `conform` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeSel {
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
    /// IEEE single.
    F32,
    /// All three (the suite only).
    All,
}

impl DtypeSel {
    fn dtypes(self) -> Vec<Dtype> {
        match self {
            DtypeSel::Bf16 => vec![Dtype::Bf16],
            DtypeSel::F16 => vec![Dtype::F16],
            DtypeSel::F32 => vec![Dtype::F32],
            DtypeSel::All => vec![Dtype::Bf16, Dtype::F16, Dtype::F32],
        }
    }
}

/// The kernels `conform --full` sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FullKernelArg {
    /// The contiguous vec4 kernel (BSHD, interleaved pairs).
    Vec4,
    /// The contiguous half-split vec4 kernel (BSHD, half-split, 8 pairs per head).
    Vec4Half,
    /// The general kernel on whole words (half-split pairs).
    General,
    /// The general kernel on 16-bit halves with atomic stores (half-split, odd offset).
    Halves,
    /// All four (f32: the general kernel).
    All,
}

fn parse_slice(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("slice '{s}' must be START..END with 0 <= START < END <= 0x10000");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let num = |t: &str| {
        let t = t.trim();
        match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16),
            None => t.parse(),
        }
        .map_err(|_| bad())
    };
    let (a, b) = (num(a)?, num(b)?);
    if a >= b || b > 0x10000 {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_pairs(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("pair count '{s}' is not a whole number"))?;
    if n == 0 || n % 65_536 != 0 || n > 1 << 32 {
        return Err(format!(
            "pair count {n} must be a positive multiple of 65536 and at most 4294967296"
        ));
    }
    Ok(n)
}

/// One check of the suite: a case in one direction on one adapter.
struct Check {
    dtype: Dtype,
    case: String,
    kernel: String,
    direction: Direction,
    checked: usize,
    mismatches: usize,
    seconds: f64,
    first: Vec<String>,
    error: Option<String>,
}

/// Opens every adapter; those that cannot open a device (a GL adapter with a lost context on
/// a headless server, say) are named on stderr and make the run fail, but do not stop the
/// others from being tested.
fn open_all() -> CliResult<(Vec<Gpu>, usize)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        return Err(no_adapter());
    }
    let mut gpus = Vec::new();
    let mut unopened = 0;
    for a in adapters {
        match pollster::block_on(Gpu::open(a)) {
            Ok(g) => gpus.push(g),
            Err(e) => {
                eprintln!("error: adapter not tested: {e}");
                unopened += 1;
            }
        }
    }
    Ok((gpus, unopened))
}

fn no_adapter() -> CliError {
    CliError::failure(
        "no GPU adapter found; a conformance run needs one (the CPU path is the reference)",
    )
}

/// Checks the flag combinations clap cannot express; returns the dtypes to check.
fn check_args(a: &ConformArgs) -> CliResult<Vec<Dtype>> {
    if !a.full {
        return Ok(a.dtype.unwrap_or(DtypeSel::All).dtypes());
    }
    let sel = a.dtype.unwrap_or(DtypeSel::Bf16);
    if sel == DtypeSel::All {
        return Err(CliError::usage(
            "--full checks one dtype per run (2^32 pairs each, hours on a small machine); name it with --dtype bf16, f16 or f32",
        ));
    }
    let f32 = sel == DtypeSel::F32;
    if let (Some(seed), false) = (a.seed, f32) {
        return Err(CliError::usage(format!(
            "--seed {seed} does not apply to --full --dtype {}: its sweep is exhaustive, not random (--seed seeds the suite and --full --dtype f32)",
            sel.dtypes()[0]
        )));
    }
    if let (Some(n), false) = (a.full_pairs, f32) {
        return Err(CliError::usage(format!(
            "--full-pairs {n} applies to --full --dtype f32 only; the bf16 and f16 sweeps are exhaustive (all 2^32 pairs)"
        )));
    }
    if let Some(k) = a
        .kernel
        .filter(|k| f32 && !matches!(k, FullKernelArg::General | FullKernelArg::All))
    {
        return Err(CliError::usage(format!(
            "--kernel {} does not apply to --dtype f32: f32 tensors have only the general kernel (one element per word); use --kernel general or all",
            full::kernel_arg_name(k)
        )));
    }
    if let (Some((_, end)), Some(n)) = (a.full_slice, a.full_pairs) {
        if u64::from(end) * 65_536 > n {
            return Err(CliError::usage(format!(
                "--full-slice ends at token {end} but --full-pairs {n} holds {} tokens of 65536 pairs",
                n / 65_536
            )));
        }
    }
    Ok(sel.dtypes())
}

/// Runs `bfrope conform`.
pub fn run(a: &ConformArgs) -> CliResult<ExitCode> {
    let dtypes = check_args(a)?;
    let (gpus, unopened) = if a.all_adapters {
        open_all()?
    } else {
        match Gpu::new_blocking(a.adapter.as_deref()) {
            Ok(g) => (vec![g], 0),
            Err(bfrope::Error::NoAdapter(m)) => {
                return Err(if a.adapter.is_some() {
                    CliError::failure(format!("no GPU adapter: {m}"))
                } else {
                    no_adapter()
                })
            }
            Err(e) => return Err(e.into()),
        }
    };

    let precision = a.precision.into();
    if a.full {
        let dtype = dtypes[0];
        let kernels: Vec<full::Kernel> = match (dtype, a.kernel.unwrap_or(FullKernelArg::All)) {
            (Dtype::F32, _) => vec![full::Kernel::General],
            (_, FullKernelArg::Vec4) => vec![full::Kernel::Vec4],
            (_, FullKernelArg::Vec4Half) => vec![full::Kernel::Vec4Half],
            (_, FullKernelArg::General) => vec![full::Kernel::General],
            (_, FullKernelArg::Halves) => vec![full::Kernel::Halves],
            (_, FullKernelArg::All) => vec![
                full::Kernel::Vec4,
                full::Kernel::Vec4Half,
                full::Kernel::General,
                full::Kernel::Halves,
            ],
        };
        let tokens = match dtype {
            Dtype::F32 => (a.full_pairs.unwrap_or(1 << 32) / 65_536) as u32,
            _ => 0x10000,
        };
        let opts = full::Options {
            gpus: &gpus,
            unopened,
            slice: a.full_slice.map_or(0..tokens, |(s, e)| s..e),
            chunk: a
                .full_chunk
                .unwrap_or(if dtype == Dtype::F32 { 512 } else { 1024 }),
            kernels: &kernels,
            precision,
            json: a.json,
            seed: a.seed.unwrap_or(1),
            tokens,
        };
        return match dtype {
            Dtype::Bf16 => full::run::<formats::Bf16>(&opts),
            Dtype::F16 => full::run::<formats::F16>(&opts),
            Dtype::F32 => full::run::<formats::F32>(&opts),
        };
    }
    let seed = a.seed.unwrap_or(1);
    // The bf16 cases and their reference results, shared by every adapter.
    let t = Instant::now();
    let cases = if dtypes.contains(&Dtype::Bf16) {
        conformance::suite(conformance::Suite::Full, seed)
    } else {
        Vec::new()
    };
    // hf is checked against the CPU path's hf results; exact and fast against exact ones.
    let reference = reference_precision(precision);
    let mut references = Vec::new();
    for case in &cases {
        for dir in [Direction::Forward, Direction::Inverse] {
            let expected = bfrope::cpu::apply(&case.call(dir, reference), &case.x)?;
            references.push((case, dir, expected));
        }
    }
    // The f16 and f32 cases (each checked against the CPU path as it runs).
    let mut float_cases = Vec::new();
    for &d in &dtypes {
        match d {
            Dtype::Bf16 => {}
            Dtype::F16 => float_cases.extend(floats::f16_cases()?),
            Dtype::F32 => float_cases.extend(floats::f32_cases(seed)?),
        }
    }
    if !a.json {
        println!(
            "bfrope conform ({}): {} checks, cases and bf16 reference built in {:.2} s",
            dtypes
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", "),
            references.len() + 2 * float_cases.len(),
            t.elapsed().as_secs_f64()
        );
    }

    let mut all_pass = unopened == 0;
    let mut reports = Vec::new();
    for gpu in &gpus {
        if !a.json {
            println!("\nadapter: {}", gpu.adapter().summary());
        }
        let mut checks = Vec::new();
        for (case, dir, expected) in &references {
            let check = run_check(gpu, case, *dir, expected, precision);
            if !a.json {
                print_check(&check);
            }
            checks.push(check);
        }
        for case in &float_cases {
            for dir in [Direction::Forward, Direction::Inverse] {
                let check = case.check(gpu, dir, precision)?;
                if !a.json {
                    print_check(&check);
                }
                checks.push(check);
            }
        }
        let pass = checks
            .iter()
            .all(|c| c.mismatches == 0 && c.error.is_none());
        all_pass &= pass;
        if !a.json {
            for &d in &dtypes {
                let of: Vec<&Check> = checks.iter().filter(|c| c.dtype == d).collect();
                let checked: usize = of.iter().map(|c| c.checked).sum();
                let mismatches: usize = of.iter().map(|c| c.mismatches).sum();
                let errors = of.iter().filter(|c| c.error.is_some()).count();
                println!(
                    "  {d}: {checked} elements checked, {mismatches} mismatching pairs, {errors} errors"
                );
            }
            let checked: usize = checks.iter().map(|c| c.checked).sum();
            let mismatches: usize = checks.iter().map(|c| c.mismatches).sum();
            let seconds: f64 = checks.iter().map(|c| c.seconds).sum();
            println!(
                "  {}: {checked} elements checked, {mismatches} mismatching pairs, {seconds:.2} s",
                if pass { "PASS" } else { "FAIL" }
            );
        }
        reports.push((gpu, checks, pass));
    }

    if a.json {
        let adapters: Vec<_> = reports
            .iter()
            .map(|(gpu, checks, pass)| {
                let checks: Vec<_> = checks
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "dtype": c.dtype.name(),
                            "case": c.case,
                            "kernel": c.kernel,
                            "direction": format!("{:?}", c.direction).to_lowercase(),
                            "checked": c.checked,
                            "mismatches": c.mismatches,
                            "seconds": c.seconds,
                            "first_mismatches": c.first,
                            "error": c.error,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "adapter": crate::info::adapter_json(gpu.adapter()),
                    "pass": pass,
                    "checks": checks,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "dtypes": dtypes.iter().map(|d| d.name()).collect::<Vec<_>>(),
            "pass": all_pass,
            "adapters": adapters,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        );
    } else {
        println!(
            "\n{}",
            if all_pass {
                "conformance: PASS (every adapter returned the CPU path's bits)"
            } else {
                "conformance: FAIL"
            }
        );
    }
    if !all_pass {
        eprintln!("error: conformance failed: an adapter's bits differ from the CPU path's (see the report)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The CPU path's arithmetic a GPU result in `precision` is compared with: hf with hf (the
/// same bits on every adapter), exact and fast with exact.
fn reference_precision(precision: Precision) -> Precision {
    match precision {
        Precision::Hf => Precision::Hf,
        _ => Precision::Exact,
    }
}

/// The name of the kernel the library picks for `call` (what `Gpu::apply` runs), as the
/// planner says ([`bfrope::gpu::kernel_for`]).
fn picked_kernel(call: &bfrope::RopeCall) -> &'static str {
    match bfrope::gpu::kernel_for(call).kernel {
        bfrope::gpu::Kernel::Vec4 => "vec4",
        bfrope::gpu::Kernel::Vec4Half => "vec4-half",
        bfrope::gpu::Kernel::Scalar => "scalar",
        bfrope::gpu::Kernel::General { words: true, .. } => "general",
        bfrope::gpu::Kernel::General { words: false, .. } => "halves",
    }
}

fn run_check(
    gpu: &Gpu,
    case: &Case,
    direction: Direction,
    expected: &[u16],
    precision: Precision,
) -> Check {
    let t = Instant::now();
    let call = case.call(direction, precision);
    let got = gpu.apply_blocking(&call, &case.x);
    let seconds = t.elapsed().as_secs_f64();
    let (checked, mismatches, first, error) = match got {
        Ok(got) => {
            let (mismatches, first) = case.compare(direction, expected, &got, KEEP);
            let first = first.iter().map(|m| m.to_string()).collect();
            (expected.len(), mismatches, first, None)
        }
        Err(e) => (0, 0, Vec::new(), Some(e.to_string())),
    };
    Check {
        dtype: Dtype::Bf16,
        case: case.name.clone(),
        kernel: picked_kernel(&call).into(),
        direction,
        checked,
        mismatches,
        seconds,
        first,
        error,
    }
}

fn print_check(c: &Check) {
    let dir = format!("{:?}", c.direction).to_lowercase();
    let what = match c.dtype {
        Dtype::Bf16 => c.case.clone(),
        d => format!("{d} {} [{} kernel]", c.case, c.kernel),
    };
    match &c.error {
        Some(e) => println!("  {what}, {dir}: ERROR {e}"),
        None => {
            println!(
                "  {what}, {dir}: {} elements checked, {} mismatching pairs, {:.2} s",
                c.checked, c.mismatches, c.seconds
            );
            for m in &c.first {
                println!("    {m}");
            }
        }
    }
}

/// The element formats the exhaustive and random sweeps run on: their bits, the CPU path's
/// pair rotation and, for `--full`, where each pair comes from.
mod formats {
    use bfrope::{Direction, Dtype};

    use super::full::Source;

    /// An element format.
    pub(crate) trait Format: Copy + Send + Sync + 'static {
        /// Host bits: `u16` (bf16, f16) or `u32` (f32).
        type E: bfrope::Bits + Copy + Eq + Into<u64> + std::fmt::UpperHex;
        /// The dtype.
        const DTYPE: Dtype;
        /// Hex digits of one element.
        const DIGITS: usize;
        /// Whether `--full` pairs depend on the angle (so data is rebuilt per angle).
        const PER_ANGLE: bool;
        /// The CPU path's rotation of one pair.
        fn rotate(x0: Self::E, x1: Self::E, c: f32, s: f32, d: Direction) -> (Self::E, Self::E);
        /// The CPU path's rotation of one pair in transformers' arithmetic (`hf`).
        fn rotate_hf(x0: Self::E, x1: Self::E, c: f32, s: f32, d: Direction) -> (Self::E, Self::E);
        /// The pair `w` of token `t` (absolute) in a `--full` sweep at table values `(c, s)`.
        fn pair(source: &Source, t: u32, w: u32, c: f32, s: f32) -> (Self::E, Self::E);
    }

    /// bfloat16.
    #[derive(Clone, Copy)]
    pub(crate) struct Bf16;
    /// IEEE half.
    #[derive(Clone, Copy)]
    pub(crate) struct F16;
    /// IEEE single.
    #[derive(Clone, Copy)]
    pub(crate) struct F32;

    impl Format for Bf16 {
        type E = u16;
        const DTYPE: Dtype = Dtype::Bf16;
        const DIGITS: usize = 4;
        const PER_ANGLE: bool = false;
        fn rotate(x0: u16, x1: u16, c: f32, s: f32, d: Direction) -> (u16, u16) {
            bfrope::cpu::rotate_pair(x0, x1, c, s, d)
        }
        fn rotate_hf(x0: u16, x1: u16, c: f32, s: f32, d: Direction) -> (u16, u16) {
            bfrope::hf::rotate_pair_hf(x0, x1, c, s, d)
        }
        fn pair(_: &Source, t: u32, w: u32, _: f32, _: f32) -> (u16, u16) {
            (t as u16, w as u16)
        }
    }

    impl Format for F16 {
        type E = u16;
        const DTYPE: Dtype = Dtype::F16;
        const DIGITS: usize = 4;
        const PER_ANGLE: bool = false;
        fn rotate(x0: u16, x1: u16, c: f32, s: f32, d: Direction) -> (u16, u16) {
            bfrope::cpu::rotate_pair_f16(x0, x1, c, s, d)
        }
        fn rotate_hf(x0: u16, x1: u16, c: f32, s: f32, d: Direction) -> (u16, u16) {
            bfrope::hf::rotate_pair_hf_f16(x0, x1, c, s, d)
        }
        fn pair(_: &Source, t: u32, w: u32, _: f32, _: f32) -> (u16, u16) {
            (t as u16, w as u16)
        }
    }

    impl Format for F32 {
        type E = u32;
        const DTYPE: Dtype = Dtype::F32;
        const DIGITS: usize = 8;
        const PER_ANGLE: bool = true;
        fn rotate(x0: u32, x1: u32, c: f32, s: f32, d: Direction) -> (u32, u32) {
            bfrope::cpu::rotate_pair_f32(x0, x1, c, s, d)
        }
        fn rotate_hf(x0: u32, x1: u32, c: f32, s: f32, d: Direction) -> (u32, u32) {
            bfrope::hf::rotate_pair_hf_f32(x0, x1, c, s, d)
        }
        fn pair(source: &Source, t: u32, w: u32, c: f32, s: f32) -> (u32, u32) {
            let index = (u64::from(t) << 16) | u64::from(w);
            super::floats::random_f32_pair(source.seed, index, c, s)
        }
    }
}

/// The f16 and f32 cases of the suite, built here from the library's public parts, each
/// compared with the CPU path (`cpu::apply`) bit for bit.
mod floats {
    use std::fmt::UpperHex;
    use std::time::Instant;

    use bfrope::conformance::{SplitMix64, SPECIAL_TABLE_F32};
    use bfrope::{
        AngleMode, Bits, Direction, Dtype, Gpu, Pairing, Positions, Precision, RopeCall, RopeTable,
        TableSpec, TensorView,
    };

    use super::full::{Kernel, Layout};
    use super::{picked_kernel, Check, KEEP};
    use crate::{CliError, CliResult};

    /// The `x1` partners of every f16 `x0` pattern in the f16 sweep.
    #[rustfmt::skip]
    pub(crate) const EDGE_X1_F16: [u16; 14] = [
        0x0000, 0x8000, // signed zeros
        0x3C00, 0xBC00, // ±1
        0x0001, 0x8001, // ±the smallest subnormal
        0x03FF, 0x0400, // the largest subnormal, the smallest normal
        0x7BFF, 0xFBFF, // ±65504, the largest finite
        0x7C00, 0xFC00, // ±inf
        0x7E00, 0xFD01, // the canonical NaN, a negative signalling NaN with payload
    ];

    /// Special f16 inputs of the special-table case.
    #[rustfmt::skip]
    const SPECIAL_F16: [u16; 24] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x8400, // zeros, subnormals, min normal
        0x3C00, 0xBC00, 0x3C01, 0x3E00, 0x4248,                 // ±1, 1 + ulp, 1.5, π
        0x7BFF, 0xFBFF, 0x7C00, 0xFC00,                         // ±max finite, ±inf
        0x7E00, 0xFE01, 0x7C01,                                 // NaNs: canonical, payload, signalling
        0x0800, 0x1C00, 0x5C00, 0x2E66, 0xD3B4,                 // 2⁻¹³, 2⁻⁸, 256, 0.1, −61.6
    ];

    /// Special f32 inputs of the special-table case and sprinkled into random data.
    #[rustfmt::skip]
    pub(crate) const SPECIAL_F32: [u32; 24] = [
        0x0000_0000, 0x8000_0000, 0x0000_0001, 0x8000_0001, // zeros, ±the smallest subnormal
        0x007F_FFFF, 0x0080_0000, 0x8080_0000,              // largest subnormal, ±smallest normal
        0x3F80_0000, 0xBF80_0000, 0x3F80_0001, 0x3FC0_0000, // ±1, 1 + ulp, 1.5
        0x4049_0FDB, 0x7F7F_FFFF, 0xFF7F_FFFF,              // π, ±the largest finite
        0x7F80_0000, 0xFF80_0000,                           // ±inf
        0x7FC0_0000, 0xFFC0_0001, 0x7F80_0001,              // NaNs: canonical, payload, signalling
        0x7180_0000, 0x0D80_0000, 0x3DCC_CCCD,              // 2¹⁰⁰, 2⁻¹⁰⁰, 0.1
        0xC2F6_E979, 0x4B80_0001,                           // −123.456, 2²⁴ + 2
    ];

    /// The table values of the special-table cases: the bf16 suite's, plus huge values
    /// (products overflow f16 and f32 but not the exact arithmetic).
    fn special_table() -> Vec<f32> {
        let mut v = SPECIAL_TABLE_F32.to_vec();
        v.extend([3.0e38, -1.0e30]);
        v
    }

    /// A case's input bits.
    pub(crate) enum Data {
        /// f16 patterns.
        U16(Vec<u16>),
        /// f32 patterns.
        U32(Vec<u32>),
    }

    /// One f16 or f32 conformance input: a view into a buffer, its rotation and table.
    pub(crate) struct FloatCase {
        dtype: Dtype,
        name: String,
        view: TensorView,
        pairing: Pairing,
        rotary_dim: usize,
        positions: Positions,
        table: RopeTable,
        data: Data,
        /// The kernel the case is laid out for, checked against the library's pick.
        kernel: Option<&'static str>,
    }

    /// `(checked, mismatching pairs, first mismatches, error)`.
    type Outcome = (usize, usize, Vec<String>, Option<String>);

    impl FloatCase {
        fn call(&self, direction: Direction, precision: Precision) -> RopeCall<'_> {
            RopeCall::new(self.view, &self.positions, &self.table)
                .with_pairing(self.pairing)
                .with_rotary_dim(self.rotary_dim)
                .with_direction(direction)
                .with_precision(precision)
                .with_dtype(self.dtype)
        }

        /// Rotates on `gpu` and compares with the CPU path's result (hf for hf, else exact).
        pub(crate) fn check(
            &self,
            gpu: &Gpu,
            direction: Direction,
            precision: Precision,
        ) -> CliResult<Check> {
            let call = self.call(direction, precision);
            let kernel = picked_kernel(&call);
            if let Some(want) = self.kernel.filter(|k| *k != kernel) {
                return Err(CliError::failure(format!(
                    "internal error: the {} case {} is laid out for the {want} kernel but the library picks {kernel}",
                    self.dtype, self.name
                )));
            }
            let t = Instant::now();
            let (checked, mismatches, first, error) = match &self.data {
                Data::U16(x) => self.compare(gpu, &call, x)?,
                Data::U32(x) => self.compare(gpu, &call, x)?,
            };
            Ok(Check {
                dtype: self.dtype,
                case: self.name.clone(),
                kernel: kernel.into(),
                direction,
                checked,
                mismatches,
                seconds: t.elapsed().as_secs_f64(),
                first,
                error,
            })
        }

        fn compare<E: Bits + Eq + UpperHex>(
            &self,
            gpu: &Gpu,
            call: &RopeCall,
            x: &[E],
        ) -> CliResult<Outcome> {
            let direction = call.rotation.direction;
            let reference = super::reference_precision(call.rotation.precision);
            let expected = bfrope::cpu::apply(&self.call(direction, reference), x)?;
            let got = match gpu.apply_blocking(call, x) {
                Ok(g) => g,
                Err(e) => return Ok((0, 0, Vec::new(), Some(e.to_string()))),
            };
            if got.len() != expected.len() {
                return Ok((
                    0,
                    0,
                    Vec::new(),
                    Some(format!(
                        "the adapter returned {} elements for {}",
                        got.len(),
                        expected.len()
                    )),
                ));
            }
            let differ = got.iter().zip(&expected).filter(|(g, e)| g != e).count();
            if differ == 0 {
                return Ok((x.len(), 0, Vec::new(), None));
            }
            // Name the differing pairs with their inputs; count the elements outside the
            // rotated pairs that changed as well.
            let digits = 2 * E::BYTES;
            let v = self.view;
            let pairs = self.rotary_dim / 2;
            let (mut bad_pairs, mut in_pairs, mut first) = (0, 0, Vec::new());
            for b in 0..v.batch() {
                for s in 0..v.seq() {
                    let row = self.positions.row(b, s, v.seq());
                    for h in 0..v.heads() {
                        let head = v.head_start(b, s, h);
                        for i in 0..pairs {
                            let (a, c) = self.pairing.elements(i, pairs);
                            let (a, c) = (head + a, head + c);
                            let wrong =
                                (got[a] != expected[a]) as usize + (got[c] != expected[c]) as usize;
                            if wrong == 0 {
                                continue;
                            }
                            in_pairs += wrong;
                            bad_pairs += 1;
                            if first.len() < KEEP {
                                let [cs, sn] = self.table.get(row, i);
                                first.push(format!(
                                    "element {a}: x0=0x{:0digits$X} x1=0x{:0digits$X} cos={cs:e} (0x{:08X}) sin={sn:e} (0x{:08X}) {direction:?}: expected (0x{:0digits$X}, 0x{:0digits$X}), got (0x{:0digits$X}, 0x{:0digits$X})",
                                    x[a], x[c], cs.to_bits(), sn.to_bits(), expected[a], expected[c], got[a], got[c]
                                ));
                            }
                        }
                    }
                }
            }
            let outside = differ - in_pairs;
            if outside > 0 {
                first.push(format!(
                    "{outside} elements outside the rotated pairs changed"
                ));
            }
            Ok((x.len(), bad_pairs + outside, first, None))
        }
    }

    /// The angles of the f16 sweep: `--full`'s five and a subnormal sine beside a cosine
    /// just below 1.
    fn sweep_angles() -> CliResult<Vec<(String, f32, f32)>> {
        let mut a = super::full::angles()?;
        a.push(("tiny sin".into(), 1.0 - f32::EPSILON / 2.0, 1e-40));
        Ok(a)
    }

    /// The table whose row `t` holds angle `t` in each of `pairs` columns.
    fn angle_rows(angles: &[(String, f32, f32)], pairs: usize) -> CliResult<RopeTable> {
        let cos: Vec<f32> = angles
            .iter()
            .flat_map(|a| std::iter::repeat_n(a.1, pairs))
            .collect();
        let sin: Vec<f32> = angles
            .iter()
            .flat_map(|a| std::iter::repeat_n(a.2, pairs))
            .collect();
        Ok(RopeTable::from_cos_sin(&cos, &sin, angles.len(), pairs)?)
    }

    /// The f16 cases: every f16 pattern against [`EDGE_X1_F16`] at the sweep angles through
    /// the vec4 kernel (what contiguous interleaved f16 tensors take), at π/2 and position
    /// 1,000,000 through each other f16 kernel (vec4-half, scalar, general on words and on
    /// halves: a few seconds on lavapipe in all), and special values against special tables.
    pub(crate) fn f16_cases() -> CliResult<Vec<FloatCase>> {
        let all = sweep_angles()?;
        let some: Vec<_> = all
            .iter()
            .filter(|a| a.0 == "pi/2" || a.0 == "position 1000000")
            .cloned()
            .collect();
        let n1 = EDGE_X1_F16.len();
        let mut cases = Vec::new();
        for kernel in [
            Kernel::Vec4,
            Kernel::Vec4Half,
            Kernel::Scalar,
            Kernel::General,
            Kernel::Halves,
        ] {
            let angles = if kernel == Kernel::Vec4 { &all } else { &some };
            let layout = Layout {
                kernel,
                tokens: angles.len(),
                pairs: 65_536 * n1,
            };
            let x = layout.build(|_, w| ((w / n1) as u16, EDGE_X1_F16[w % n1]));
            cases.push(FloatCase {
                dtype: Dtype::F16,
                name: format!(
                    "sweep (every x0 x {n1} edge x1 x angles {})",
                    angles
                        .iter()
                        .map(|a| a.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                view: layout.view(),
                pairing: kernel.pairing(),
                rotary_dim: kernel.head_dim(),
                positions: Positions::Offset(0),
                table: angle_rows(angles, kernel.head_dim() / 2)?,
                data: Data::U16(x),
                kernel: Some(kernel.name()),
            });
        }
        let (view, table, positions, x) = special_tables(&SPECIAL_F16)?;
        cases.push(FloatCase {
            dtype: Dtype::F16,
            name: "special values x special tables".into(),
            view,
            pairing: Pairing::Interleaved,
            rotary_dim: view.head_dim(),
            positions,
            table,
            data: Data::U16(x),
            kernel: Some("vec4"),
        });
        Ok(cases)
    }

    /// Every pair of `values` against every `(cos, sin)` of the special table values: row
    /// `r` of the table holds combination `r`; token `s` (at row `s`, or reversed when the
    /// caller asks for per-token positions) holds all pairs.
    fn special_tables<E: Copy>(
        values: &[E],
    ) -> CliResult<(TensorView, RopeTable, Positions, Vec<E>)> {
        let n = values.len();
        let pairs = n * n;
        let t = special_table();
        let combos: Vec<(f32, f32)> = t
            .iter()
            .flat_map(|&c| t.iter().map(move |&s| (c, s)))
            .collect();
        let rows = combos.len();
        let cos: Vec<f32> = combos
            .iter()
            .flat_map(|c| std::iter::repeat_n(c.0, pairs))
            .collect();
        let sin: Vec<f32> = combos
            .iter()
            .flat_map(|c| std::iter::repeat_n(c.1, pairs))
            .collect();
        let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs)?;
        let token: Vec<E> = (0..pairs)
            .flat_map(|k| [values[k / n], values[k % n]])
            .collect();
        let x = token
            .iter()
            .copied()
            .cycle()
            .take(rows * 2 * pairs)
            .collect();
        Ok((
            TensorView::bshd(1, rows, 1, 2 * pairs),
            table,
            Positions::Offset(0),
            x,
        ))
    }

    /// Bits of `2^e · m` for `m` in [1, 2), random sign and fraction (`e` in −126..=127).
    fn normal_bits(g: &mut SplitMix64, e: i32) -> u32 {
        let r = g.next_u64();
        ((r as u32) & 0x8000_0000) | (((e + 127) as u32) << 23) | ((r >> 32) as u32 & 0x7F_FFFF)
    }

    /// An `x1` that nearly cancels one output of the pair with `x0` at table values
    /// `(c, s)`: within 2 ulp of `±x0·c/s` (y0, forward or inverse) or `±x0·s/c` (y1);
    /// `None` where the ratio is not finite.
    fn cancelling_partner(g: &mut SplitMix64, x0: u32, c: f32, s: f32) -> Option<u32> {
        let r = g.next_u64();
        let (c, s, x) = (f64::from(c), f64::from(s), f64::from(f32::from_bits(x0)));
        let ratio = if r & 1 == 0 { c / s } else { s / c };
        let sign = if r & 2 == 0 { 1.0 } else { -1.0 };
        let t = (sign * x * ratio) as f32;
        if !t.is_finite() || t == 0.0 {
            return None;
        }
        let delta = ((r >> 8) % 5) as i32 - 2;
        Some(t.to_bits().wrapping_add_signed(delta))
    }

    /// The `--full --dtype f32` pair `index` at table values `(c, s)`: half uniformly random
    /// bit patterns (every class: NaN payloads, infinities, subnormals, huge and tiny), a
    /// quarter normal values of magnitudes 2⁻²⁷..2²⁷, a quarter near-cancellation.
    pub(crate) fn random_f32_pair(seed: u64, index: u64, c: f32, s: f32) -> (u32, u32) {
        let mut g = SplitMix64(seed.rotate_left(40) ^ index);
        let r = g.next_u64();
        match r % 4 {
            0 | 1 => ((r >> 8) as u32, g.next_u64() as u32),
            2 => {
                let e0 = ((r >> 8) % 55) as i32 - 27;
                let e1 = ((r >> 16) % 55) as i32 - 27;
                (normal_bits(&mut g, e0), normal_bits(&mut g, e1))
            }
            _ => {
                let x0 = normal_bits(&mut g, ((r >> 8) % 55) as i32 - 27);
                let x1 = cancelling_partner(&mut g, x0, c, s).unwrap_or(g.next_u64() as u32);
                (x0, x1)
            }
        }
    }

    /// The f32 cases (the general kernel's f32 modules over several views).
    pub(crate) fn f32_cases(seed: u64) -> CliResult<Vec<FloatCase>> {
        let mut cases = Vec::new();
        let case =
            |name: String, view: TensorView, pairing, rotary_dim, positions, table, x| FloatCase {
                dtype: Dtype::F32,
                name,
                view,
                pairing,
                rotary_dim,
                positions,
                table,
                data: Data::U32(x),
                kernel: Some("general"),
            };

        // Uniformly random bit patterns, BSHD interleaved, a torch-mode table far out.
        let view = TensorView::bshd(1, 256, 8, 128);
        let table = RopeTable::build(&TableSpec {
            base: 500_000.0,
            rotary_dim: 128,
            first_position: 100_000,
            rows: 256,
            angles: AngleMode::Torch,
        })?;
        let mut g = SplitMix64(seed ^ 0xF32B_175F_32B1_75F3);
        let x = (0..view.span()).map(|_| g.next_u64() as u32).collect();
        cases.push(case(
            format!("random bit patterns (seed {seed})"),
            view,
            Pairing::Interleaved,
            128,
            Positions::Offset(0),
            table,
            x,
        ));

        // Normal data of mixed magnitudes (2⁻²⁰..2²⁰) with specials sprinkled in, BHSD
        // half-split (Hugging Face's), an exact table read from row 4000.
        let view = TensorView::bhsd(2, 8, 512, 128);
        let mut spec = TableSpec::new(128, 4000 + 512);
        spec.angles = AngleMode::Exact;
        let table = RopeTable::build(&spec)?;
        let mut g = SplitMix64(seed ^ 0x0F32_0F32_0F32_0F32);
        let x = (0..view.span())
            .map(|_| {
                let r = g.next_u64();
                if r % 500 == 0 {
                    SPECIAL_F32[((r >> 32) % SPECIAL_F32.len() as u64) as usize]
                } else {
                    let scale = ((r >> 16) % 41) as i32 - 20;
                    ((g.next_normal() * 2f64.powi(scale)) as f32).to_bits()
                }
            })
            .collect();
        cases.push(case(
            format!("normal data with specials (seed {seed})"),
            view,
            Pairing::HalfSplit,
            128,
            Positions::Offset(4000),
            table,
            x,
        ));

        // Near-cancellation: x1 within 2 ulp of the value that cancels y0 or y1 (forward or
        // inverse), a strided view at offset 3 with 16 pass-through dims per head.
        let view = TensorView {
            dims: [1, 512, 8, 64],
            strides: [512 * 8 * 66, 8 * 66, 66],
            offset: 3,
        };
        let rotary = 48;
        let mut spec = TableSpec::new(rotary, 513);
        spec.angles = AngleMode::Exact;
        let table = RopeTable::build(&spec)?;
        let mut g = SplitMix64(seed ^ 0xCA9C_E11A_7100_F320);
        let mut x: Vec<u32> = (0..view.span())
            .map(|_| {
                let e = (g.next_u64() % 21) as i32 - 10;
                normal_bits(&mut g, e)
            })
            .collect();
        let positions = Positions::Offset(1);
        for s in 0..view.seq() {
            for h in 0..view.heads() {
                let head = view.head_start(0, s, h);
                for i in 0..rotary / 2 {
                    let [c, sn] = table.get(positions.row(0, s, view.seq()), i);
                    let (a, b) = Pairing::Interleaved.elements(i, rotary / 2);
                    if let Some(p) = cancelling_partner(&mut g, x[head + a], c, sn) {
                        x[head + b] = p;
                    }
                }
            }
        }
        cases.push(case(
            format!("near-cancellation (seed {seed})"),
            view,
            Pairing::Interleaved,
            rotary,
            positions,
            table,
            x,
        ));

        // Subnormal and tiny data against tiny and subnormal table values (results round
        // into the subnormals or to signed zeros; nothing flushed), half-split.
        let view = TensorView::bshd(1, 256, 8, 128);
        let pairs = 64;
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for r in 0..256 {
            let (c, s) = match r % 4 {
                0 => (1.0 - f32::EPSILON / 2.0, 1e-40),
                1 => (f32::MIN_POSITIVE, 2f32.powi(-100)),
                2 => ((r as f64).cos() as f32, (r as f64).sin() as f32),
                _ => (0.5, 3.0 * f32::MIN_POSITIVE),
            };
            cos.extend(std::iter::repeat_n(c, pairs));
            sin.extend(std::iter::repeat_n(s, pairs));
        }
        let table = RopeTable::from_cos_sin(&cos, &sin, 256, pairs)?;
        let mut g = SplitMix64(seed ^ 0x5AB0_5AB0_5AB0_5AB0);
        let x = (0..view.span())
            .map(|_| {
                let r = g.next_u64();
                match r % 4 {
                    0 | 1 => (r >> 32) as u32 & 0x807F_FFFF,
                    2 => normal_bits(&mut g, -126 + ((r >> 8) % 24) as i32),
                    _ => normal_bits(&mut g, ((r >> 8) % 41) as i32 - 20),
                }
            })
            .collect();
        cases.push(case(
            format!("subnormal data and tables (seed {seed})"),
            view,
            Pairing::HalfSplit,
            128,
            Positions::Offset(0),
            table,
            x,
        ));

        // Special values against special, huge and subnormal tables, one id per token
        // (reversed rows).
        let (view, table, _, x) = special_tables(&SPECIAL_F32)?;
        let ids = (0..view.seq()).rev().collect();
        cases.push(case(
            "special values x special tables".into(),
            view,
            Pairing::Interleaved,
            view.head_dim(),
            Positions::PerToken(ids),
            table,
            x,
        ));
        Ok(cases)
    }
}

/// `conform --full`: every (x0, x1) pair of bf16 or f16 (or seeded random f32 pairs), on the
/// GPU, against the CPU path's pair rotation.
mod full {
    use std::ops::Range;
    use std::process::ExitCode;
    use std::sync::mpsc;
    use std::time::Instant;

    use bfrope::{
        Direction, Dtype, Gpu, Pairing, Positions, Precision, RopeCall, RopeTable, TableSpec,
        TensorView,
    };

    use super::formats::Format;
    use super::FullKernelArg;
    use crate::{CliError, CliResult};

    /// The kernel and angle a chunk's input was built for.
    type DataKey = (Kernel, usize);

    /// Every token of a chunk at table row 0 + s.
    static FROM_0: Positions = Positions::Offset(0);

    /// Mismatches kept per angle and direction for the report.
    const KEEP: usize = 5;
    /// Pairs per token: every x1 bit pattern, so token t holds x0 = start + t (f32: 65,536
    /// random pairs).
    const X1: usize = 1 << 16;

    /// A kernel a sweep runs the pairs through.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Kernel {
        /// Contiguous BSHD, interleaved pairs: the vec4 kernel (f32: the general kernel).
        Vec4,
        /// Contiguous BSHD, half-split pairs, 8 pairs per head: the half-split vec4 kernel.
        Vec4Half,
        /// Contiguous BSHD, interleaved, 2 pairs per head: the scalar kernel (the suite only).
        Scalar,
        /// BSHD, half-split pairs: the general kernel on whole words.
        General,
        /// BSHD at element offset 1, half-split pairs: the general kernel on 16-bit halves.
        Halves,
    }

    pub(crate) fn kernel_arg_name(k: FullKernelArg) -> &'static str {
        match k {
            FullKernelArg::Vec4 => "vec4",
            FullKernelArg::Vec4Half => "vec4-half",
            FullKernelArg::General => "general",
            FullKernelArg::Halves => "halves",
            FullKernelArg::All => "all",
        }
    }

    impl Kernel {
        pub(crate) fn name(self) -> &'static str {
            match self {
                Kernel::Vec4 => "vec4",
                Kernel::Vec4Half => "vec4-half",
                Kernel::Scalar => "scalar",
                Kernel::General => "general",
                Kernel::Halves => "halves",
            }
        }

        /// Element offset of the view in its buffer: 1 puts heads off word boundaries (the
        /// general kernel on 16-bit halves), 2 keeps them on words but makes the view no
        /// contiguous tensor, so the library picks the general kernel (its word path) for any
        /// head_dim.
        fn offset(self) -> usize {
            match self {
                Kernel::Halves => 1,
                Kernel::General => 2,
                _ => 0,
            }
        }

        /// Elements per head: 8 (four pairs: the vec4 kernel, and two whole words of x0 and
        /// two of x1 for the general kernel's word path), 16 for the half-split vec4 kernel
        /// (which takes heads of a multiple of 4 pairs), 4 for the scalar kernel (pairs per
        /// head not a multiple of 4).
        pub(crate) fn head_dim(self) -> usize {
            match self {
                Kernel::Vec4Half => 16,
                Kernel::Scalar => 4,
                _ => 8,
            }
        }

        pub(crate) fn pairing(self) -> Pairing {
            match self {
                Kernel::Vec4 | Kernel::Scalar => Pairing::Interleaved,
                _ => Pairing::HalfSplit,
            }
        }

        /// The library's kernel for this layout and dtype (`None`: the general kernel).
        fn library_kernel(self, dtype: Dtype) -> Option<bfrope::gpu::Kernel> {
            match (self, dtype) {
                (_, Dtype::F32) => None,
                (Kernel::Vec4, _) => Some(bfrope::gpu::Kernel::Vec4),
                (Kernel::Vec4Half, _) => Some(bfrope::gpu::Kernel::Vec4Half),
                (Kernel::Scalar, _) => Some(bfrope::gpu::Kernel::Scalar),
                (Kernel::General | Kernel::Halves, _) => None,
            }
        }
    }

    /// Where a sweep's pairs lie for one kernel: `tokens` tokens of `pairs` pairs each, in
    /// heads of [`Kernel::head_dim`] elements from the kernel's offset.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Layout {
        pub(crate) kernel: Kernel,
        pub(crate) tokens: usize,
        pub(crate) pairs: usize,
    }

    impl Layout {
        /// `[1, tokens, heads, head_dim]` at the kernel's offset.
        pub(crate) fn view(&self) -> TensorView {
            let d = self.kernel.head_dim();
            TensorView::bshd(1, self.tokens, self.pairs / (d / 2), d)
                .with_offset(self.kernel.offset())
        }

        /// Buffer index of pair `w`'s two elements in token `t` (pair `w` of a token is pair
        /// `w % per_head` of head `w / per_head`).
        fn elements(&self, t: usize, w: usize) -> (usize, usize) {
            let d = self.kernel.head_dim();
            let per_head = d / 2;
            let head = self.kernel.offset() + t * 2 * self.pairs + (w / per_head) * d;
            let (a, b) = self.kernel.pairing().elements(w % per_head, per_head);
            (head + a, head + b)
        }

        /// The buffer with pair `w` of token `t` set to `pair(t, w)`, built on every core.
        pub(crate) fn build<E: Copy + Default + Send>(
            &self,
            pair: impl Fn(usize, usize) -> (E, E) + Sync,
        ) -> Vec<E> {
            let off = self.kernel.offset();
            let per_token = 2 * self.pairs;
            let mut x = vec![E::default(); off + self.tokens * per_token];
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let per = self.tokens.div_ceil(threads).max(1);
            std::thread::scope(|s| {
                for (k, part) in x[off..].chunks_mut(per * per_token).enumerate() {
                    let pair = &pair;
                    s.spawn(move || {
                        for (j, token) in part.chunks_mut(per_token).enumerate() {
                            let t = k * per + j;
                            for w in 0..self.pairs {
                                let (a, b) = self.elements(t, w);
                                let base = off + t * per_token;
                                let (x0, x1) = pair(t, w);
                                token[a - base] = x0;
                                token[b - base] = x1;
                            }
                        }
                    });
                }
            });
            x
        }

        /// The outputs as `(y0, y1)` of pair `w` of token `t` at `2 (t · pairs + w)`.
        fn gather<E: Copy + Default>(&self, out: &[E]) -> Vec<E> {
            if self.kernel == Kernel::Vec4 && self.kernel.offset() == 0 {
                return out.to_vec();
            }
            let mut got = vec![E::default(); self.tokens * self.pairs * 2];
            for t in 0..self.tokens {
                for w in 0..self.pairs {
                    let (a, b) = self.elements(t, w);
                    let at = 2 * (t * self.pairs + w);
                    got[at] = out[a];
                    got[at + 1] = out[b];
                }
            }
            got
        }
    }

    /// The angles: name, cos and sin as f32 table values.
    pub(crate) fn angles() -> CliResult<Vec<(String, f32, f32)>> {
        let f = |a: f64| (libm::cos(a) as f32, libm::sin(a) as f32);
        let quarter = f(std::f64::consts::FRAC_PI_4);
        let half = f(std::f64::consts::FRAC_PI_2);
        let one = f(1.0);
        // Frequency 0 of a base-10000 table at position 1,000,000: what the library's table
        // builder gives (angle 1e6 rad).
        let far = RopeTable::build(&TableSpec {
            first_position: 1_000_000,
            ..TableSpec::new(128, 1)
        })?
        .get(0, 0);
        Ok(vec![
            ("0".into(), 1.0, 0.0),
            ("pi/4".into(), quarter.0, quarter.1),
            ("pi/2".into(), half.0, half.1),
            ("1 rad".into(), one.0, one.1),
            ("position 1000000".into(), far[0], far[1]),
        ])
    }

    /// Where the pairs come from: every x0 × every x1 (bf16, f16), or seeded random pairs
    /// (f32, [`super::floats::random_f32_pair`]).
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Source {
        pub(crate) seed: u64,
    }

    /// What `conform --full` runs.
    pub(crate) struct Options<'a> {
        pub(crate) gpus: &'a [Gpu],
        pub(crate) unopened: usize,
        /// Tokens (x0 values; f32: groups of 65,536 random pairs) to check.
        pub(crate) slice: Range<u32>,
        pub(crate) chunk: u32,
        pub(crate) kernels: &'a [Kernel],
        pub(crate) precision: Precision,
        pub(crate) json: bool,
        pub(crate) seed: u64,
        /// Tokens of the whole sweep (f32: `--full-pairs` / 65,536).
        pub(crate) tokens: u32,
    }

    /// One kernel, angle and direction's tally on one adapter.
    struct Tally {
        kernel: Kernel,
        angle: usize,
        direction: Direction,
        checked: u64,
        mismatches: u64,
        first: Vec<String>,
    }

    /// A GPU result for tokens `start..` at one kernel, angle and direction, as pairs.
    struct Piece<E> {
        start: u32,
        tally: usize,
        got: Vec<E>,
    }

    /// Runs the sweep of format `F` on every adapter of `o`.
    pub(crate) fn run<F: Format>(o: &Options) -> CliResult<ExitCode> {
        let angles = angles()?;
        let source = Source { seed: o.seed };
        let random = F::DTYPE == Dtype::F32;
        let mut all_pass = o.unopened == 0;
        let mut reports = Vec::new();
        for gpu in o.gpus {
            if !o.json {
                let what = if random {
                    format!(
                        "f32 seeded random pairs (seed {}, not exhaustive): tokens {}..{} of {} x 65,536 pairs",
                        o.seed, o.slice.start, o.slice.end, o.tokens
                    )
                } else {
                    format!(
                        "{} x0 0x{:04X}..0x{:04X} x all 65,536 x1",
                        F::DTYPE,
                        o.slice.start,
                        o.slice.end
                    )
                };
                println!(
                    "bfrope conform --full on {}: {what}, {} angles, forward and inverse, kernels {}",
                    gpu.adapter().summary(),
                    angles.len(),
                    o.kernels.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                );
            }
            let t = Instant::now();
            let tallies = check_adapter::<F>(gpu, &angles, o, source)?;
            let seconds = t.elapsed().as_secs_f64();
            let checked: u64 = tallies.iter().map(|t| t.checked).sum();
            let mismatches: u64 = tallies.iter().map(|t| t.mismatches).sum();
            let pass = mismatches == 0;
            all_pass &= pass;
            if !o.json {
                for t in &tallies {
                    let (name, c, s) = &angles[t.angle];
                    println!(
                        "  {} {} kernel, angle {name} (cos {c:e}, sin {s:e}), {}: {} pairs checked, {} mismatching pairs",
                        F::DTYPE,
                        t.kernel.name(),
                        format!("{:?}", t.direction).to_lowercase(),
                        t.checked,
                        t.mismatches
                    );
                    for m in &t.first {
                        println!("    {m}");
                    }
                }
                println!(
                    "  {}: {checked} pairs checked, {mismatches} mismatching, {seconds:.1} s",
                    if pass { "PASS" } else { "FAIL" }
                );
            }
            reports.push(serde_json::json!({
                "adapter": crate::info::adapter_json(gpu.adapter()),
                "pass": pass,
                "pairs_checked": checked,
                "mismatches": mismatches,
                "seconds": seconds,
                "checks": tallies.iter().map(|t| {
                    let (name, c, s) = &angles[t.angle];
                    serde_json::json!({
                        "kernel": t.kernel.name(),
                        "angle": name,
                        "cos": c,
                        "sin": s,
                        "direction": format!("{:?}", t.direction).to_lowercase(),
                        "pairs_checked": t.checked,
                        "mismatches": t.mismatches,
                        "first_mismatches": t.first,
                    })
                }).collect::<Vec<_>>(),
            }));
        }
        if o.json {
            let mut doc = serde_json::json!({
                "full": true,
                "dtype": F::DTYPE.name(),
                "exhaustive": !random,
                "kernels": o.kernels.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "pass": all_pass,
                "adapters": reports,
            });
            if random {
                doc["seed"] = o.seed.into();
                doc["token_slice"] = serde_json::json!([o.slice.start, o.slice.end]);
                doc["pairs_per_token"] = X1.into();
            } else {
                doc["x0_slice"] = serde_json::json!([o.slice.start, o.slice.end]);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("JSON of plain values")
            );
        } else {
            println!(
                "\n{}",
                if all_pass {
                    "conformance --full: PASS (every pair's bits equal the CPU path's)"
                } else {
                    "conformance --full: FAIL"
                }
            );
        }
        if !all_pass {
            eprintln!("error: conformance failed: an adapter's bits differ from the CPU path's (see the report)");
            return Ok(ExitCode::from(1));
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The GPU rotates chunks on one thread while every core checks the previous results.
    fn check_adapter<F: Format>(
        gpu: &Gpu,
        angles: &[(String, f32, f32)],
        o: &Options,
        source: Source,
    ) -> CliResult<Vec<Tally>> {
        let dirs = [Direction::Forward, Direction::Inverse];
        let mut tallies: Vec<Tally> = o
            .kernels
            .iter()
            .flat_map(|&kernel| {
                (0..angles.len()).flat_map(move |angle| {
                    dirs.into_iter().map(move |direction| Tally {
                        kernel,
                        angle,
                        direction,
                        checked: 0,
                        mismatches: 0,
                        first: Vec::new(),
                    })
                })
            })
            .collect();
        let configs: Vec<(Kernel, usize, Direction)> = tallies
            .iter()
            .map(|t| (t.kernel, t.angle, t.direction))
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slice = o.slice.clone();
        let total = (slice.end - slice.start) as u64;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::sync_channel::<CliResult<Piece<F::E>>>(2);
        std::thread::scope(|s| -> CliResult<()> {
            let producer_slice = slice.clone();
            let configs = &configs;
            let (chunk, precision) = (o.chunk, o.precision);
            s.spawn(move || {
                let mut start = producer_slice.start;
                while start < producer_slice.end {
                    let count = chunk.min(producer_slice.end - start);
                    let result = rotate_chunk::<F>(
                        gpu, angles, configs, start, count, precision, source, &tx,
                    );
                    if let Err(e) = result {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    start += count;
                }
            });
            let mut done_pairs = 0u64;
            let pairs_total = total * X1 as u64 * configs.len() as u64;
            let mut last_report = Instant::now();
            for piece in rx {
                let piece = piece?;
                let tally = &mut tallies[piece.tally];
                let (_, c, sn) = &angles[tally.angle];
                check_piece::<F>(&piece, (*c, *sn), o.precision, source, tally, threads);
                done_pairs += (piece.got.len() / 2) as u64;
                if last_report.elapsed().as_secs_f64() > 2.0 || done_pairs == pairs_total {
                    last_report = Instant::now();
                    let elapsed = t0.elapsed().as_secs_f64();
                    let frac = done_pairs as f64 / pairs_total as f64;
                    let mism: u64 = tallies.iter().map(|t| t.mismatches).sum();
                    eprintln!(
                        "conform --full ({}): {:.2}% of {} rotations, {mism} mismatches, {elapsed:.0} s elapsed, about {:.0} s left",
                        F::DTYPE,
                        100.0 * frac,
                        pairs_total,
                        elapsed / frac - elapsed
                    );
                }
            }
            Ok(())
        })?;
        Ok(tallies)
    }

    /// Rotates tokens `start..start + count` at every kernel, angle and direction on the GPU,
    /// sending each result as pairs in token order.
    #[allow(clippy::too_many_arguments)]
    fn rotate_chunk<F: Format>(
        gpu: &Gpu,
        angles: &[(String, f32, f32)],
        configs: &[(Kernel, usize, Direction)],
        start: u32,
        count: u32,
        precision: Precision,
        source: Source,
        tx: &mpsc::SyncSender<CliResult<Piece<F::E>>>,
    ) -> CliResult<()> {
        // [1, tokens, heads, head_dim] at the kernel's offset: token t's 65,536 pairs; every
        // table row and frequency holds the one angle.
        // Built per kernel (and, for f32, per angle: the cancelling pairs depend on it).
        let mut data: Option<(DataKey, Vec<F::E>)> = None;
        for (tally, &(kernel, angle, direction)) in configs.iter().enumerate() {
            let layout = Layout {
                kernel,
                tokens: count as usize,
                pairs: X1,
            };
            let (_, c, s) = &angles[angle];
            let (c, s) = (*c, *s);
            let key = (kernel, if F::PER_ANGLE { angle } else { 0 });
            if data.as_ref().is_none_or(|(k, _)| *k != key) {
                let x = layout.build(|t, w| F::pair(&source, start + t as u32, w as u32, c, s));
                data = Some((key, x));
            }
            let x = &data.as_ref().expect("built above").1;
            let pairs = kernel.head_dim() / 2;
            let n = layout.tokens * pairs;
            let table = RopeTable::from_cos_sin(&vec![c; n], &vec![s; n], layout.tokens, pairs)?;
            let call = RopeCall::new(layout.view(), &FROM_0, &table)
                .with_pairing(kernel.pairing())
                .with_direction(direction)
                .with_precision(precision)
                .with_dtype(F::DTYPE);
            // The call takes the kernel it is named for.
            let picked = Some(bfrope::gpu::kernel_for(&call).kernel).filter(|k| k.is_contiguous());
            if picked != kernel.library_kernel(F::DTYPE) {
                return Err(CliError::failure(format!(
                    "internal error: conform --full's {} layout does not select that kernel for {}",
                    kernel.name(),
                    F::DTYPE
                )));
            }
            let out = gpu.apply_blocking(&call, x)?;
            let got = layout.gather(&out);
            if tx.send(Ok(Piece { start, tally, got })).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Compares one GPU result with the CPU path on `threads` threads.
    fn check_piece<F: Format>(
        piece: &Piece<F::E>,
        (c, s): (f32, f32),
        precision: Precision,
        source: Source,
        tally: &mut Tally,
        threads: usize,
    ) {
        let pairs = piece.got.len() / 2;
        let per = pairs.div_ceil(threads).max(1);
        let direction = tally.direction;
        let d = F::DIGITS;
        let results: Vec<(u64, Vec<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = piece
                .got
                .chunks(per * 2)
                .enumerate()
                .map(|(k, part)| {
                    scope.spawn(move || {
                        let mut bad = 0u64;
                        let mut first = Vec::new();
                        for (i, got) in part.chunks_exact(2).enumerate() {
                            let p = k * per + i;
                            let t = piece.start + (p / X1) as u32;
                            let (x0, x1) = F::pair(&source, t, (p % X1) as u32, c, s);
                            let want = match precision {
                                Precision::Hf => F::rotate_hf(x0, x1, c, s, direction),
                                _ => F::rotate(x0, x1, c, s, direction),
                            };
                            if (got[0], got[1]) != want {
                                bad += 1;
                                if first.len() < KEEP {
                                    first.push(format!(
                                        "x0=0x{x0:0d$X} x1=0x{x1:0d$X} cos={c:e} sin={s:e} {direction:?}: expected (0x{:0d$X}, 0x{:0d$X}), got (0x{:0d$X}, 0x{:0d$X})",
                                        want.0, want.1, got[0], got[1]
                                    ));
                                }
                            }
                        }
                        (bad, first)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a checking thread panicked"))
                .collect()
        });
        tally.checked += pairs as u64;
        for (bad, first) in results {
            tally.mismatches += bad;
            for m in first {
                if tally.first.len() < KEEP {
                    tally.first.push(m);
                }
            }
        }
    }
}
