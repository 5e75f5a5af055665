//! `kernel-stats`: what the Vulkan driver says about each of bfrope's compiled kernels
//! (register count, shared memory, ... as `VK_KHR_pipeline_executable_properties` reports
//! them; names vary by driver). See `--help`.

mod compile;
mod vulkan;

use anyhow::{bail, Context, Result};
use clap::Parser;
use compile::Wgsl;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints the Vulkan driver's per-pipeline statistics (VK_KHR_pipeline_executable_properties)
/// for each of bfrope's WGSL kernels, one row per kernel and override values.
///
/// The WGSL is compiled to SPIR-V with naga as wgpu 30 does on Vulkan. Exit status 2: the
/// device does not support the extension.
#[derive(Parser, Debug)]
#[command(name = "kernel-stats", version)]
struct Cli {
    /// Use the first Vulkan device whose name contains this (case-insensitive); default:
    /// the first discrete GPU, else integrated, virtual, other, CPU.
    #[arg(long)]
    adapter: Option<String>,
    /// One JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also a full WGSL module, as NAME=PATH:ENTRY (same override names: EXACT, DTYPE,
    /// HALF_SPLIT, WORKGROUP_SIZE, set where the module declares them). Repeatable.
    #[arg(long = "file", value_name = "NAME=PATH:ENTRY")]
    files: Vec<String>,
    /// Only the kernels whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip bfrope's built-in kernels (only the --file modules).
    #[arg(long)]
    no_builtin: bool,
    /// EXACT values (0 fast, 1 exact, 2 hf).
    #[arg(long, value_delimiter = ',', default_values_t = [0u32, 1, 2])]
    exact: Vec<u32>,
    /// DTYPE values (0 bf16, 1 f16, 2 f32). Default: the built-in kernels each build those
    /// they serve (bf16 and f16; f32 for the general f32 modules), --file modules 0 and 1;
    /// given, the built-in kernels keep those they serve among them.
    #[arg(long, value_delimiter = ',')]
    dtypes: Option<Vec<u32>>,
    /// HALF_SPLIT values for modules that declare it (the general kernel).
    #[arg(long, value_delimiter = ',', default_values_t = [0u32, 1])]
    half_split: Vec<u32>,
    /// TABLE_IN_RANGE for the contiguous kernels and --file modules that declare it: 1 (what
    /// bfrope runs for the tables it builds: no per-unit table test) or 0 (a raw table not
    /// known to be in range). The general kernels always build 0, as bfrope does.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
    table_in_range: u32,
    /// WORKGROUP_SIZE (bfrope's own by default).
    #[arg(long, default_value_t = bfrope::gpu::WORKGROUP_SIZE)]
    workgroup_size: u32,
    /// Write each pipeline's SPIR-V to DIR (one .spv per row), e.g. for spirv-val.
    #[arg(long, value_name = "DIR")]
    spv_out: Option<PathBuf>,
    /// Build the pipelines without capturing statistics (a device without the extension
    /// still checks that the driver compiles every kernel).
    #[arg(long)]
    compile_only: bool,
}

/// A WGSL module and the entry point to build.
struct Module {
    name: String,
    entry: String,
    wgsl: Wgsl,
    /// DTYPE values it serves (built-ins) or None (a --file: the --dtypes list).
    dtypes: Option<Vec<u32>>,
}

/// One pipeline to build: a module with override values.
struct Job<'a> {
    module: &'a Module,
    exact: Option<u32>,
    dtype: Option<u32>,
    half_split: Option<u32>,
    constants: Vec<(String, f64)>,
}

impl Job<'_> {
    fn file_stem(&self) -> String {
        let mut s: String = self
            .module
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        for (tag, v) in [("e", self.exact), ("d", self.dtype), ("h", self.half_split)] {
            if let Some(v) = v {
                s += &format!(".{tag}{v}");
            }
        }
        s
    }
}

