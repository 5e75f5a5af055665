//! The output of `bfrope apply`: where it goes and how it gets there (docs/CONTRACT.md §7).
//!
//! [`resolve`] runs before any work and settles the final path:
//!
//! - `-` is stdout: the safetensors bytes go there and nothing else does.
//! - A path that exists and is not a regular file (a directory, a FIFO, a device, a socket) is
//!   refused and left as it was: it is only inspected, never opened.
//! - A symlink (or a chain of them) to a regular file stays a symlink: its target gets the
//!   output. A dangling symlink is refused, as `cp` does.
//! - The output is never a file the command reads (the input, a config.json, a positions
//!   file...): not the same file by device and inode (hard links included), nor the same
//!   canonical path once symlinks are followed.
//! - The final file's folder must exist.
//!
//! [`OutputTarget::open`], called once every input has been read, creates the temporary file
//! `.<name>.bfrope-XXXXXX.partial` in the final file's folder (an unwritable folder is refused
//! there) and gives an [`OutputSink`] to write the bytes into; [`OutputSink::commit`] syncs
//! the temporary file and renames it over the final path. Until then the final path is
//! untouched: dropping the sink (an error) removes the temporary file, and so does SIGINT or
//! SIGTERM, which then end the process with exit status 130 or 143. A new file gets the mode
//! a plain create gives (0666 less the umask); a replaced file keeps its mode.

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

/// Whether stdout was closed when the process started (set by [`guard_standard_fds`]).
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stdout_was_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Run first thing in `main`: notes whether the process started with stdout closed, so that
/// `-o -` then fails instead of writing into nothing. Rust's runtime gives a closed
/// descriptor 0, 1 or 2 `/dev/null`, opened read-write, before `main` (so no file bfrope
/// opens later takes its number); a shell's `>/dev/null` opens it write-only.
pub fn guard_standard_fds() {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        };
        // SAFETY: fcntl(F_GETFL) only reads the descriptor's status flags.
        let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETFL) };
        let null = std::fs::metadata("/dev/null").ok();
        let file = File::from(fd);
        let closed = match (file.metadata(), null) {
            (Ok(m), Some(n)) => {
                m.file_type().is_char_device()
                    && m.rdev() == n.rdev()
                    && flags != -1
                    && flags & libc::O_ACCMODE == libc::O_RDWR
            }
            _ => false,
        };
        STDOUT_CLOSED.store(closed, std::sync::atomic::Ordering::Relaxed);
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
        // 0666 less the umask, as a plain create: the mode a new output keeps.
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o666)
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        #[cfg(unix)]
        builder.permissions(mode);
        let file = builder.tempfile_in(dir)?;
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
    },
}

/// What a non-regular file is, in words.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
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

/// Settles where the output goes, before any work: see the module docs. `inputs` are the
/// files the command reads, each with what it is to the user (`input`, `--hf-config`,
/// `--positions-from`): the output may be none of them. Every refusal is exit 2 and leaves
/// the output path as it was; nothing is created here.
pub fn resolve(output: &Path, inputs: &[(&str, &Path)]) -> CliResult<OutputTarget> {
    let mut guarded = Vec::new();
    for &(role, input) in inputs {
        let unreadable = |e: io::Error| {
            CliError::usage(format!("cannot read {role} file {}: {e}", input.display()))
        };
        let real = input.canonicalize().map_err(unreadable)?;
        let meta = std::fs::metadata(&real).map_err(unreadable)?;
        if !meta.is_file() {
            return Err(CliError::usage(format!(
                "{role} {} is {}, not a regular file",
                input.display(),
                kind_of(&meta)
            )));
        }
        guarded.push((role, input, real, meta));
    }
    if output.as_os_str() == "-" {
        if stdout_was_closed() {
            return Err(CliError::failure(
                "cannot write the output to stdout (-o -): stdout is closed",
            ));
        }
        return Ok(OutputTarget {
            shown: output.to_path_buf(),
            kind: TargetKind::Stdout,
        });
    }
    let same = |role: &str, input: &Path| {
        let article = if role == "input" {
            "the input file"
        } else {
            role
        };
        CliError::usage(format!(
            "output {} is {article} {}; refusing to write over it",
            output.display(),
            input.display()
        ))
    };
    let (path, existing) = follow(output)?;
    #[cfg(unix)]
    if let Some(meta) = &existing {
        use std::os::unix::fs::MetadataExt;
        if let Some((role, input, ..)) = guarded
            .iter()
            .find(|(.., m)| meta.dev() == m.dev() && meta.ino() == m.ino())
        {
            return Err(same(role, input));
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
    if let Some((role, input, ..)) = guarded
        .iter()
        .find(|(_, _, real, _)| folder_real.join(&name) == *real)
    {
        return Err(same(role, input));
    }
    let _ = existing;
    Ok(OutputTarget {
        shown: output.to_path_buf(),
        kind: TargetKind::File { path },
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
    /// A sink for the output bytes: stdout, or a fresh temporary file in the final file's
    /// folder (a folder it cannot be created in is exit 2, naming it). Called once every
    /// input has been read.
    pub fn open(&self) -> CliResult<OutputSink> {
        match &self.kind {
            TargetKind::Stdout => {
                // A file of its own on fd 1: every write error shows (std's stdout treats a
                // closed descriptor as a sink that accepts everything).
                use std::os::fd::AsFd;
                let fd = io::stdout().as_fd().try_clone_to_owned().map_err(|e| {
                    CliError::failure(format!("cannot write the output to stdout: {e}"))
                })?;
                Ok(OutputSink {
                    shown: self.to_string(),
                    kind: SinkKind::Stdout(BufWriter::with_capacity(BUFFER, File::from(fd))),
                })
            }
            TargetKind::File { path } => {
                let name = path.file_name().expect("checked by resolve");
                let folder = folder_of(path);
                // In the canonical folder (the same folder): messages then show a clean
                // absolute path.
                let real = folder.canonicalize().unwrap_or_else(|_| folder.clone());
                let temp = Temp::create(&real, name).map_err(|e| {
                    CliError::usage(format!(
                        "cannot create a file in the output folder {}: {e}",
                        folder.display()
                    ))
                })?;
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
    Stdout(BufWriter<File>),
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
    /// final file's permission bits (a new file keeps 0666 less the umask, from its creation),
    /// and renames it over the final path atomically.
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
                    if let Ok(m) = std::fs::metadata(&path) {
                        let mode = m.permissions().mode() & 0o777;
                        file.set_permissions(std::fs::Permissions::from_mode(mode))
                            .map_err(failed)?;
                    }
                }
                drop(file);
                temp.persist(&path).map_err(failed)
            }
        }
    }
}
