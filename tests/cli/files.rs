//! The output path of `bfrope apply` (docs/CONTRACT.md §7): `-o -` is stdout; an existing path that
//! is not a regular file (device, FIFO, directory) is refused and left as it was; a symlink to
//! a regular file stays a symlink and its target gets the output; a dangling symlink, a missing
//! or unwritable folder and the input itself (also through a symlink) are refused; SIGINT and
//! SIGTERM leave no partial output. Every run uses the CPU path, and every run that could
//! block (a FIFO) runs under a 60 s guard.
#![cfg(unix)]

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use safetensors::tensor::{Dtype, TensorView};

/// How long a run may take before the test kills it and fails.
const GUARD: Duration = Duration::from_secs(60);

/// What a finished run left: exit status, stdout bytes, stderr text.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// `bfrope apply INPUT -o OUTPUT --backend cpu EXTRA...`.
fn apply_command(input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bfrope"));
    c.arg("apply")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["--backend", "cpu"])
        .args(extra);
    c
}

/// Spawns `c` with stdout and stderr going to files in a fresh folder of their own (so that
/// the output folder of the test holds only what bfrope writes there).
fn spawn(mut c: Command) -> (Child, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let out = File::create(logs.path().join("stdout")).unwrap();
    let err = File::create(logs.path().join("stderr")).unwrap();
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("the bfrope binary runs");
    (child, logs)
}

/// Waits for `child` up to [`GUARD`]; kills it and fails the test past that.
fn wait(mut child: Child, logs: tempfile::TempDir, what: &str) -> Ran {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: bfrope still running after {GUARD:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        status,
        stdout: std::fs::read(logs.path().join("stdout")).unwrap(),
        stderr: std::fs::read_to_string(logs.path().join("stderr")).unwrap(),
    }
}

/// Runs `bfrope apply` on the CPU path under the guard.
fn apply(input: &Path, output: &Path, extra: &[&str]) -> Ran {
    let (child, logs) = spawn(apply_command(input, output, extra));
    wait(child, logs, &format!("apply -o {}", output.display()))
}

fn assert_ok(r: &Ran) {
    assert!(
        r.status.success(),
        "bfrope failed with {:?}: {}",
        r.status,
        r.stderr
    );
}

/// Names in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Checks exit 2 and one stderr line `error: ...` that holds every one of `needles`.
fn assert_refused(r: &Ran, needles: &[&str]) {
    assert_eq!(
        r.status.code(),
        Some(2),
        "expected exit 2, got {:?}: {}",
        r.status,
        r.stderr
    );
    assert_eq!(
        r.stderr.trim_end().lines().count(),
        1,
        "one line: {}",
        r.stderr
    );
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    for n in needles {
        assert!(
            r.stderr.contains(n),
            "stderr should name {n:?}: {}",
            r.stderr
        );
    }
    assert!(r.stdout.is_empty(), "nothing on stdout");
}

