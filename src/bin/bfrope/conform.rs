//! `bfrope conform`: the conformance suite on real adapters. Every adapter's output bits are
//! compared with the CPU path's on the library's full suite (`conformance::suite`, the one the
//! web page runs): the special-value sweep, seeded random data and bit patterns, special
//! tables, forward and inverse. Exit 1 on any mismatch.
//!
//! `--full` is the exhaustive check instead: all 2^32 `(x0, x1)` bf16 pairs at angles 0, π/4,
//! π/2, 1 rad and one table value of position 1,000,000, forward and inverse, on the GPU,
//! through every kernel (`--kernel`: the contiguous vec4 kernels, interleaved and half-split;
//! the general kernel on whole words, half-split pairs; the general kernel on 16-bit halves,
//! half-split pairs at an odd element offset), each output compared with `cpu::rotate_pair` on
//! every core.

use std::process::ExitCode;
use std::time::Instant;

use bfrope::conformance::{self, Case, Mismatch};
use bfrope::{Direction, Gpu, Precision};

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
    /// Kernel arithmetic to check: exact (the contract) or fast (plain f32, expected to differ;
    /// shows what the exact mode guards against).
    #[arg(long, value_enum, default_value = "exact")]
    precision: crate::apply::PrecisionArg,
    /// Seed of the random-data check.
    #[arg(long, default_value_t = 1, conflicts_with = "full")]
    seed: u64,
    /// Check every (x0, x1) bf16 pair (2^32) at five angles, forward and inverse, instead of
    /// the suite (hours on a small machine; progress and an estimate on stderr).
    #[arg(long)]
    full: bool,
    /// With --full: only x0 bit patterns in START..END (hex 0x.. or decimal; a test's slice).
    #[arg(long, value_name = "START..END", value_parser = parse_slice, requires = "full", hide = true)]
    full_slice: Option<(u32, u32)>,
    /// With --full: the kernels to sweep (vec4: contiguous interleaved; vec4-half: contiguous
    /// half-split; general: any view,
    /// whole words, half-split; halves: any view, 16-bit halves, half-split at an odd offset).
    #[arg(long, value_enum, default_value = "all", requires = "full")]
    kernel: FullKernelArg,
    /// With --full: x0 values per GPU call (each holds x0 × 65,536 pairs).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=4096), requires = "full", hide = true)]
    full_chunk: u32,
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
    /// All four.
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

