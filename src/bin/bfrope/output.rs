//! The output of `bfrope apply`: where it goes and how it gets there (DESIGN.md §7).
//!
//! [`resolve`] runs before any work and settles the final path:
//!
//! - `-` is stdout: the safetensors bytes go there and nothing else does.
//! - A path that exists and is not a regular file (a directory, a FIFO, a device, a socket) is
//!   refused and left as it was: it is only inspected, never opened.
//! - A symlink (or a chain of them) to a regular file stays a symlink: its target gets the
//!   output. A dangling symlink is refused, as `cp` does.
//! - The output is never the input (the same file by device and inode, or the same canonical
//!   path once symlinks are followed).
//! - The final file's folder must exist and be writable, which is proven by creating the
//!   temporary file `.<name>.bfrope-XXXXXX.partial` there at once.
//!
//! [`OutputTarget::open`] gives an [`OutputSink`] to write the bytes into, and
//! [`OutputSink::commit`] syncs the temporary file and renames it over the final path. Until
//! then the final path is untouched: dropping the sink (an error) removes the temporary file,
//! and so does SIGINT or SIGTERM, which then end the process with exit status 130 or 143.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tempfile::NamedTempFile;

use crate::{CliError, CliResult};

/// Size of the write buffer in front of the temporary file or stdout.
const BUFFER: usize = 1 << 20;

/// Symlinks followed before a chain is called a loop (Linux's limit).
const MAX_LINKS: usize = 40;

/// The live temporary file, if any: what a SIGINT or SIGTERM removes before the process exits.
static LIVE_TEMP: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Locks the registry of the live temporary file (a poisoned lock still holds a valid path).
fn live_temp() -> MutexGuard<'static, Option<PathBuf>> {
    LIVE_TEMP.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts, once, the thread that turns SIGINT and SIGTERM into: remove the live temporary
/// file, one line on stderr, exit 128 + the signal number. If the handler cannot be installed
/// the signals keep their default action (the temporary file may then stay behind).
fn install_signal_handler() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::iterator::Signals;
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
                return;
            };
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                    // Held until exit: a commit cannot rename after this point.
                    let mut live = live_temp();
                    match live.take() {
                        Some(path) => {
                            let _ = std::fs::remove_file(&path);
                            eprintln!(
                                "error: interrupted by {name}; removed the partial output {}",
                                path.display()
                            );
                        }
                        None => eprintln!("error: interrupted by {name}"),
                    }
                    std::process::exit(128 + sig);
                }
            });
        });
    }
}

/// A temporary file registered in [`LIVE_TEMP`]; removed on drop unless persisted.
struct Temp {
    file: Option<NamedTempFile>,
}

impl Temp {
    /// Creates `.<name>.bfrope-XXXXXX.partial` in `dir` and registers it.
    fn create(dir: &Path, name: &std::ffi::OsStr) -> io::Result<Self> {
        install_signal_handler();
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".bfrope-");
        // Created under the lock: a signal sees either no file or a registered one.
        let mut live = live_temp();
        let file = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".partial")
            .tempfile_in(dir)?;
        *live = Some(file.path().to_path_buf());
        Ok(Self { file: Some(file) })
    }

    /// The open file.
    fn as_file(&self) -> &File {
        self.file
            .as_ref()
            .expect("present until persisted")
            .as_file()
    }

    /// Renames the file over `to`, under the registry's lock, and unregisters it.
    fn persist(mut self, to: &Path) -> io::Result<()> {
        let file = self.file.take().expect("present until persisted");
        let mut live = live_temp();
        let result = match file.persist(to) {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = e.file.close();
                Err(e.error)
            }
        };
        *live = None;
        result
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let mut live = live_temp();
            let _ = file.close();
            *live = None;
        }
    }
}

/// Where the output goes, settled by [`resolve`].
pub struct OutputTarget {
    /// The path as the user gave it, for messages.
    shown: PathBuf,
    kind: TargetKind,
}

