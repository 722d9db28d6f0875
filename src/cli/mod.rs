//! Command-line front end: argument parsing and dispatch to one module per subcommand.
//!
//! `write`/`read` take the Python CLI's flags (`zebrastream-io` 0.5.4) and
//! resolve their settings like it does ([`config`]); `encrypt`/`decrypt`
//! work on files like `age`; `keygen`, `completions` and `demo` need no
//! configuration. Every failure is one line on stderr and an exit code from
//! [`ExitKind`].

mod completions;
mod config;
mod crypt;
mod demo;
mod endpoint;
mod errors;
mod exit;
mod forward_secrecy;
mod keygen;
mod keys;
mod logging;
mod output;
mod passphrase;
mod plugin_ui;
mod progress;
mod read;
mod relay;
mod settings;
mod shell_words;
mod size;
mod ticket;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use exit::{CmdResult, ExitKind, Failure};

/// How long `write`/`read` keep retrying an unreachable relay or a 5xx answer.
const CONNECT_RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Text after the subcommand list in `zebrastream --help`.
const MAIN_AFTER_HELP: &str = "\
Examples:
  zebrastream write -s /hospital/trial-42 --passphrase-file key.txt -- pg_dump mydb
  zebrastream read -s /hospital/trial-42 --passphrase-file key.txt \\
      -- psql --single-transaction -v ON_ERROR_STOP=1 mydb
  zebrastream keygen -o partner.key        # then: write -r age1…, read -i partner.key
  zebrastream demo                         # encrypted transfer through a local relay
  zebrastream relay --tokens tokens.toml   # run your own relay (see relay --help)
  zebrastream ticket new --relay URL/v0 --path /team -o t.txt
  zebrastream write --ticket-file t.txt < data   # relay, path and key in one string

Settings come from flags, then ZEBRASTREAM_* environment variables, then the
config file (-f FILE or -n NAME = ~/.config/zebrastream/streams/NAME.yaml),
then ~/.config/zebrastream/config.yaml: the Python CLI's files work unchanged.

Exit codes: 0 success, 1 other error, 2 usage, 3 auth, 4 connect timeout,
5 peer disconnected, 6 producer command failed, 7 consumer command failed,
8 decryption failed or wrong key, 9 truncated stream, 130/143 interrupted
by Ctrl-C/SIGTERM (after the cleanup).";

/// Encrypted HTTP bytestreams: push, pull, encrypt, decrypt, relay.
#[derive(Debug, Parser)]
#[command(name = "zebrastream", version, about, long_about = None, after_help = MAIN_AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand accepts (before or after the subcommand name).
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct GlobalArgs {
    /// Named configuration from ~/.config/zebrastream/streams/NAME.yaml
    #[arg(short = 'n', long = "config-name", value_name = "NAME", global = true)]
    config_name: Option<String>,
    /// Explicit path to a config file (takes precedence over --config-name)
    #[arg(short = 'f', long = "config-file", value_name = "PATH", global = true)]
    config_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug (default: warn, or log_level from the config)
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL", global = true,
          value_parser = logging::parse_level, conflicts_with_all = ["quiet", "verbose"])]
    log_level: Option<logging::Level>,
    /// Only print errors; no progress display
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More log output (-v info, -vv debug, -vvv trace)
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Colour in log lines: auto (only on a terminal, and not with NO_COLOR set), always, never
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = logging::ColorChoice::Auto, global = true)]
    color: logging::ColorChoice,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send stdin, a file, or a producer command's output to a stream (encrypted)
    Write(write::WriteArgs),
    /// Receive a stream into stdout, a file, or a consumer command (decrypted, authenticated)
    Read(read::ReadArgs),
    /// Encrypt a file or stdin (age-rt or age v1), like `age -e`
    Encrypt(crypt::EncryptArgs),
    /// Decrypt and authenticate a file or stdin (format detected), like `age -d`
    Decrypt(crypt::DecryptArgs),
    /// Generate an age X25519 identity (private key) file and print its recipient
    Keygen(keygen::KeygenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Run an encrypted transfer through an in-process loopback relay and verify it
    Demo(demo::DemoArgs),
    /// Run a relay serving the Connect and Data APIs
    Relay(relay::RelayArgs),
    /// Make or inspect a ticket: one string with relay URL, stream path and key
    Ticket(ticket::TicketArgs),
}