fn write_st(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, &[u8])]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, dt, shape, data)| {
            (
                n.to_string(),
                TensorView::new(*dt, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// Seeded bf16 bytes of normal-ish magnitude.
fn bf16_data(seed: u64, n: usize) -> Vec<u8> {
    bfrope::conformance::random_bf16(seed, n)
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect()
}

/// A small input: q, k (BF16 [2,12,3,16]) and an F32 weight.
fn standard_input(dir: &Path) -> PathBuf {
    let n = 2 * 12 * 3 * 16;
    let path = dir.join("in.safetensors");
    let w: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    write_st(
        &path,
        &[
            ("q", Dtype::BF16, vec![2, 12, 3, 16], &bf16_data(1, n)),
            ("k", Dtype::BF16, vec![2, 12, 3, 16], &bf16_data(2, n)),
            ("w", Dtype::F32, vec![2, 2], &w),
        ],
    );
    path
}

/// The output of the standard input written to a plain path: the reference bytes.
fn reference_output(input: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain.safetensors");
    assert_ok(&apply(input, &out, &[]));
    std::fs::read(&out).unwrap()
}

fn is_root() -> bool {
    let o = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim() == "0"
}

fn mkfifo(path: &Path) {
    let s = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(s.success(), "mkfifo {}", path.display());
}

#[test]
fn a_device_node_is_refused_and_left_as_it_was() {
    if !is_root() {
        eprintln!("SKIPPED: not root, cannot mknod; the device node test did not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let node = dir.path().join("null");
    let s = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(s.success(), "mknod");
    let before = std::fs::symlink_metadata(&node).unwrap();
    let names = listing(dir.path());
    let r = apply(&input, &node, &[]);
    assert_refused(&r, &[&node.display().to_string(), "character device"]);
    let after = std::fs::symlink_metadata(&node).unwrap();
    assert!(after.file_type().is_char_device(), "still a char device");
    assert_eq!(after.rdev(), before.rdev(), "same device number");
    assert_eq!(after.ino(), before.ino(), "the same node, not a new one");
    assert_eq!(listing(dir.path()), names, "nothing created");
}

#[test]
fn a_fifo_is_refused_without_being_opened() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let names = listing(dir.path());
    let r = apply(&input, &fifo, &[]);
    assert_refused(&r, &[&fifo.display().to_string(), "FIFO"]);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(listing(dir.path()), names, "nothing created");
}

#[test]
fn a_directory_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let sub = dir.path().join("out.safetensors");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("keep"), b"kept").unwrap();
    let names = listing(dir.path());
    let r = apply(&input, &sub, &[]);
    assert_refused(&r, &[&sub.display().to_string(), "directory"]);
    assert!(sub.is_dir());
    assert_eq!(listing(&sub), vec!["keep".to_string()]);
    assert_eq!(std::fs::read(sub.join("keep")).unwrap(), b"kept");
    assert_eq!(listing(dir.path()), names, "nothing created");
}

#[test]
fn a_symlink_to_a_regular_file_stays_a_symlink_and_its_target_gets_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let expect = reference_output(&input);
    // A chain: link2 -> link -> target/out.safetensors (relative links, another folder).
    std::fs::create_dir(d.join("target")).unwrap();
    let target = d.join("target/out.safetensors");
    std::fs::write(&target, b"previous").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("target/out.safetensors", d.join("link")).unwrap();
    std::os::unix::fs::symlink("link", d.join("link2")).unwrap();
    let names = listing(d);

    let r = apply(&input, &d.join("link2"), &[]);
    assert_ok(&r);
    for (link, to) in [("link2", "link"), ("link", "target/out.safetensors")] {
        let m = std::fs::symlink_metadata(d.join(link)).unwrap();
        assert!(m.file_type().is_symlink(), "{link} is still a symlink");
        assert_eq!(std::fs::read_link(d.join(link)).unwrap(), Path::new(to));
    }
    assert_eq!(
        std::fs::read(&target).unwrap(),
        expect,
        "the target holds the output"
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the replaced file keeps its permission bits");
    assert_eq!(listing(d), names, "nothing else created");
    assert_eq!(
        listing(&d.join("target")),
        vec!["out.safetensors".to_string()],
        "no temporary file left by the target"
    );

    // A fresh output file gets 0644.
    let fresh = d.join("target/fresh.safetensors");
    assert_ok(&apply(&input, &fresh, &[]));
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn a_dangling_symlink_and_a_symlink_to_a_fifo_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let dangling = d.join("dangling.safetensors");
    std::os::unix::fs::symlink("nothing.safetensors", &dangling).unwrap();
    let names = listing(d);
    let r = apply(&input, &dangling, &[]);
    assert_refused(&r, &[&dangling.display().to_string(), "dangling"]);
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        listing(d),
        names,
        "nothing created (not even the link's target)"
    );

    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let link = d.join("to-fifo");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let names = listing(d);
    let r = apply(&input, &link, &[]);
    assert_refused(&r, &[&link.display().to_string(), "FIFO"]);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(listing(d), names);
}

#[test]
fn stdout_output_is_the_file_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let expect = reference_output(&input);
    let names = listing(dir.path());
    let r = apply(&input, Path::new("-"), &[]);
    assert_ok(&r);
    assert_eq!(r.stdout, expect, "stdout holds exactly the output bytes");
    assert!(
        r.stderr.contains("wrote 3 tensors to stdout"),
        "the report stays on stderr: {}",
        r.stderr
    );
    assert_eq!(listing(dir.path()), names, "no file named '-' or temporary");

    // A file output prints nothing on stdout.
    let out = dir.path().join("out.safetensors");
    let r = apply(&input, &out, &[]);
    assert_ok(&r);
    assert!(r.stdout.is_empty());
}