struct Check {
    case: String,
    direction: Direction,
    checked: usize,
    mismatches: usize,
    seconds: f64,
    first: Vec<Mismatch>,
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

/// Runs `bfrope conform`.
pub fn run(a: &ConformArgs) -> CliResult<ExitCode> {
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
        let (start, end) = a.full_slice.unwrap_or((0, 0x10000));
        let kernels: &[full::Kernel] = match a.kernel {
            FullKernelArg::Vec4 => &[full::Kernel::Vec4],
            FullKernelArg::Vec4Half => &[full::Kernel::Vec4Half],
            FullKernelArg::General => &[full::Kernel::General],
            FullKernelArg::Halves => &[full::Kernel::Halves],
            FullKernelArg::All => &[
                full::Kernel::Vec4,
                full::Kernel::Vec4Half,
                full::Kernel::General,
                full::Kernel::Halves,
            ],
        };
        return full::run(
            &gpus,
            unopened,
            start..end,
            a.full_chunk,
            kernels,
            precision,
            a.json,
        );
    }
    // The cases and their reference results, shared by every adapter.
    let t = Instant::now();
    let cases = conformance::suite(conformance::Suite::Full, a.seed);
    let mut references = Vec::new();
    for case in &cases {
        for dir in [Direction::Forward, Direction::Inverse] {
            references.push((case, dir, case.expected(dir)?));
        }
    }
    if !a.json {
        println!(
            "bfrope conform: {} checks, reference from the CPU path in {:.2} s",
            references.len(),
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
        let pass = checks
            .iter()
            .all(|c| c.mismatches == 0 && c.error.is_none());
        all_pass &= pass;
        if !a.json {
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
                            "case": c.case,
                            "direction": format!("{:?}", c.direction).to_lowercase(),
                            "checked": c.checked,
                            "mismatches": c.mismatches,
                            "seconds": c.seconds,
                            "first_mismatches": c.first.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
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
        let doc = serde_json::json!({ "pass": all_pass, "adapters": adapters });
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

fn run_check(
    gpu: &Gpu,
    case: &Case,
    direction: Direction,
    expected: &[u16],
    precision: Precision,
) -> Check {
    let t = Instant::now();
    let got = gpu.apply_blocking(&case.call(direction, precision), &case.x);
    let seconds = t.elapsed().as_secs_f64();
    match got {
        Ok(got) => {
            let (mismatches, first) = case.compare(direction, expected, &got, KEEP);
            Check {
                case: case.name.clone(),
                direction,
                checked: expected.len(),
                mismatches,
                seconds,
                first,
                error: None,
            }
        }
        Err(e) => Check {
            case: case.name.clone(),
            direction,
            checked: 0,
            mismatches: 0,
            seconds,
            first: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

fn print_check(c: &Check) {
    let dir = format!("{:?}", c.direction).to_lowercase();
    match &c.error {
        Some(e) => println!("  {}, {dir}: ERROR {e}", c.case),
        None => {
            println!(
                "  {}, {dir}: {} elements checked, {} mismatching pairs, {:.2} s",
                c.case, c.checked, c.mismatches, c.seconds
            );
            for m in &c.first {
                println!("    {m}");
            }
        }
    }
}

/// `conform --full`: every (x0, x1) pair, on the GPU, against `cpu::rotate_pair`.
mod full {
    use std::ops::Range;
    use std::process::ExitCode;
    use std::sync::mpsc;
    use std::time::Instant;

    use bfrope::{
        Direction, Gpu, Pairing, Positions, Precision, RopeCall, RopeTable, TableSpec, TensorView,
    };

    /// Every token of a chunk at table row 0 + s.
    static FROM_0: Positions = Positions::Offset(0);

    use crate::CliResult;

    /// Mismatches kept per angle and direction for the report.
    const KEEP: usize = 5;
    /// Pairs per token: every x1 bit pattern, so token t holds x0 = start + t.
    const X1: usize = 1 << 16;

    /// A kernel the sweep runs the pairs through.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Kernel {
        /// Contiguous BSHD, interleaved pairs: the vec4 kernel.
        Vec4,
        /// Contiguous BSHD, half-split pairs, 8 pairs per head: the half-split vec4 kernel.
        Vec4Half,
        /// BSHD, half-split pairs: the general kernel on whole words.
        General,
        /// BSHD at element offset 1, half-split pairs: the general kernel on 16-bit halves.
        Halves,
    }

    impl Kernel {
        fn name(self) -> &'static str {
            match self {
                Kernel::Vec4 => "vec4",
                Kernel::Vec4Half => "vec4-half",
                Kernel::General => "general",
                Kernel::Halves => "halves",
            }
        }

        /// Element offset of the view in its buffer.
        fn offset(self) -> usize {
            match self {
                Kernel::Halves => 1,
                _ => 0,
            }
        }

        /// Elements per head: 8 (four pairs: the vec4 kernel, and two whole words of x0 and
        /// two of x1 for the general kernel's word path), 16 for the half-split vec4 kernel
        /// (which takes heads of a multiple of 8 pairs).
        fn head_dim(self) -> usize {
            match self {
                Kernel::Vec4Half => 16,
                _ => 8,
            }
        }

        fn pairing(self) -> Pairing {
            match self {
                Kernel::Vec4 => Pairing::Interleaved,
                _ => Pairing::HalfSplit,
            }
        }

        /// Buffer index of pair `w`'s two elements (pair `w` of a token is pair `w % pairs` of
        /// head `w / pairs`).
        fn elements(self, token: usize, w: usize) -> (usize, usize) {
            let pairs = self.head_dim() / 2;
            let head = self.offset() + token * 2 * X1 + (w / pairs) * self.head_dim();
            let (a, b) = self.pairing().elements(w % pairs, pairs);
            (head + a, head + b)
        }
    }

    /// The angles: name, cos and sin as f32 table values.
    pub(super) fn angles() -> CliResult<Vec<(String, f32, f32)>> {
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

    /// One angle and direction's tally on one adapter.
    struct Tally {
        kernel: Kernel,
        angle: usize,
        direction: Direction,
        checked: u64,
        mismatches: u64,
        first: Vec<String>,
    }

    /// A GPU result for x0 in `start..start + count` at one angle and direction.
    struct Piece {
        start: u32,
        tally: usize,
        got: Vec<u16>,
    }

    /// Runs the exhaustive check on every adapter in `gpus`.
    pub(super) fn run(
        gpus: &[Gpu],
        unopened: usize,
        slice: Range<u32>,
        chunk: u32,
        kernels: &[Kernel],
        precision: Precision,
        json: bool,
    ) -> CliResult<ExitCode> {
        let angles = angles()?;
        let mut all_pass = unopened == 0;
        let mut reports = Vec::new();
        for gpu in gpus {
            if !json {
                println!(
                    "bfrope conform --full on {}: x0 0x{:04X}..0x{:04X} × all 65,536 x1, {} angles, forward and inverse, kernels {}",
                    gpu.adapter().summary(),
                    slice.start,
                    slice.end,
                    angles.len(),
                    kernels.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                );
            }
            let t = Instant::now();
            let tallies = check_adapter(gpu, &angles, slice.clone(), chunk, kernels, precision)?;
            let seconds = t.elapsed().as_secs_f64();
            let checked: u64 = tallies.iter().map(|t| t.checked).sum();
            let mismatches: u64 = tallies.iter().map(|t| t.mismatches).sum();
            let pass = mismatches == 0;
            all_pass &= pass;
            if !json {
                for t in &tallies {
                    let (name, c, s) = &angles[t.angle];
                    println!(
                        "  {} kernel, angle {name} (cos {c:e}, sin {s:e}), {}: {} pairs checked, {} mismatching pairs",
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
        if json {
            let doc = serde_json::json!({
                "full": true,
                "x0_slice": [slice.start, slice.end],
                "kernels": kernels.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "pass": all_pass,
                "adapters": reports,
            });
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
    fn check_adapter(
        gpu: &Gpu,
        angles: &[(String, f32, f32)],
        slice: Range<u32>,
        chunk: u32,
        kernels: &[Kernel],
        precision: Precision,
    ) -> CliResult<Vec<Tally>> {
        let dirs = [Direction::Forward, Direction::Inverse];
        let mut tallies: Vec<Tally> = kernels
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
        let total = (slice.end - slice.start) as u64;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::sync_channel::<bfrope::Result<Piece>>(2);
        std::thread::scope(|s| -> CliResult<()> {
            let producer_slice = slice.clone();
            let configs = &configs;
            s.spawn(move || {
                let mut start = producer_slice.start;
                while start < producer_slice.end {
                    let count = chunk.min(producer_slice.end - start);
                    let result = rotate_chunk(gpu, angles, configs, start, count, precision, &tx);
                    if let Err(e) = result {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    start += count;
                }
            });
            let mut done_words = 0u64;
            let words_total = total * X1 as u64 * configs.len() as u64;
            let mut last_report = Instant::now();
            for piece in rx {
                let piece = piece?;
                let tally = &mut tallies[piece.tally];
                let (_, c, sn) = &angles[tally.angle];
                check_piece(&piece, *c, *sn, tally, threads);
                done_words += (piece.got.len() / 2) as u64;
                if last_report.elapsed().as_secs_f64() > 2.0 || done_words == words_total {
                    last_report = Instant::now();
                    let elapsed = t0.elapsed().as_secs_f64();
                    let frac = done_words as f64 / words_total as f64;
                    let mism: u64 = tallies.iter().map(|t| t.mismatches).sum();
                    eprintln!(
                        "conform --full: {:.2}% of {} rotations, {mism} mismatches, {elapsed:.0} s elapsed, about {:.0} s left",
                        100.0 * frac,
                        words_total,
                        elapsed / frac - elapsed
                    );
                }
            }
            Ok(())
        })?;
        Ok(tallies)
    }

    /// Rotates x0 in `start..start + count` × every x1 at every angle and direction on the
    /// GPU through each kernel, sending each result as interleaved pairs `(x0, x1 = w)`.
    fn rotate_chunk(
        gpu: &Gpu,
        angles: &[(String, f32, f32)],
        configs: &[(Kernel, usize, Direction)],
        start: u32,
        count: u32,
        precision: Precision,
        tx: &mpsc::SyncSender<bfrope::Result<Piece>>,
    ) -> bfrope::Result<()> {
        let tokens = count as usize;
        // [1, tokens, heads, 8] at the kernel's offset: token t's 65,536 pairs, pair w with
        // x0 = start + t and x1 = w; every table row and frequency holds the one angle.
        let view = |k: Kernel| {
            TensorView::bshd(1, tokens, X1 / (k.head_dim() / 2), k.head_dim())
                .with_offset(k.offset())
        };
        let mut data: Option<(Kernel, Vec<u16>)> = None;
        for (tally, &(kernel, angle, direction)) in configs.iter().enumerate() {
            if data.as_ref().is_none_or(|(k, _)| *k != kernel) {
                let mut x = vec![0u16; kernel.offset() + tokens * X1 * 2];
                for t in 0..tokens {
                    for w in 0..X1 {
                        let (a, b) = kernel.elements(t, w);
                        x[a] = (start as usize + t) as u16;
                        x[b] = w as u16;
                    }
                }
                data = Some((kernel, x));
            }
            let x = &data.as_ref().expect("built above").1;
            let (_, c, s) = &angles[angle];
            let pairs = kernel.head_dim() / 2;
            let n = tokens * pairs;
            let table = RopeTable::from_cos_sin(&vec![*c; n], &vec![*s; n], tokens, pairs)?;
            let call = RopeCall::new(view(kernel), &FROM_0, &table)
                .with_pairing(kernel.pairing())
                .with_direction(direction)
                .with_precision(precision);
            // The call takes the kernel it is named for.
            let key = call.contiguous_pairs().and_then(|(shape, _, pairing)| {
                bfrope::KernelKey::for_contiguous(&shape, pairing, precision, call.rotation.dtype)
            });
            let expect = match kernel {
                Kernel::Vec4 => Some(bfrope::gpu::Kernel::Vec4),
                Kernel::Vec4Half => Some(bfrope::gpu::Kernel::Vec4Half),
                Kernel::General | Kernel::Halves => None,
            };
            assert_eq!(
                key.map(|k| k.kernel),
                expect,
                "conform --full {}",
                kernel.name()
            );
            let out = gpu.apply_blocking(&call, x)?;
            let got = if kernel == Kernel::Vec4 {
                out
            } else {
                let mut got = vec![0u16; tokens * X1 * 2];
                for t in 0..tokens {
                    for w in 0..X1 {
                        let (a, b) = kernel.elements(t, w);
                        let at = 2 * (t * X1 + w);
                        got[at] = out[a];
                        got[at + 1] = out[b];
                    }
                }
                got
            };
            if tx.send(Ok(Piece { start, tally, got })).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Compares one GPU result with `cpu::rotate_pair` on `threads` threads.
    fn check_piece(piece: &Piece, c: f32, s: f32, tally: &mut Tally, threads: usize) {
        let words = piece.got.len() / 2;
        let per = words.div_ceil(threads).max(1);
        let direction = tally.direction;
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
                            let w = k * per + i;
                            let x0 = (piece.start as usize + w / X1) as u16;
                            let x1 = (w % X1) as u16;
                            let want = bfrope::cpu::rotate_pair(x0, x1, c, s, direction);
                            if (got[0], got[1]) != want {
                                bad += 1;
                                if first.len() < KEEP {
                                    first.push(format!(
                                        "x0=0x{x0:04X} x1=0x{x1:04X} cos={c:e} sin={s:e} {direction:?}: expected (0x{:04X}, 0x{:04X}), got (0x{:04X}, 0x{:04X})",
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
        tally.checked += words as u64;
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