/// Parse the command line, run the subcommand, and map its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                ExitKind::Usage as u8
            } else {
                0
            });
        }
    };
    let result = run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::debug!(exit = failure.kind as u8, "command failed");
            eprintln!("zebrastream: {failure}");
            failure.exit_code()
        }
    }
}

/// Sets up logging and runs the chosen subcommand.
fn run(cli: Cli) -> CmdResult {
    logging::choose_color(cli.global.color);
    let verbosity =
        logging::Verbosity::from_flags(cli.global.log_level, cli.global.quiet, cli.global.verbose);
    let env = config::Environment::from_process();
    let quiet = verbosity.quiet();
    // The commands without config files log at the flags' level (default warn).
    let flag_level = verbosity.flag_level().unwrap_or(logging::Level::Warn);
    match cli.command {
        Command::Write(args) => {
            let (config, selection) = load_stream_config(&cli.global, verbosity, &env)?;
            write::run(args, &config, &selection, quiet)
        }
        Command::Read(args) => {
            let (config, selection) = load_stream_config(&cli.global, verbosity, &env)?;
            read::run(args, &config, &selection, quiet)
        }
        Command::Encrypt(args) => {
            logging::init(flag_level);
            crypt::run_encrypt(args, &env, quiet)
        }
        Command::Decrypt(args) => {
            logging::init(flag_level);
            crypt::run_decrypt(args, &env, quiet)
        }
        Command::Demo(args) => {
            // The demo's relay is open on purpose (loopback only): its
            // "no authentication" warning does not apply here (-v shows it).
            let quiet_relay: &[&str] = if flag_level <= logging::Level::Warn {
                &["zebrastream::relay=error"]
            } else {
                &[]
            };
            logging::init_with(flag_level, quiet_relay);
            demo::run(args)
        }
        Command::Keygen(args) => {
            logging::init(flag_level);
            keygen::run(args)
        }
        Command::Completions(args) => completions::run(args, Cli::command_for_completions()),
        Command::Relay(args) => {
            logging::init(flag_level);
            relay::run(args)
        }
        Command::Ticket(args) => {
            logging::init(flag_level);
            ticket::run(
                args,
                &config::Config::load(&config::ConfigSelection::from_flags(None, None), &env)
                    .map_err(|e| Failure::usage(e.to_string()))?,
            )
        }
    }
}

/// Loads the config for `write`/`read` and starts logging at the level from
/// the flags, else the config's `log_level`, else `warn`.
fn load_stream_config(
    global: &GlobalArgs,
    verbosity: logging::Verbosity,
    env: &config::Environment,
) -> Result<(config::Config, config::ConfigSelection), Failure> {
    let selection =
        config::ConfigSelection::from_flags(global.config_file.clone(), global.config_name.clone());
    let loaded = config::Config::load(&selection, env).map_err(|e| Failure::usage(e.to_string()));
    let from_config = match (&loaded, verbosity.flag_level()) {
        (Ok(config), None) => match config.string("log_level") {
            Ok(Some(s)) => Some(logging::parse_level(&s.value).map_err(|why| {
                Failure::usage(format!("config key 'log_level' from {}: {why}", s.origin))
            })),
            Ok(None) => None,
            Err(e) => Some(Err(Failure::usage(e.to_string()))),
        },
        _ => None,
    };
    let level = match from_config {
        Some(Ok(level)) => level,
        Some(Err(failure)) => {
            logging::init(logging::Level::Warn);
            return Err(failure);
        }
        None => verbosity.flag_level().unwrap_or(logging::Level::Warn),
    };
    logging::init(level);
    Ok((loaded?, selection))
}

/// The connection settings `write`, `read` share on the client config.
fn client_common(
    mut builder: zebrastream::client::ConfigBuilder,
    stream: &settings::StreamSettings,
) -> zebrastream::client::ConfigBuilder {
    if let Some(url) = &stream.connect_url {
        builder = builder.connect_url(url.clone());
    }
    builder = builder.token_origins(stream.token_origins.iter().cloned());
    if let Some(timeout) = stream.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    // Unreachable relays and 5xx answers are retried briefly, then reported
    // (the Python CLI fails at once; a short budget rides out a relay restart).
    builder = builder.retry(zebrastream::api::RetryPolicy::default().budget(CONNECT_RETRY_BUDGET));
    if let Some(resume) = stream.resume {
        builder = builder.resume(resume);
    }
    match &stream.access_token {
        Some(token) => builder.access_token(token.clone()),
        None => builder,
    }
}