enum TargetKind {
    /// `-o -`.
    Stdout,
    /// A regular file, existing or not.
    File {
        /// The path renamed over at the end (symlinks followed).
        path: PathBuf,
        /// The temporary file created by [`resolve`], taken by the first [`OutputTarget::open`].
        reserved: RefCell<Option<Temp>>,
    },
}

/// What a non-regular file is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// The folder of `path` (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Follows `output` through symlinks to the path to write: `Ok((path, existing metadata))`.
fn follow(output: &Path) -> CliResult<(PathBuf, Option<std::fs::Metadata>)> {
    let via = |path: &Path| {
        if path == output {
            String::new()
        } else {
            format!(" (through the symlink to {})", path.display())
        }
    };
    let mut path = output.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound && path == output => {
                return Ok((path, None))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CliError::usage(format!(
                    "output {} is a dangling symlink to {}; refusing to write through it",
                    output.display(),
                    path.display()
                )))
            }
            Err(e) => {
                return Err(CliError::usage(format!(
                    "cannot inspect output {}{}: {e}",
                    output.display(),
                    via(&path)
                )))
            }
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| {
                CliError::usage(format!(
                    "cannot read the symlink {} of output {}: {e}",
                    path.display(),
                    output.display()
                ))
            })?;
            // Relative to the link's folder; `Path::new("l").parent()` is `""`.
            path = path.parent().map_or(target.clone(), |p| p.join(&target));
            continue;
        }
        if !meta.is_file() {
            return Err(CliError::usage(format!(
                "output {}{} is {}, not a regular file; refusing to replace it",
                output.display(),
                via(&path),
                kind_of(&meta)
            )));
        }
        return Ok((path, Some(meta)));
    }
    Err(CliError::usage(format!(
        "output {} is a chain of more than {MAX_LINKS} symlinks",
        output.display()
    )))
}

/// Settles where the output of `input` goes, before any work: see the module docs. Every
/// refusal is exit 2 and leaves the output path as it was.
pub fn resolve(output: &Path, input: &Path) -> CliResult<OutputTarget> {
    resolve_guarding(output, &[input])
}

/// [`resolve`] for a command with several input files (or none, as `bfrope table` with
/// only flags): the output may be none of them.
pub fn resolve_guarding(output: &Path, inputs: &[&Path]) -> CliResult<OutputTarget> {
    let mut guarded = Vec::new();
    for input in inputs {
        let real = input.canonicalize().map_err(|e| {
            CliError::usage(format!("cannot read input file {}: {e}", input.display()))
        })?;
        let meta = std::fs::metadata(&real).map_err(|e| {
            CliError::usage(format!("cannot read input file {}: {e}", input.display()))
        })?;
        if !meta.is_file() {
            return Err(CliError::usage(format!(
                "input {} is not a file",
                input.display()
            )));
        }
        guarded.push((real, meta));
    }
    if output.as_os_str() == "-" {
        return Ok(OutputTarget {
            shown: output.to_path_buf(),
            kind: TargetKind::Stdout,
        });
    }
    let same = || {
        CliError::usage(format!(
            "output {} is the input file; refusing to write over it",
            output.display()
        ))
    };
    let (path, existing) = follow(output)?;
    #[cfg(unix)]
    if let Some(meta) = &existing {
        use std::os::unix::fs::MetadataExt;
        if guarded
            .iter()
            .any(|(_, m)| meta.dev() == m.dev() && meta.ino() == m.ino())
        {
            return Err(same());
        }
    }
    let name = path
        .file_name()
        .ok_or_else(|| CliError::usage(format!("output {} names no file", output.display())))?
        .to_os_string();
    let folder = folder_of(&path);
    match std::fs::metadata(&folder) {
        Ok(m) if m.is_dir() => {}
        Ok(m) => {
            return Err(CliError::usage(format!(
                "output folder {} is {}, not a folder",
                folder.display(),
                kind_of(&m)
            )))
        }
        Err(e) => {
            return Err(CliError::usage(format!(
                "output folder {} is not usable: {e}",
                folder.display()
            )))
        }
    }
    let folder_real = folder.canonicalize().map_err(|e| {
        CliError::usage(format!(
            "output folder {} is not usable: {e}",
            folder.display()
        ))
    })?;
    if guarded
        .iter()
        .any(|(real, _)| folder_real.join(&name) == *real)
    {
        return Err(same());
    }
    // In the canonical folder (the same folder): messages then show a clean absolute path.
    let temp = Temp::create(&folder_real, &name).map_err(|e| {
        CliError::usage(format!(
            "cannot create a file in the output folder {}: {e}",
            folder.display()
        ))
    })?;
    Ok(OutputTarget {
        shown: output.to_path_buf(),
        kind: TargetKind::File {
            path,
            reserved: RefCell::new(Some(temp)),
        },
    })
}

