//! Progress of a long write on stderr: a bar drawn only when stderr is a terminal and the run
//! has gone on for more than [`AFTER`], so short runs, pipes, logs and tests see nothing.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

/// How long a run goes before its bar appears.
pub const AFTER: Duration = Duration::from_secs(1);

/// A writer that counts the bytes through it against `total` and shows a bar once the run
/// is long.
pub struct Counting<W: Write> {
    inner: W,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    start: Instant,
}

impl<W: Write> Counting<W> {
    /// Counts the writes into `inner` of a `total`-byte output; `what` labels the bar.
    pub fn new(inner: W, total: u64, what: &str) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            // Cleared however the run ends (an error's sentence then stands alone).
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
                .with_finish(ProgressFinish::AndClear);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_string());
            bar
        });
        Self {
            inner,
            bar,
            total,
            done: 0,
            start: Instant::now(),
        }
    }

    fn advance(&mut self, n: usize) {
        self.done += n as u64;
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.start.elapsed() > AFTER && self.done < self.total {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            bar.set_position(self.done);
        }
    }

    /// The writer, the bar cleared from the terminal.
    pub fn finish(self) -> W {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.inner
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.advance(n);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.advance(buf.len());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
