//! `bfrope conform`: the conformance suite on real adapters. Every adapter's output bits are
//! compared with the CPU path's on the library's full suite (`conformance::suite`, the one the
//! web page runs): the special-value sweep, seeded random data and bit patterns, special
//! tables, forward and inverse. Exit 1 on any mismatch.

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
    #[arg(long, default_value_t = 1)]
    seed: u64,
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