#[test]
fn a_missing_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let out = dir.path().join("nowhere/out.safetensors");
    let names = listing(dir.path());
    let r = apply(&input, &out, &[]);
    assert_refused(&r, &["nowhere"]);
    assert_eq!(listing(dir.path()), names);
}

#[test]
fn an_unwritable_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    // Root ignores permission bits, but not sysfs: creating a file in /sys is refused
    // (EACCES, or EROFS where /sys is mounted read-only).
    let (folder, _keep) = if is_root() {
        (PathBuf::from("/sys"), None)
    } else {
        let ro = tempfile::tempdir().unwrap();
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        (ro.path().to_path_buf(), Some(ro))
    };
    let before = listing(&folder);
    let out = folder.join("bfrope-test-out.safetensors");
    let r = apply(&input, &out, &[]);
    assert_refused(&r, &[&folder.display().to_string()]);
    assert!(!out.exists());
    assert_eq!(listing(&folder), before, "nothing created");
    if let Some(ro) = _keep {
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn writing_over_the_input_through_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let bytes = std::fs::read(&input).unwrap();
    // A symlink chain to the input, and the input's name in a symlinked folder.
    std::os::unix::fs::symlink("in.safetensors", d.join("link")).unwrap();
    std::os::unix::fs::symlink("link", d.join("link2")).unwrap();
    std::os::unix::fs::symlink(d, d.join("folder")).unwrap();
    let names = listing(d);
    for out in [
        d.join("link2"),
        d.join("folder/in.safetensors"),
        d.join("folder/link"),
    ] {
        let r = apply(&input, &out, &[]);
        assert_refused(&r, &[&out.display().to_string(), "is the input file"]);
        assert_eq!(std::fs::read(&input).unwrap(), bytes, "input untouched");
        assert_eq!(listing(d), names, "nothing created");
    }
    // And the input named through a symlink, with the real file as output.
    let r = apply(&d.join("link2"), &input, &[]);
    assert_refused(&r, &["is the input file"]);
    assert_eq!(std::fs::read(&input).unwrap(), bytes, "input untouched");
}

/// An input that takes the CPU path a few seconds: 8 BF16 tensors [1, 4096, 32, 128], 256 MiB.
fn big_input(dir: &Path) -> PathBuf {
    let n = 4096 * 32 * 128;
    let chunk = bf16_data(7, 1 << 20);
    let data: Vec<u8> = chunk.iter().copied().cycle().take(2 * n).collect();
    let names: Vec<String> = (0..8).map(|i| format!("layer{i}.q")).collect();
    let tensors: Vec<(&str, Dtype, Vec<usize>, &[u8])> = names
        .iter()
        .map(|name| {
            (
                name.as_str(),
                Dtype::BF16,
                vec![1, 4096, 32, 128],
                &data[..],
            )
        })
        .collect();
    let path = dir.join("big.safetensors");
    write_st(&path, &tensors);
    path
}

