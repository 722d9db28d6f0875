//! Progress on stderr: a spinner while waiting for the peer, then bytes,
//! rate and elapsed time. Drawn only when stderr is a terminal (and not
//! `-q`); otherwise every call is a no-op and nothing is printed.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar currently drawn on stderr, if any, so log lines can be printed
/// above it instead of through it (see [`LogWriter`]).
static DRAWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How often the spinner redraws while nothing else happens.
const TICK: Duration = Duration::from_millis(120);

/// The progress display of one transfer (hidden when not on a terminal).
pub struct Progress {
    bar: ProgressBar,
    /// `-q`: not even the one-line notices off a terminal.
    quiet: bool,
}

impl Progress {
    /// A display on stderr if it is a terminal and `quiet` is off; hidden otherwise.
    pub fn for_stderr(quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        if visible {
            *DRAWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        }
        Progress { bar, quiet }
    }

    /// True when something is drawn.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Shows a spinner with `message` (e.g. "/x: waiting for a reader at
    /// URL (up to 30 s)"). Off a terminal, where no spinner is drawn, prints
    /// `message` once instead (unless `-q`), so a job that waits does not look
    /// hung in its log.
    pub fn waiting(&self, message: impl Into<String>) {
        let message = message.into();
        if self.bar.is_hidden() {
            if !self.quiet {
                eprintln!("{message}");
            }
            return;
        }
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(message);
        self.bar.enable_steady_tick(TICK);
    }

    /// Switches to the byte counter once the transfer runs; `label` says
    /// what moves ("sent", "received", "encrypted", …).
    pub fn transferring(&self, label: &'static str) {
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} {bytes} ({binary_bytes_per_sec}) in {elapsed_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(label);
        self.bar.reset_elapsed();
        self.bar.set_position(0);
    }

    /// Counts `n` more bytes.
    pub fn add(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Bytes counted so far.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bar.position()
    }

    /// Leaves the final line on screen ("done").
    pub fn finish(&self) {
        if self.is_visible() {
            self.bar.finish();
        }
    }

    /// Removes the display (on failure, before the error line is printed).
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        DRAWN.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// stderr for log lines: while a bar is drawn, the bar is lifted for the
/// line and redrawn below it. Used as the `tracing` writer.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = DRAWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
