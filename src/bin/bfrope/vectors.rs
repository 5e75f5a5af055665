//! `bfrope vectors -o DIR [--dtype ...]` writes the conformance vectors (`vectors.json` and
//! `vectors.safetensors`) for grading any RoPE implementation; `bfrope grade DIR RESULTS`
//! grades a results file against them (docs/VECTORS.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bfrope::vectors::{self, GroupGrade, TOLERANCES};
use bfrope::Dtype;
use serde_json::json;

use crate::output;
use crate::{CliError, CliResult};

/// The dtypes `--dtype` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeSel {
    /// bfloat16 groups.
    Bf16,
    /// float16 groups.
    F16,
    /// float32 groups.
    F32,
    /// All three.
    All,
}

/// Arguments of `bfrope vectors`.
#[derive(Debug, clap::Args)]
pub struct VectorsArgs {
    /// The folder to write vectors.json and vectors.safetensors into (created if missing;
    /// existing files there are never replaced).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Which dtypes' groups to write.
    #[arg(long, value_enum, default_value = "all")]
    dtype: DtypeSel,
}

/// Arguments of `bfrope grade`.
#[derive(Debug, clap::Args)]
pub struct GradeArgs {
    /// The folder `bfrope vectors` wrote.
    #[arg(value_name = "DIR")]
    vectors: PathBuf,
    /// The implementation's outputs: a safetensors file with one tensor `<group>.output` per
    /// group, of the group's dtype and shape.
    #[arg(value_name = "RESULTS")]
    results: PathBuf,
    /// Print the grade as JSON.
    #[arg(long)]
    json: bool,
}

const JSON_NAME: &str = "vectors.json";
const TENSORS_NAME: &str = "vectors.safetensors";

/// Writes `bytes` to `path` through a temporary file renamed into place.
fn write_new(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let target = output::resolve(path, &[])?;
    let mut sink = target.open()?;
    sink.write_all(bytes)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    sink.commit()
}

/// Runs `bfrope vectors`.
pub fn run_vectors(a: &VectorsArgs) -> CliResult<ExitCode> {
    let dtypes = match a.dtype {
        DtypeSel::Bf16 => vec![Dtype::Bf16],
        DtypeSel::F16 => vec![Dtype::F16],
        DtypeSel::F32 => vec![Dtype::F32],
        DtypeSel::All => vec![Dtype::Bf16, Dtype::F16, Dtype::F32],
    };
    let dir = &a.output;
    if let Ok(meta) = std::fs::metadata(dir) {
        if !meta.is_dir() {
            return Err(CliError::usage(format!(
                "-o {} is a {}, not a folder",
                dir.display(),
                output::kind_of(&meta)
            )));
        }
    }
    let (json_path, st_path) = (dir.join(JSON_NAME), dir.join(TENSORS_NAME));
    for p in [&json_path, &st_path] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(CliError::usage(format!(
                "{} already exists; bfrope vectors does not replace it: remove it or choose another folder",
                p.display()
            )));
        }
    }
    let set = vectors::generate(&dtypes)?;
    let json_text = serde_json::to_string_pretty(&set.json())
        .map_err(|e| CliError::failure(format!("cannot write {JSON_NAME}: {e}")))?
        + "\n";
    let version = vectors::VERSION.to_string();
    let bytes = vectors::write_safetensors(
        &set.tensors(),
        &[("format", vectors::FORMAT), ("version", &version)],
    );
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::usage(format!("cannot create the folder {}: {e}", dir.display())))?;
    write_new(&st_path, &bytes)?;
    write_new(&json_path, json_text.as_bytes())?;
    let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
    eprintln!(
        "wrote {} groups, {} outputs ({}) to {}: {JSON_NAME} ({} bytes), {TENSORS_NAME} ({} bytes)",
        set.groups.len(),
        set.outputs(),
        names.join(", "),
        dir.display(),
        json_text.len(),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_file(path: &Path, what: &str) -> CliResult<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| CliError::usage(format!("cannot read {what} {}: {e}", path.display())))
}