/// Starts a long run, waits for its `.out.safetensors.bfrope-XXXXXX.partial` file, sends
/// `signal`, and checks: exit status 128 + signal (bfrope exits with it; death by the signal
/// is accepted too), the message, no temporary file, and the output path as it was before.
fn interrupted(signal: &str, number: i32, previous: Option<&[u8]>) {
    let input_dir = tempfile::tempdir().unwrap();
    let input = big_input(input_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    if let Some(p) = previous {
        std::fs::write(&out, p).unwrap();
    }
    let before = listing(dir.path());
    let started = Instant::now();
    let (mut child, logs) = spawn(apply_command(&input, &out, &[]));
    let partial = loop {
        let found = listing(dir.path())
            .into_iter()
            .find(|n| n.starts_with(".out.safetensors.bfrope-") && n.ends_with(".partial"));
        if let Some(f) = found {
            break f;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("bfrope ended ({s:?}) before its temporary file was seen");
        }
        if started.elapsed() > GUARD {
            let _ = child.kill();
            panic!("no temporary file after {GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Let it read the input and start rotating, then interrupt.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "bfrope finished before the signal; the input is too small for this machine"
    );
    let s = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(s.success(), "kill -{signal}");
    let r = wait(child, logs, signal);
    eprintln!(
        "{signal} after {:?}: status {:?}, temporary file was {partial}",
        started.elapsed(),
        r.status
    );
    assert!(
        r.status.code() == Some(128 + number) || r.status.signal() == Some(number),
        "expected exit {} or death by {signal}, got {:?}: {}",
        128 + number,
        r.status,
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "interrupted by SIG{signal}; removed the partial output"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&partial), "names the file: {}", r.stderr);
    assert_eq!(
        listing(dir.path()),
        before,
        "no temporary file, no new output"
    );
    match previous {
        Some(p) => assert_eq!(std::fs::read(&out).unwrap(), p, "old output unchanged"),
        None => assert!(!out.exists(), "no output file"),
    }
}

#[test]
fn sigterm_leaves_no_partial_output_and_keeps_the_old_one() {
    interrupted("TERM", 15, Some(b"previous"));
}

#[test]
fn sigint_leaves_no_partial_output() {
    interrupted("INT", 2, None);
}

/// How long the big input takes uninterrupted (3 s on a 2-core runner beside the other tests):
/// the signal tests interrupt it 0.2 s after its temporary file appears.
#[test]
fn the_big_input_runs_long_enough_for_the_signal_tests() {
    let input_dir = tempfile::tempdir().unwrap();
    let input = big_input(input_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let t0 = Instant::now();
    let r = apply(&input, &out, &[]);
    assert_ok(&r);
    let took = t0.elapsed();
    eprintln!("the big input took {took:?} uninterrupted");
    assert!(
        took > Duration::from_millis(500),
        "the big input took only {took:?}; the signal tests need a longer run"
    );
    assert_eq!(listing(dir.path()), vec!["out.safetensors".to_string()]);
}

/// I64 values as little-endian bytes.
fn le64(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// F32 values as little-endian bytes.
fn le32f(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `bfrope ARGS...` under the guard, stdin null, stdout and stderr captured.
fn bfrope(args: &[&std::ffi::OsStr]) -> Ran {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bfrope"));
    c.args(args);
    let (child, logs) = spawn(c);
    wait(child, logs, &format!("bfrope {args:?}"))
}

/// `sh -c SCRIPT` with `$0` the bfrope binary and `$@` the arguments, under the guard.
fn bfrope_in_shell(script: &str, args: &[&std::ffi::OsStr]) -> Ran {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_bfrope"))
        .args(args);
    let (child, logs) = spawn(c);
    wait(child, logs, &format!("sh -c {script:?} {args:?}"))
}

/// Turns `&str`s and paths into the argument list of [`bfrope`].
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// A config.json the table commands accept.
const CONFIG: &str =
    r#"{"rope_theta": 10000.0, "head_dim": 16, "num_attention_heads": 3, "hidden_size": 48}"#;

#[test]
fn an_output_that_is_any_file_the_command_reads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let config = d.join("c.json");
    std::fs::write(&config, CONFIG).unwrap();
    let table = d.join("t.safetensors");
    write_st(
        &table,
        &[
            ("pos", Dtype::I64, vec![3], &le64(&[0, 5, 9])),
            ("inv", Dtype::F32, vec![4], &le32f(&[1.0, 0.1, 0.01, 0.001])),
        ],
    );
    std::fs::hard_link(&config, d.join("hard.json")).unwrap();
    std::os::unix::fs::symlink("c.json", d.join("soft.json")).unwrap();
    std::fs::hard_link(&table, d.join("hard.safetensors")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(d, d.join("sub/up")).unwrap();
    let names = listing(d);
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    let (config_bytes, table_bytes, input_bytes) = (bytes(&config), bytes(&table), bytes(&input));
    let check = |r: &Ran, role: &str, read: &Path, out: &Path| {
        assert_refused(
            r,
            &[
                &format!("output {}", out.display()),
                &format!("is {role} {}", read.display()),
            ],
        );
        assert_eq!(bytes(&config), config_bytes, "config untouched");
        assert_eq!(bytes(&table), table_bytes, "table file untouched");
        assert_eq!(bytes(&input), input_bytes, "input untouched");
        assert_eq!(listing(d), names, "nothing created");
    };
    // apply: the config, by name, by hard link, through a symlink and a symlinked folder.
    for out in [
        config.clone(),
        d.join("hard.json"),
        d.join("soft.json"),
        d.join("sub/up/c.json"),
    ] {
        let r = apply(&input, &out, &["--hf-config", config.to_str().unwrap()]);
        check(&r, "--hf-config", &config, &out);
    }
    let r = apply(&table, &d.join("hard.safetensors"), &[]);
    check(&r, "the input file", &table, &d.join("hard.safetensors"));
    // table: the config, the --positions-from file and the --inv-freq file.
    let pos_from = format!("{}:pos", table.display());
    let inv = format!("{}:inv", table.display());
    for out in [config.clone(), d.join("hard.json"), d.join("soft.json")] {
        let r = bfrope(args![
            "table",
            "--hf-config",
            &config,
            "--positions",
            "0..4",
            "-o",
            &out
        ]);
        check(&r, "--hf-config", &config, &out);
    }
    for out in [table.clone(), d.join("hard.safetensors")] {
        let r = bfrope(args![
            "table",
            "--rotary-dim",
            "8",
            "--positions-from",
            &pos_from,
            "-o",
            &out
        ]);
        check(&r, "--positions-from", &table, &out);
        let r = bfrope(args![
            "table",
            "--inv-freq",
            &inv,
            "--positions",
            "0..4",
            "-o",
            &out
        ]);
        check(&r, "--inv-freq", &table, &out);
    }
}

#[test]
fn a_table_too_large_for_memory_is_refused_before_any_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.safetensors");
    // 2^26 rows x 2^15 pairs: 16 TiB of cos and sin, more than any machine has.
    let r = bfrope(args![
        "table",
        "--rotary-dim",
        "65536",
        "--positions",
        "0..67108864",
        "-o",
        &out
    ]);
    assert_refused(
        &r,
        &[
            "--positions 0..67108864",
            "--rotary-dim 65536",
            "of memory, more than the",
            "available",
        ],
    );
    assert!(
        listing(dir.path()).is_empty(),
        "no output, no temporary file"
    );
    // Past the row limit: refused as well, before any allocation.
    let r = bfrope(args![
        "table",
        "--rotary-dim",
        "8",
        "--positions",
        "0..67108865",
        "-o",
        &out
    ]);
    assert_refused(&r, &["--positions 0..67108865", "2^26 rows"]);
    assert!(
        listing(dir.path()).is_empty(),
        "no output, no temporary file"
    );
}

#[test]
fn a_config_that_is_not_a_small_regular_file_is_refused_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let fifo = d.join("fifo.json");
    mkfifo(&fifo);
    let big = d.join("big.json");
    // 17 MiB of a valid JSON document: over the 16 MiB read from a config.
    let mut text = String::from("{\"rope_theta\": 10000.0, \"pad\": \"");
    text.push_str(&"x".repeat(17 << 20));
    text.push_str("\"}");
    std::fs::write(&big, text).unwrap();
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{\"rope_theta\": ").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.safetensors");
    let cases: [(&Path, &[&str]); 4] = [
        (Path::new("/dev/zero"), &["/dev/zero", "character device"]),
        (&fifo, &["fifo.json", "FIFO"]),
        (&big, &["big.json", "more than the 16777216 bytes"]),
        (&bad, &["bad.json"]),
    ];
    for (config, needles) in cases {
        let t0 = Instant::now();
        let r = apply(&input, &out, &["--hf-config", config.to_str().unwrap()]);
        assert_refused(&r, needles);
        assert!(listing(out_dir.path()).is_empty(), "apply created nothing");
        let r = bfrope(args![
            "table",
            "--hf-config",
            config,
            "--positions",
            "0..4",
            "-o",
            &out
        ]);
        assert_refused(&r, needles);
        assert!(listing(out_dir.path()).is_empty(), "table created nothing");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{}: refused at once",
            config.display()
        );
    }
}

#[test]
fn writing_to_a_closed_or_full_stdout_fails() {
    let dir = tempfile::tempdir().unwrap();
    let input = standard_input(dir.path());
    let table = [
        "table",
        "--rotary-dim",
        "8",
        "--positions",
        "0..4",
        "-o",
        "-",
    ];
    let table: Vec<&std::ffi::OsStr> = table.iter().map(std::ffi::OsStr::new).collect();
    let mut apply_args = vec![std::ffi::OsStr::new("apply"), input.as_os_str()];
    apply_args.extend(args!["-o", "-", "--backend", "cpu"]);
    for args in [&table, &apply_args] {
        let r = bfrope_in_shell(r#"exec "$0" "$@" >&-"#, args);
        assert_eq!(r.status.code(), Some(1), "closed stdout: {}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("stdout is closed"), "{}", r.stderr);
        let r = bfrope_in_shell(r#"exec "$0" "$@" >/dev/full"#, args);
        assert_eq!(r.status.code(), Some(1), "full stdout: {}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("stdout"), "{}", r.stderr);
        assert!(!r.stderr.contains("wrote"), "{}", r.stderr);
    }
    assert_eq!(listing(dir.path()), vec!["in.safetensors".to_string()]);
}

#[test]
fn new_outputs_get_the_umask_mode_and_replaced_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = standard_input(d);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for (umask, want) in [
        ("077", 0o600),
        ("022", 0o644),
        ("002", 0o664),
        ("000", 0o666),
    ] {
        let script = format!(r#"umask {umask} && exec "$0" "$@""#);
        let out = d.join(format!("apply-{umask}.safetensors"));
        let mut a = vec![std::ffi::OsStr::new("apply"), input.as_os_str()];
        a.extend(args!["-o", &out, "--backend", "cpu"]);
        let r = bfrope_in_shell(&script, &a);
        assert_ok(&r);
        assert_eq!(mode(&out), want, "apply under umask {umask}");
        let out = d.join(format!("table-{umask}.safetensors"));
        let r = bfrope_in_shell(
            &script,
            args![
                "table",
                "--rotary-dim",
                "8",
                "--positions",
                "0..4",
                "-o",
                &out
            ],
        );
        assert_ok(&r);
        assert_eq!(mode(&out), want, "table under umask {umask}");
    }
    // An existing output keeps its mode whatever the umask.
    let out = d.join("existing.safetensors");
    std::fs::write(&out, b"previous").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    let r = bfrope_in_shell(
        r#"umask 077 && exec "$0" "$@""#,
        args![
            "table",
            "--rotary-dim",
            "8",
            "--positions",
            "0..4",
            "-o",
            &out
        ],
    );
    assert_ok(&r);
    assert_eq!(mode(&out), 0o640);
    assert_ne!(std::fs::read(&out).unwrap(), b"previous");
}

#[test]
fn a_long_run_shows_progress_on_a_terminal_only() {
    let input_dir = tempfile::tempdir().unwrap();
    let input = big_input(input_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    // stderr captured (not a terminal): the summary line alone.
    let r = apply(&input, &out, &[]);
    assert_ok(&r);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("rotating"), "{}", r.stderr);
    // On a terminal (util-linux `script` gives it one), a run over a second draws a bar.
    let command = format!(
        "exec {} apply {} -o {} --backend cpu",
        env!("CARGO_BIN_EXE_bfrope"),
        input.display(),
        out.display()
    );
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &command, "/dev/null"]);
    let t0 = Instant::now();
    let (child, logs) = spawn(c);
    let r = wait(child, logs, "apply on a terminal");
    let took = t0.elapsed();
    if r.status.code() == Some(127) || r.stderr.contains("script:") {
        eprintln!("SKIPPED: no usable `script`; the terminal half did not run");
        return;
    }
    assert!(r.status.success(), "{:?}: {}", r.status, r.stderr);
    let screen = String::from_utf8_lossy(&r.stdout);
    assert!(screen.contains("rotated"), "{screen}");
    if took > Duration::from_secs(2) {
        assert!(
            screen.contains("rotating"),
            "a bar after {took:?}: {screen}"
        );
    } else {
        eprintln!("the run took {took:?}: too short for the bar here");
    }
}