impl std::fmt::Display for OutputTarget {
    /// `stdout`, or the path as the user gave it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            TargetKind::Stdout => f.write_str("stdout"),
            TargetKind::File { .. } => write!(f, "{}", self.shown.display()),
        }
    }
}

impl OutputTarget {
    /// A sink for the output bytes: stdout, or a (fresh or reserved) temporary file in the
    /// final file's folder.
    pub fn open(&self) -> CliResult<OutputSink> {
        match &self.kind {
            TargetKind::Stdout => Ok(OutputSink {
                shown: self.to_string(),
                kind: SinkKind::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())),
            }),
            TargetKind::File { path, reserved } => {
                let temp = match reserved.borrow_mut().take() {
                    Some(t) => t,
                    None => {
                        let name = path.file_name().expect("checked by resolve");
                        Temp::create(&folder_of(path), name).map_err(|e| {
                            CliError::failure(format!(
                                "cannot create a file in the output folder {}: {e}",
                                folder_of(path).display()
                            ))
                        })?
                    }
                };
                let file = temp.as_file().try_clone().map_err(|e| {
                    CliError::failure(format!("cannot write {}: {e}", self.shown.display()))
                })?;
                Ok(OutputSink {
                    shown: self.to_string(),
                    kind: SinkKind::File {
                        writer: BufWriter::with_capacity(BUFFER, file),
                        temp,
                        path: path.clone(),
                    },
                })
            }
        }
    }
}

/// The output being written: [`Write`] into it, then [`OutputSink::commit`]. Dropped
/// uncommitted, it removes its temporary file and the final path stays as it was.
pub struct OutputSink {
    /// `stdout` or the path as the user gave it, for messages.
    shown: String,
    kind: SinkKind,
}

enum SinkKind {
    Stdout(BufWriter<io::Stdout>),
    File {
        writer: BufWriter<File>,
        temp: Temp,
        path: PathBuf,
    },
}

impl Write for OutputSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            SinkKind::Stdout(w) => w.write(buf),
            SinkKind::File { writer, .. } => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.kind {
            SinkKind::Stdout(w) => w.write_all(buf),
            SinkKind::File { writer, .. } => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            SinkKind::Stdout(w) => w.flush(),
            SinkKind::File { writer, .. } => writer.flush(),
        }
    }
}

impl OutputSink {
    /// Finishes the output: flushes; for a file also syncs it to disk, gives it the existing
    /// final file's permission bits (or 0644), and renames it over the final path atomically.
    pub fn commit(self) -> CliResult<()> {
        let failed = |e: io::Error| CliError::failure(format!("cannot write {}: {e}", self.shown));
        match self.kind {
            SinkKind::Stdout(mut w) => w.flush().map_err(failed),
            SinkKind::File { writer, temp, path } => {
                let file = writer.into_inner().map_err(|e| failed(e.into_error()))?;
                file.sync_all().map_err(failed)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(&path)
                        .map(|m| m.permissions().mode() & 0o777)
                        .unwrap_or(0o644);
                    file.set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(failed)?;
                }
                drop(file);
                temp.persist(&path).map_err(failed)
            }
        }
    }
}