fn builtin_modules() -> Vec<(String, String, &'static str, Vec<u32>)> {
    use bfrope::shaders as s;
    let mut v = vec![
        (
            "rope_vec4".to_string(),
            s::rope_vec4_source(),
            s::ROPE_VEC4_ENTRY,
            vec![0, 1],
        ),
        (
            "rope_vec4_half".to_string(),
            s::rope_vec4_half_source(),
            s::ROPE_VEC4_HALF_ENTRY,
            vec![0, 1],
        ),
        (
            "rope_scalar".to_string(),
            s::rope_source(),
            s::ROPE_ENTRY,
            vec![0, 1],
        ),
    ];
    for (name, _in_place, _views, _words, source) in s::rope_general_modules() {
        // The f32 modules serve DTYPE 2 only; the others bf16 and f16 (src/gpu/kernels.rs).
        let dtypes = if name.contains("f32") {
            vec![2]
        } else {
            vec![0, 1]
        };
        v.push((name, source, s::ROPE_GENERAL_ENTRY, dtypes));
    }
    v.push(("copy".to_string(), s::copy_source(), s::COPY_ENTRY, vec![]));
    v
}

fn load_modules(cli: &Cli) -> Result<Vec<Module>> {
    let keep =
        |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| name.contains(o.as_str()));
    let mut out = Vec::new();
    if !cli.no_builtin {
        for (name, source, entry, dtypes) in builtin_modules() {
            if !keep(&name) {
                continue;
            }
            let wgsl = Wgsl::parse(&name, &source)?;
            out.push(Module {
                name,
                entry: entry.to_string(),
                wgsl,
                dtypes: Some(dtypes),
            });
        }
    }
    for spec in &cli.files {
        let (name, rest) = spec
            .split_once('=')
            .with_context(|| format!("--file \"{spec}\" is not NAME=PATH:ENTRY (no '=')"))?;
        let (path, entry) = rest
            .rsplit_once(':')
            .with_context(|| format!("--file \"{spec}\" is not NAME=PATH:ENTRY (no ':ENTRY')"))?;
        if name.is_empty() || path.is_empty() || entry.is_empty() {
            bail!("--file \"{spec}\" is not NAME=PATH:ENTRY (an empty part)");
        }
        if !keep(name) {
            continue;
        }
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("--file {name}: reading {path}"))?;
        let wgsl = Wgsl::parse(path, &source)?;
        if !wgsl.has_compute_entry(entry) {
            bail!(
                "--file {name}: {path} has no compute entry point `{entry}` (it has: {})",
                wgsl.compute_entries().join(", ")
            );
        }
        out.push(Module {
            name: name.to_string(),
            entry: entry.to_string(),
            wgsl,
            dtypes: None,
        });
    }
    if out.is_empty() {
        bail!("no kernel left to build (check --only and --no-builtin)");
    }
    Ok(out)
}

fn jobs<'a>(cli: &Cli, modules: &'a [Module]) -> Result<Vec<Job<'a>>> {
    let mut out = Vec::new();
    for m in modules {
        let overrides = m.wgsl.overrides();
        let has = |n: &str| overrides.iter().any(|o| o == n);
        let list =
            |values: &[u32]| -> Vec<Option<u32>> { values.iter().map(|&v| Some(v)).collect() };
        let exacts = if has("EXACT") {
            list(&cli.exact)
        } else {
            vec![None]
        };
        let dtypes = if has("DTYPE") {
            match &m.dtypes {
                Some(served) => list(
                    &served
                        .iter()
                        .copied()
                        .filter(|d| cli.dtypes.as_ref().is_none_or(|given| given.contains(d)))
                        .collect::<Vec<_>>(),
                ),
                None => list(cli.dtypes.as_deref().unwrap_or(&[0, 1])),
            }
        } else {
            vec![None]
        };
        let halves = if has("HALF_SPLIT") {
            list(&cli.half_split)
        } else {
            vec![None]
        };
        for &exact in &exacts {
            for &dtype in &dtypes {
                for &half_split in &halves {
                    let mut constants = Vec::new();
                    for (n, v) in [
                        ("EXACT", exact),
                        ("DTYPE", dtype),
                        ("HALF_SPLIT", half_split),
                    ] {
                        if let Some(v) = v {
                            constants.push((n.to_string(), f64::from(v)));
                        }
                    }
                    if has("WORKGROUP_SIZE") {
                        constants.push(("WORKGROUP_SIZE".into(), f64::from(cli.workgroup_size)));
                    }
                    if has("TABLE_IN_RANGE") && !has("HALF_SPLIT") {
                        let v = f64::from(cli.table_in_range);
                        constants.push(("TABLE_IN_RANGE".into(), v));
                    }
                    out.push(Job {
                        module: m,
                        exact,
                        dtype,
                        half_split,
                        constants,
                    });
                }
            }
        }
    }
    if out.is_empty() {
        bail!("no (kernel, EXACT, DTYPE) combination left (check --exact, --dtypes, --half-split)");
    }
    Ok(out)
}

