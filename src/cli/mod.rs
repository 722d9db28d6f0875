//! Command-line front end: argument parsing and dispatch to one module per subcommand.

mod exit;

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
enum Command {}

/// Parse the command line, run the subcommand, and map its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: CmdResult = match cli.command {};
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("zebrastream: {failure}");
            failure.exit_code()
        }
    }
}
