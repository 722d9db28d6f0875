//! Command-line front end: argument parsing and dispatch to one module per subcommand.
//!
//! `write`/`read` take the Python CLI's flags (`zebrastream-io` 0.5.4) and
//! resolve their settings like it does ([`config`]); `encrypt`/`decrypt`
//! work on files like `age`; `keygen`, `completions` and `demo` need no
//! configuration. Every failure is one line on stderr and an exit code from
//! [`ExitKind`].

mod completions;
mod config;
mod endpoint;
mod exit;
mod keygen;
mod keys;
mod logging;
mod output;
mod passphrase;
mod progress;
mod settings;
mod shell_words;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use exit::{CmdResult, ExitKind, Failure};

/// Text after the subcommand list in `zebrastream --help`.
const MAIN_AFTER_HELP: &str = "\
Examples:
  pg_dump mydb | zebrastream write -s /hospital/trial-42 --passphrase-file key.txt
  zebrastream read -s /hospital/trial-42 --passphrase-file key.txt | psql
  zebrastream keygen -o partner.key        # then: write -r age1…, read -i partner.key
  zebrastream demo                         # encrypted transfer through a local relay

Settings come from flags, then ZEBRASTREAM_* environment variables, then the
config file (-f FILE or -n NAME = ~/.config/zebrastream/streams/NAME.yaml),
then ~/.config/zebrastream/config.yaml: the Python CLI's files work unchanged.

Exit codes: 0 success, 1 other error, 2 usage, 3 auth, 4 connect timeout,
5 peer disconnected, 6 producer command failed, 7 consumer command failed,
8 decryption failed or wrong key, 9 truncated stream.";

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an age X25519 identity (private key) file and print its recipient
    Keygen(keygen::KeygenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
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
    let verbosity =
        logging::Verbosity::from_flags(cli.global.log_level, cli.global.quiet, cli.global.verbose);
    logging::init(verbosity.flag_level().unwrap_or(logging::Level::Warn));
    match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Completions(args) => completions::run(args, Cli::command_for_completions()),
    }
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