/// One built pipeline.
struct Row<'a> {
    job: Job<'a>,
    spirv_words: usize,
    executables: Vec<vulkan::Executable>,
}

fn opt(v: Option<u32>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

fn table(info: &vulkan::DeviceInfo, target: compile::Target, rows: &[Row], stats: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    writeln!(
        out,
        "# device: {} ({}, vendor 0x{:04x}, device 0x{:04x}, Vulkan {}, driver {} {})",
        info.name,
        info.kind,
        info.vendor_id,
        info.device_id,
        info.api(),
        info.driver_name,
        info.driver_info
    )
    .unwrap();
    writeln!(
        out,
        "# SPIR-V {}.{} from naga 30 as wgpu 30 writes it; buffer bounds checks: {}; WGSL \
         overrides EXACT (0 fast, 1 exact, 2 hf), DTYPE (0 bf16, 1 f16, 2 f32), HALF_SPLIT, \
         TABLE_IN_RANGE (--table-in-range on the contiguous kernels and --file modules, 0 on the \
         general ones)",
        target.lang_version.0,
        target.lang_version.1,
        if target.robust_buffer_access2 {
            "none in SPIR-V (robustBufferAccess2)"
        } else {
            "naga Restrict"
        }
    )
    .unwrap();
    // Columns: every statistic name, in first-seen order.
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for e in &r.executables {
            for s in &e.statistics {
                if !names.contains(&s.name) {
                    names.push(s.name.clone());
                }
            }
        }
    }
    let mut header = vec![
        "kernel".to_string(),
        "EXACT".into(),
        "DTYPE".into(),
        "HALF".into(),
        "words".into(),
    ];
    if stats {
        header.push("exe".into());
        header.extend(names.iter().cloned());
    } else {
        header.push("status".into());
    }
    let mut table: Vec<Vec<String>> = vec![header];
    for r in rows {
        let base = vec![
            r.job.module.name.clone(),
            opt(r.job.exact),
            opt(r.job.dtype),
            opt(r.job.half_split),
            r.spirv_words.to_string(),
        ];
        if !stats {
            let mut line = base;
            line.push("compiled".into());
            table.push(line);
            continue;
        }
        if r.executables.is_empty() {
            let mut line = base;
            line.push("none".into());
            line.extend(names.iter().map(|_| "-".to_string()));
            table.push(line);
            continue;
        }
        for (i, e) in r.executables.iter().enumerate() {
            let mut line = base.clone();
            line.push(i.to_string());
            for n in &names {
                let v = e.statistics.iter().find(|s| &s.name == n);
                line.push(v.map_or("-".to_string(), |s| s.value.to_string()));
            }
            table.push(line);
        }
    }
    let columns = table[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end()).unwrap();
    }
    if stats {
        // Legend: executables and statistics as the driver describes them.
        let mut seen: Vec<String> = Vec::new();
        for r in rows {
            for (i, e) in r.executables.iter().enumerate() {
                let line = format!(
                    "# exe {i}: {} — {} (subgroup size {})",
                    e.name, e.description, e.subgroup_size
                );
                if !seen.contains(&line) {
                    writeln!(out, "{line}").unwrap();
                    seen.push(line);
                }
                for s in &e.statistics {
                    let line = format!("# {} ({}): {}", s.name, s.value.format(), s.description);
                    if !seen.contains(&line) {
                        writeln!(out, "{line}").unwrap();
                        seen.push(line);
                    }
                }
            }
        }
        let empty = rows.iter().filter(|r| r.executables.is_empty()).count();
        if empty > 0 {
            writeln!(
                out,
                "# {empty} pipeline(s) reported no executable (exe \"none\")"
            )
            .unwrap();
        }
    }
    out
}