/// How `write`/`read` wait for their peer: what they say while they wait,
/// and how a failed connect (the key exchange, if any, and the wait) reads.
struct PeerWait {
    side: errors::Side,
    subject: String,
    /// The forward-secrecy exchange runs first.
    fresh: bool,
    /// A ticket transfer with `--no-forward-secrecy`: a peer that runs the
    /// exchange waits on a side path, where we cannot see it.
    skipped_exchange: bool,
}

impl PeerWait {
    /// The wait of `side` on the stream `stream` describes.
    fn of(side: errors::Side, stream: &settings::StreamSettings) -> PeerWait {
        PeerWait {
            side,
            subject: stream.stream_path.clone(),
            fresh: stream.forward_secrecy,
            skipped_exchange: stream.ticket.is_some() && !stream.forward_secrecy,
        }
    }

    /// What we say while we wait: for whom, where, and how long.
    fn notice(&self, config: &zebrastream::client::Config) -> String {
        let limit = match config.connect_timeout() {
            Some(t) => format!("up to {} s", t.as_secs_f64()),
            None => String::from("no time limit; -t sets one"),
        };
        let exchange = if self.fresh {
            " (key exchange first)"
        } else {
            ""
        };
        format!(
            "{}: waiting for a {}{exchange} at {} ({limit})",
            self.subject,
            self.side.peer(),
            config.connect_url()
        )
    }

    /// The failure of the connect: clears the progress display and names
    /// the stream; after a skipped exchange a timeout also says that the
    /// peer may be waiting for the key exchange.
    fn failure(
        &self,
        error: &zebrastream::client::Error,
        progress: &progress::Progress,
    ) -> Failure {
        progress.clear();
        let failure = errors::client_failure(&self.subject, self.side, error);
        match self.skipped_exchange {
            true => forward_secrecy::explain_skipped_exchange(failure),
            false => failure,
        }
    }
}

/// Which tokio runtime a command runs on.
#[derive(Clone, Copy)]
enum Runtime {
    /// One thread: a single stream's client. Every hand-over between the
    /// caller's copy loop and the HTTP connection stays on one thread, no
    /// cross-thread wake-ups: 1.2× the throughput of a multi-thread runtime
    /// for `read`/`write` through pipes on loopback, 1.2–1.5× for the
    /// library's clients alone (docs/performance.md, docs/client.md).
    SingleStream,
    /// All cores: `demo`, which runs a relay and both clients in one process.
    MultiThread,
}

/// Runs `future` to completion on a tokio runtime of the given kind.
fn block_on<F: std::future::Future<Output = CmdResult>>(kind: Runtime, future: F) -> CmdResult {
    let mut builder = match kind {
        Runtime::SingleStream => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build().map_err(|e| {
        Failure::new(
            ExitKind::Other,
            format!("cannot start the async runtime: {e}"),
        )
    })?;
    let result = runtime.block_on(async {
        tokio::select! {
            // The signal branch is polled first, so its handlers are installed
            // before the command runs: a signal that follows anything the
            // command printed (the waiting notice) is always caught, never
            // the default action that kills the process without cleanup.
            biased;
            // Dropping the command's future on Ctrl-C/SIGTERM runs the cleanup
            // a signal would skip: an upload is aborted (never finished), a
            // consumer is killed, an unfinished -o file is removed.
            (signal, kind) = interrupted() => Err(Failure::new(
                kind,
                format!("interrupted by {signal}; the transfer was aborted"),
            )),
            result = future => result,
        }
    });
    // A blocking stdin read may still be pending on the runtime's thread pool;
    // do not wait for input that may never come.
    runtime.shutdown_background();
    result
}

/// Resolves with the signal's name and exit kind (128 + its number) on
/// SIGINT (Ctrl-C) or, on Unix, SIGTERM. If a handler cannot be installed,
/// that signal keeps its default action.
async fn interrupted() -> (&'static str, ExitKind) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = ctrl_c => ("Ctrl-C", ExitKind::Interrupted),
                _ = term.recv() => ("SIGTERM", ExitKind::Terminated),
            };
        }
    }
    ctrl_c.await;
    ("Ctrl-C", ExitKind::Interrupted)
}

impl Cli {
    /// The clap command tree (for completion scripts).
    fn command_for_completions() -> clap::Command {
        <Cli as clap::CommandFactory>::command()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
