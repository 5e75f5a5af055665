//! `bfrope`: the command line of the bfrope crate (docs/CONTRACT.md §7).
//!
//! ```text
//! bfrope                      # the main job: a demo on the best adapter (CPU path if none)
//! bfrope info [--json]        # adapters wgpu finds, their backend, driver and limits
//! bfrope apply INPUT.safetensors -o OUTPUT.safetensors [options]   (-o - writes to stdout)
//! bfrope table [--hf-config PATH | --base F | --inv-freq FILE:NAME] [--angles ..] [--axes ..]
//!       --positions N0..N1 | --positions-from FILE:NAME  -o TABLE.safetensors
//! bfrope conform [--adapter SUBSTRING | --all-adapters] [--dtype bf16|f16|f32|all] [--full] [--json]
//! bfrope bench [--adapter SUBSTRING] [--shapes BxSxHxD,...] [--dtypes bf16,f16,f32] [--quick] [--json]
//! bfrope explain --hf-config PATH [--layer-type NAME | --layer N] [--json]
//! ```
//!
//! Errors are one sentence on stderr; exit 2 for bad usage or bad input, 1 for a failure
//! while running.

// The CLI is native only; on wasm32 (where `cargo test` still builds it) it is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

#[path = "bfrope/apply.rs"]
mod apply;
#[path = "bfrope/bench.rs"]
mod bench;
#[path = "bfrope/conform.rs"]
mod conform;
#[path = "bfrope/demo.rs"]
mod demo;
#[path = "bfrope/explain.rs"]
mod explain;
#[path = "bfrope/info.rs"]
mod info;
#[path = "bfrope/memory.rs"]
mod memory;
#[path = "bfrope/output.rs"]
mod output;
#[path = "bfrope/placement.rs"]
mod placement;
#[path = "bfrope/progress.rs"]
mod progress;
#[path = "bfrope/read.rs"]
mod read;
#[path = "bfrope/stream.rs"]
mod stream;
#[path = "bfrope/table.rs"]
mod table;
#[path = "bfrope/table_source.rs"]
mod table_source;
#[path = "bfrope/vectors.rs"]
mod vectors;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Correctly rounded RoPE on bf16 tensors with WGSL compute shaders (wgpu), with a CPU path
/// that returns the same bits. With no command: a demo on the best adapter.
#[derive(Debug, Parser)]
#[command(name = "bfrope", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The adapters wgpu finds: backend, driver, device type, limits, timestamp support.
    Info(info::InfoArgs),
    /// Rotate BF16 tensors of a safetensors file and write every tensor to OUTPUT.
    Apply(Box<apply::ApplyArgs>),
    /// The conformance suite on real adapters: GPU bits against the CPU path; exit 1 on any mismatch.
    Conform(conform::ConformArgs),
    /// Write the F32 cos/sin a call would use ([P, R/2]) to a safetensors file.
    Table(Box<table::TableArgs>),
    /// Exact, fast and a copy of the same bytes side by side, timed with GPU timestamps.
    Bench(bench::BenchArgs),
    /// What bfrope reads from a model's config.json and decides: pairing, dims, base, layers.
    Explain(explain::ExplainArgs),
    /// Write conformance vectors for grading any RoPE implementation, bit for bit.
    Vectors(vectors::VectorsArgs),
    /// Grade an implementation's results on the vectors: per group and class; exit 1 on any difference.
    Grade(vectors::GradeArgs),
}

/// A failure with its exit code: 2 for bad usage or input, 1 for a failure while running.
#[derive(Debug)]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// One sentence naming the offending value.
    pub message: String,
}

impl CliError {
    /// Bad usage or bad input: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// A failure while running: exit 1.
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Adds context in front of the message, keeping the code.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        Self {
            code: self.code,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl From<bfrope::Error> for CliError {
    fn from(e: bfrope::Error) -> Self {
        use bfrope::Error as E;
        let code = match e {
            E::Shape { .. } | E::Length { .. } | E::Table(_) | E::Parameter(_) | E::Argument(_) => {
                2
            }
            E::NoAdapter(_) | E::Limit(_) | E::DeviceLost(_) | E::Gpu(_) => 1,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

/// The CLI's result type.
pub type CliResult<T> = Result<T, CliError>;

/// A duration in milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Little-endian bytes to bf16 bit patterns.
pub fn bits_from_le(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// bf16 bit patterns to little-endian bytes.
pub fn le_from_bits(bits: &[u16]) -> Vec<u8> {
    bits.iter().flat_map(|b| b.to_le_bytes()).collect()
}

/// clap's error in one line: its first line, the possible values or tip, and a pointer to --help.
fn clap_one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("Usage:") || t.starts_with("For more information") {
            continue;
        }
        parts.push(t.strip_prefix("error: ").unwrap_or(t).to_string());
    }
    format!("{} (see 'bfrope --help')", parts.join(" "))
}

fn run(cli: Cli) -> CliResult<ExitCode> {
    match cli.command {
        None => demo::run(),
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Apply(args)) => apply::run(&args),
        Some(Command::Conform(args)) => conform::run(&args),
        Some(Command::Table(args)) => table::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Explain(args)) => explain::run(&args),
        Some(Command::Vectors(args)) => vectors::run_vectors(&args),
        Some(Command::Grade(args)) => vectors::run_grade(&args),
    }
}

/// Mesa's Vulkan loader probes Wayland, and libwayland prints "error: XDG_RUNTIME_DIR is
/// invalid or not set in the environment." on every GPU command where the variable is unset
/// (servers, containers, CI), which reads as bfrope's own error. Without a usable
/// `XDG_RUNTIME_DIR`, the process gets a private empty one (0700, removed at exit): the probe
/// then finds no display, quietly.
#[cfg(unix)]
fn private_runtime_dir() -> Option<tempfile::TempDir> {
    let usable = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .is_some_and(|p| p.is_absolute() && p.is_dir());
    if usable {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("bfrope-runtime-")
        .tempdir()
        .ok()?;
    // Set before any thread starts (clap parsing and GPU work come after).
    std::env::set_var("XDG_RUNTIME_DIR", dir.path());
    Some(dir)
}

fn main() -> ExitCode {
    output::guard_standard_fds();
    #[cfg(unix)]
    let _runtime_dir = private_runtime_dir();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            return match err.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = err.print();
                    ExitCode::from(err.exit_code() as u8)
                }
                _ => {
                    eprintln!("error: {}", clap_one_line(&err));
                    ExitCode::from(2)
                }
            };
        }
    };
    // A panic (a bug, or a driver wgpu could not survive) still ends in one sentence and exit 1.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let what = what.lines().next().unwrap_or_default().to_string();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal failure{at}: {what}");
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
        Err(_) => ExitCode::from(1),
    }
}