fn json_doc(
    info: &vulkan::DeviceInfo,
    target: compile::Target,
    rows: &[Row],
    stats: bool,
) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let overrides: serde_json::Map<String, serde_json::Value> = r
                .job
                .constants
                .iter()
                .map(|(n, v)| (n.clone(), json!(v)))
                .collect();
            let executables: Vec<serde_json::Value> = r
                .executables
                .iter()
                .map(|e| {
                    let statistics: Vec<serde_json::Value> = e
                        .statistics
                        .iter()
                        .map(|s| {
                            let value = match s.value {
                                vulkan::Value::Bool(b) => json!(b),
                                vulkan::Value::I64(v) => json!(v),
                                vulkan::Value::U64(v) => json!(v),
                                vulkan::Value::F64(v) => json!(v),
                            };
                            json!({
                                "name": s.name,
                                "description": s.description,
                                "format": s.value.format(),
                                "value": value,
                            })
                        })
                        .collect();
                    json!({
                        "name": e.name,
                        "description": e.description,
                        "subgroup_size": e.subgroup_size,
                        "statistics": statistics,
                    })
                })
                .collect();
            json!({
                "kernel": r.job.module.name,
                "entry": r.job.module.entry,
                "exact": r.job.exact,
                "dtype": r.job.dtype,
                "half_split": r.job.half_split,
                "overrides": overrides,
                "spirv_words": r.spirv_words,
                "executables": executables,
            })
        })
        .collect();
    json!({
        "tool": "bfrope-kernel-stats",
        "statistics_captured": stats,
        "device": {
            "name": info.name,
            "type": info.kind,
            "vendor_id": info.vendor_id,
            "device_id": info.device_id,
            "api_version": info.api(),
            "driver_version": info.driver_version,
            "driver_name": info.driver_name,
            "driver_info": info.driver_info,
        },
        "spirv": {
            "version": format!("{}.{}", target.lang_version.0, target.lang_version.1),
            "buffer_bounds_checks": if target.robust_buffer_access2 { "none (robustBufferAccess2)" } else { "restrict" },
        },
        "rows": rows,
    })
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let modules = load_modules(cli)?;
    let jobs = jobs(cli, &modules)?;
    let instance = vulkan::Instance::new(cli.adapter.as_deref())?;
    let info = instance.info.clone();
    let target = instance.target();

    // SPIR-V for every job first: the device is created with what all of them need.
    let mut spirv = Vec::with_capacity(jobs.len());
    let mut capabilities = Vec::new();
    let bindings: Vec<Vec<compile::Binding>> = jobs
        .iter()
        .map(|j| {
            j.module
                .wgsl
                .bindings()
                .with_context(|| format!("kernel {}", j.module.name))
        })
        .collect::<Result<_>>()?;
    for (index, job) in jobs.iter().enumerate() {
        let words = job
            .module
            .wgsl
            .spirv(&job.module.entry, &job.constants, &bindings[index], target)
            .with_context(|| format!("kernel {}", job.module.name))?;
        for cap in compile::capabilities(&words)? {
            if !capabilities.contains(&cap) {
                capabilities.push(cap);
            }
        }
        if let Some(dir) = &cli.spv_out {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("{}.spv", job.file_stem()));
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        spirv.push(words);
    }
    if let Some(dir) = &cli.spv_out {
        eprintln!("wrote {} SPIR-V modules to {}", spirv.len(), dir.display());
    }

    let stats = !cli.compile_only;
    if stats && !info.executable_properties {
        eprintln!(
            "The Vulkan device {} ({} {}) does not support VK_KHR_pipeline_executable_properties \
             with its pipelineExecutableInfo feature, so the driver cannot report kernel \
             statistics on it.",
            info.name, info.driver_name, info.driver_info
        );
        return Ok(ExitCode::from(2));
    }
    let device = instance.device(&capabilities, stats)?;
    let mut rows = Vec::with_capacity(jobs.len());
    for ((job, words), bindings) in jobs.into_iter().zip(&spirv).zip(&bindings) {
        if job.module.wgsl.has_immediates() {
            bail!(
                "kernel {}: the module declares immediate data (push constants), which this \
                 tool does not lay out",
                job.module.name
            );
        }
        let executables = device
            .pipeline_stats(words, &job.module.entry, bindings)
            .with_context(|| {
                format!(
                    "kernel {} with overrides {:?} on {}",
                    job.module.name, job.constants, info.name
                )
            })?;
        if stats && executables.is_empty() {
            eprintln!(
                "warning: the driver reported no executable for kernel {} {:?}",
                job.module.name, job.constants
            );
        }
        rows.push(Row {
            job,
            spirv_words: words.len(),
            executables,
        });
    }
    if cli.json {
        let doc = json_doc(&info, target, &rows, stats);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", table(&info, target, &rows, stats));
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("kernel-stats").chain(args.iter().copied()))
    }

    /// The `(set, binding)` decorations of a SPIR-V module, by result id.
    fn decorations(words: &[u32]) -> Vec<(u32, u32)> {
        const OP_DECORATE: u32 = 71;
        const DESCRIPTOR_SET: u32 = 34;
        const BINDING: u32 = 33;
        let (mut sets, mut bindings) = (Vec::new(), Vec::new());
        let mut at = 5;
        while at < words.len() {
            let count = (words[at] >> 16) as usize;
            if words[at] & 0xFFFF == OP_DECORATE && count == 4 {
                match words[at + 2] {
                    DESCRIPTOR_SET => sets.push((words[at + 1], words[at + 3])),
                    BINDING => bindings.push((words[at + 1], words[at + 3])),
                    _ => {}
                }
            }
            at += count;
        }
        let mut out: Vec<(u32, u32)> = bindings
            .iter()
            .map(|&(id, b)| (sets.iter().find(|s| s.0 == id).unwrap().1, b))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn default_rows_are_every_kernel_exact_and_dtype_it_serves() {
        let c = cli(&[]);
        let modules = load_modules(&c).unwrap();
        let rows = jobs(&c, &modules).unwrap();
        // 3 contiguous kernels x 3 EXACT x 2 DTYPE, 8 general bf16/f16 modules x 3 x 2 x 2
        // HALF_SPLIT, 4 general f32 modules x 3 x 1 x 2, the copy kernel once.
        assert_eq!(rows.len(), 3 * 3 * 2 + 8 * 3 * 2 * 2 + 4 * 3 * 2 + 1);
        for j in &rows {
            let f32 = j.module.name.contains("f32");
            match j.dtype {
                Some(2) => assert!(f32, "{}", j.module.name),
                Some(_) => assert!(!f32, "{}", j.module.name),
                None => assert_eq!(j.module.name, "copy"),
            }
            assert!(j.constants.contains(&(
                "WORKGROUP_SIZE".to_string(),
                f64::from(bfrope::gpu::WORKGROUP_SIZE)
            )));
        }
        let c = cli(&["--only", "vec4_half", "--exact", "1", "--dtypes", "1,2"]);
        let modules = load_modules(&c).unwrap();
        let rows = jobs(&c, &modules).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].exact, rows[0].dtype), (Some(1), Some(1)));
    }

    #[test]
    fn spirv_bindings_are_dense_per_set_and_every_kernel_compiles() {
        let c = cli(&[]);
        let modules = load_modules(&c).unwrap();
        for target in [
            compile::Target::new(ash::vk::API_VERSION_1_3, true),
            compile::Target::new(ash::vk::API_VERSION_1_1, false),
        ] {
            for j in jobs(&c, &modules).unwrap() {
                let b = j.module.wgsl.bindings().unwrap();
                let words = j
                    .module
                    .wgsl
                    .spirv(&j.module.entry, &j.constants, &b, target)
                    .unwrap();
                assert_eq!(words[1] >> 16 & 0xFF, 1);
                assert_eq!(words[1] >> 8 & 0xFF, u32::from(target.lang_version.1));
                let caps = compile::capabilities(&words).unwrap();
                assert!(caps.contains(&naga::back::spv::Capability::Shader));
                // Every declared binding is used by these entry points, so each appears
                // once, renumbered 0.. in WGSL order.
                let want: Vec<(u32, u32)> = b.iter().map(|b| (b.group, b.vk_binding)).collect();
                assert_eq!(decorations(&words), want, "{}", j.module.name);
                assert_eq!(
                    b.iter().map(|b| b.vk_binding).collect::<Vec<_>>(),
                    (0..b.len() as u32).collect::<Vec<_>>()
                );
            }
        }
        // The two-view in-place general module binds 0, 1, 3, 4, 6 in WGSL.
        let m = modules
            .iter()
            .find(|m| m.name == "rope_general[halves,in place,views=2]")
            .unwrap();
        let wgsl: Vec<u32> = m
            .wgsl
            .bindings()
            .unwrap()
            .iter()
            .map(|b| b.binding)
            .collect();
        assert_eq!(wgsl, [0, 1, 3, 4, 6]);
    }

    #[test]
    fn file_specs_are_checked() {
        let dir = std::env::temp_dir().join(format!("kernel-stats-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.wgsl");
        std::fs::write(&path, bfrope::shaders::rope_vec4_source()).unwrap();
        let spec = format!("mine={}:rope_vec4", path.display());
        let c = cli(&["--no-builtin", "--file", &spec]);
        let modules = load_modules(&c).unwrap();
        let rows = jobs(&c, &modules).unwrap();
        // EXACT 0..=2 x DTYPE 0, 1 (a file's default).
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|j| j.module.name == "mine"));
        let bad = format!("mine={}:nope", path.display());
        let e = load_modules(&cli(&["--no-builtin", "--file", &bad]))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("no compute entry point `nope`"),
            "{e}"
        );
        let e = load_modules(&cli(&["--file", "nocolon"])).err().unwrap();
        assert!(e.to_string().contains("NAME=PATH:ENTRY"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn capabilities_rejects_what_is_not_spirv() {
        assert!(compile::capabilities(&[0, 1, 2, 3, 4]).is_err());
        // Header, then OpCapability Int64 (11) and a truncated instruction.
        let words = [
            0x0723_0203,
            0x10600,
            0,
            1,
            0,
            (2 << 16) | 17,
            11,
            5 << 16 | 17,
        ];
        assert!(compile::capabilities(&words).is_err());
        assert_eq!(
            compile::capabilities(&words[..7]).unwrap(),
            [naga::back::spv::Capability::Int64]
        );
    }

    #[test]
    fn statistics_become_columns_and_json() {
        let c = cli(&[
            "--only",
            "copy,rope_vec4_half",
            "--exact",
            "1",
            "--dtypes",
            "0",
        ]);
        let modules = load_modules(&c).unwrap();
        let mut jobs = jobs(&c, &modules).unwrap().into_iter();
        let stat = |name: &str, value| vulkan::Statistic {
            name: name.into(),
            description: format!("what {name} is"),
            value,
        };
        let exe = |statistics| vulkan::Executable {
            name: "Compute Shader".into(),
            description: "the only one".into(),
            subgroup_size: 32,
            statistics,
        };
        let rows = vec![
            Row {
                job: jobs.next().unwrap(),
                spirv_words: 100,
                executables: vec![exe(vec![
                    stat("Register Count", vulkan::Value::U64(40)),
                    stat("Spills", vulkan::Value::Bool(false)),
                ])],
            },
            Row {
                job: jobs.next().unwrap(),
                spirv_words: 7,
                executables: vec![exe(vec![stat("Occupancy", vulkan::Value::F64(0.5))])],
            },
        ];
        assert!(jobs.next().is_none());
        let info = vulkan::DeviceInfo {
            name: "GPU".into(),
            kind: "DISCRETE_GPU".into(),
            vendor_id: 0x10de,
            device_id: 1,
            api_version: ash::vk::API_VERSION_1_3,
            driver_version: 0,
            driver_name: "d".into(),
            driver_info: "i".into(),
            executable_properties: true,
        };
        let target = compile::Target::new(ash::vk::API_VERSION_1_3, true);
        let text = table(&info, target, &rows, true);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let cells = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[0]),
            [
                "kernel",
                "EXACT",
                "DTYPE",
                "HALF",
                "words",
                "exe",
                "Register",
                "Count",
                "Spills",
                "Occupancy"
            ]
        );
        assert_eq!(
            cells(lines[1]),
            [
                "rope_vec4_half",
                "1",
                "0",
                "-",
                "100",
                "0",
                "40",
                "false",
                "-"
            ]
        );
        assert_eq!(
            cells(lines[2]),
            ["copy", "-", "-", "-", "7", "0", "-", "-", "0.5"]
        );
        assert!(text.contains("# Register Count (uint64): what Register Count is"));
        let doc = json_doc(&info, target, &rows, true);
        let s0 = &doc["rows"][0]["executables"][0]["statistics"][0];
        assert_eq!(s0["value"], 40);
        assert_eq!(s0["format"], "uint64");
        assert_eq!(doc["rows"][0]["overrides"]["EXACT"], 1.0);
        assert_eq!(doc["rows"][1]["exact"], serde_json::Value::Null);
        assert_eq!(doc["spirv"]["version"], "1.6");
    }
}
