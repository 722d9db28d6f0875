//! Command-line front end: argument parsing and dispatch to one module per subcommand.

mod exit;
mod relay;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use exit::{CmdResult, ExitKind, Failure};

/// Encrypted HTTP bytestreams: push, pull, encrypt, decrypt, relay.
#[derive(Debug, Parser)]
#[command(name = "zebrastream", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a relay serving the Connect and Data APIs.
    Relay(relay::RelayArgs),
}

/// Parse the command line, run the subcommand, and map its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: CmdResult = match cli.command {
        Command::Relay(args) => relay::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("zebrastream: {failure}");
            failure.exit_code()
        }
    }
}