/// Runs `bfrope grade`.
pub fn run_grade(a: &GradeArgs) -> CliResult<ExitCode> {
    let json_path = a.vectors.join(JSON_NAME);
    let st_path = a.vectors.join(TENSORS_NAME);
    let index_text = read_file(&json_path, "the vectors index")?;
    let index: serde_json::Value = serde_json::from_slice(&index_text)
        .map_err(|e| CliError::usage(format!("{} is not JSON: {e}", json_path.display())))?;
    let groups = vectors::read_index(&index)
        .map_err(|e| CliError::usage(format!("{}: {e}", json_path.display())))?;
    let vbytes = read_file(&st_path, "the vectors")?;
    let rbytes = read_file(&a.results, "the results file")?;
    let mut grades = vectors::grade_files(
        &st_path.display().to_string(),
        &vbytes,
        &a.results.display().to_string(),
        &rbytes,
    )?;
    // In the index's order; every group the index lists is in the tensors file.
    let mut ordered: Vec<GroupGrade> = Vec::with_capacity(groups.len());
    for g in &groups {
        let i = grades
            .iter()
            .position(|x| x.group == g.name)
            .ok_or_else(|| {
                CliError::usage(format!(
                    "{} has no tensor {} that {JSON_NAME} lists",
                    st_path.display(),
                    g.expected
                ))
            })?;
        ordered.push(grades.swap_remove(i));
    }
    let grades = ordered;
    let mismatches: u64 = grades.iter().map(|g| g.all.mismatches).sum();
    let outputs: u64 = grades.iter().map(|g| g.all.outputs).sum();
    if a.json {
        let cell = |c: &vectors::Cell| {
            json!({
                "outputs": c.outputs,
                "mismatches": c.mismatches,
                "nan_mismatches": c.nan_mismatches,
                "noncanonical_nan": c.noncanonical_nan,
                "worst_ulp": c.worst_ulp,
                "accepted": TOLERANCES.iter().zip(&c.accepted)
                    .map(|(t, n)| (t.peer.to_string(), json!(n)))
                    .collect::<serde_json::Map<_, _>>(),
            })
        };
        let out = json!({
            "vectors": a.vectors.display().to_string(),
            "results": a.results.display().to_string(),
            "outputs": outputs,
            "mismatches": mismatches,
            "pass": mismatches == 0,
            "groups": grades.iter().map(|g| json!({
                "group": g.group,
                "dtype": g.dtype.name(),
                "all": cell(&g.all),
                "classes": g.classes.iter()
                    .map(|(n, c)| ((*n).to_string(), cell(c)))
                    .collect::<serde_json::Map<_, _>>(),
                "first_mismatches": g.first,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_grades(&grades);
        println!(
            "{}: {outputs} outputs, {mismatches} differ from the correctly rounded result",
            if mismatches == 0 { "PASS" } else { "FAIL" }
        );
    }
    Ok(if mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The text report: per group, then each class with outputs; mismatching rows show the worst
/// ulp and how many of the mismatches each peer's tolerance accepts.
fn print_grades(grades: &[GroupGrade]) {
    let peers: Vec<&str> = TOLERANCES.iter().map(|t| t.peer).collect();
    println!(
        "{:<34} {:>9} {:>9} {:>6} {:>6} {:>6}  accepted by {}",
        "group / class",
        "outputs",
        "differ",
        "worst",
        "NaN≠",
        "NaN*",
        peers.join(" / ")
    );
    let row = |label: &str, c: &vectors::Cell| {
        let accepted = if c.mismatches == 0 {
            String::new()
        } else {
            c.accepted
                .iter()
                .map(|n| format!("{:.0}%", 100.0 * *n as f64 / c.mismatches as f64))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "{label:<34} {:>9} {:>9} {:>6} {:>6} {:>6}  {accepted}",
            c.outputs, c.mismatches, c.worst_ulp, c.nan_mismatches, c.noncanonical_nan
        );
    };
    for g in grades {
        row(&g.group, &g.all);
        for (name, c) in &g.classes {
            if c.mismatches > 0 || c.noncanonical_nan > 0 {
                row(&format!("  {name}"), c);
            }
        }
        for m in &g.first {
            println!("    {m}");
        }
    }
    println!(
        "(worst: ulps between the output and the correctly rounded one; NaN≠: a NaN on one side \
         only; NaN*: NaN where NaN is due, not the canonical one, not counted as a difference)"
    );
}
