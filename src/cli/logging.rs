//! Log output on stderr with `tracing`, in the Python CLI's format
//! (`[WARNING] message`), at a level from `-l`, `-q`/`-v` or the config.

use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only errors.
    Error,
    /// Errors and warnings (the default: argv-secret warnings show).
    Warn,
    /// Progress of the transfer phases.
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    fn directive(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// Parses `error`, `warn`/`warning`, `info`, `debug`, `trace` (any case).
pub fn parse_level(text: &str) -> Result<Level, String> {
    match text.to_ascii_lowercase().as_str() {
        "error" => Ok(Level::Error),
        "warn" | "warning" => Ok(Level::Warn),
        "info" => Ok(Level::Info),
        "debug" => Ok(Level::Debug),
        "trace" => Ok(Level::Trace),
        _ => Err(format!(
            "unknown log level '{text}': use error, warn, info or debug"
        )),
    }
}

/// The verbosity flags (`-l`, `-q`, `-v`).
#[derive(Debug, Clone, Copy)]
pub struct Verbosity {
    explicit: Option<Level>,
    quiet: bool,
    verbose: u8,
}

impl Verbosity {
    /// From the global flags.
    pub fn from_flags(explicit: Option<Level>, quiet: bool, verbose: u8) -> Self {
        Verbosity {
            explicit,
            quiet,
            verbose,
        }
    }

    /// The level the flags ask for, if they ask for one.
    pub fn flag_level(self) -> Option<Level> {
        if let Some(level) = self.explicit {
            return Some(level);
        }
        if self.quiet {
            return Some(Level::Error);
        }
        match self.verbose {
            0 => None,
            1 => Some(Level::Info),
            2 => Some(Level::Debug),
            _ => Some(Level::Trace),
        }
    }

    /// `-q`: no progress display either.
    pub fn quiet(self) -> bool {
        self.quiet || self.explicit == Some(Level::Error)
    }
}

/// `--color`: whether log lines on stderr may carry ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Only when stderr is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always (even into a file or pipe, and despite `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether stderr is a terminal and the value
    /// of `NO_COLOR` (<https://no-color.org>: set and not empty disables).
    fn enabled(self, stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_is_terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

/// The colour decision for this process, made once by [`choose_color`].
static ANSI: OnceLock<bool> = OnceLock::new();

/// Decides, once per process and before [`init`], whether log lines carry
/// colour codes (`--color`, `NO_COLOR`, stderr a terminal). Without a call,
/// they do not.
pub fn choose_color(choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR");
    let _ = ANSI.set(choice.enabled(std::io::stderr().is_terminal(), no_color.as_deref()));
}

/// Installs the stderr subscriber. `RUST_LOG`, when set, overrides the level.
pub fn init(level: Level) {
    init_with(level, &[]);
}

/// Like [`init`], with extra `target=level` directives (e.g. to quiet a
/// module whose warnings do not apply to this command).
pub fn init_with(level: Level, extra_directives: &[&str]) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            // Our own events at the chosen level; dependencies' chatter only from warn up.
            let others = level.min(Level::Warn).directive();
            let mut directives = format!("{others},zebrastream={}", level.directive());
            // The library warns when a stream writer is dropped unfinished; the
            // CLI drops one only to abort (a failed producer, a signal) and
            // reports that itself.
            directives.push_str(",zebrastream::client::abandoned=off");
            for extra in extra_directives {
                directives.push(',');
                directives.push_str(extra);
            }
            tracing_subscriber::EnvFilter::new(directives)
        });
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log lines go above a drawn progress bar, not through it.
        .with_writer(|| super::progress::LogWriter)
        .with_ansi(ANSI.get().copied().unwrap_or(false))
        .event_format(PythonStyle)
        .try_init();
}

/// `[LEVEL] message key=value`, the Python CLI's `StderrFormatter` layout.
struct PythonStyle;

impl<S, N> FormatEvent<S, N> for PythonStyle
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARNING",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        write!(writer, "[{level}] ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_like_the_python_cli() {
        assert_eq!(parse_level("warn"), Ok(Level::Warn));
        assert_eq!(parse_level("WARNING"), Ok(Level::Warn));
        assert_eq!(parse_level("debug"), Ok(Level::Debug));
        assert!(parse_level("loud").unwrap_err().contains("loud"));
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color_unless_forced() {
        use std::ffi::OsStr;
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(
            ColorChoice::Auto.enabled(true, empty),
            "empty NO_COLOR is unset"
        );
        assert!(!ColorChoice::Auto.enabled(true, set));
        assert!(!ColorChoice::Auto.enabled(false, None), "a file or pipe");
        assert!(ColorChoice::Always.enabled(false, set));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn flags_pick_the_level() {
        assert_eq!(Verbosity::from_flags(None, false, 0).flag_level(), None);
        assert_eq!(
            Verbosity::from_flags(None, true, 0).flag_level(),
            Some(Level::Error)
        );
        assert_eq!(
            Verbosity::from_flags(None, false, 2).flag_level(),
            Some(Level::Debug)
        );
        assert_eq!(
            Verbosity::from_flags(Some(Level::Info), false, 0).flag_level(),
            Some(Level::Info)
        );
        assert!(Verbosity::from_flags(None, true, 0).quiet());
    }
}
