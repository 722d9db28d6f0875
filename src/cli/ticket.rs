//! `zebrastream ticket`: make a ticket (one string that carries relay URL,
//! stream path and key), and show what a ticket addresses.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use zebrastream::client::DEFAULT_CONNECT_URL;
use zebrastream::forward_secrecy::{KEY_SIDE_PATH, OFFER_SIDE_PATH};
use zebrastream::protocol::side_path;
use zebrastream::ticket::Ticket;

use super::config::Config;
use super::{CmdResult, Failure};

/// Arguments of `zebrastream ticket`.
#[derive(Debug, Args)]
#[command(after_help = "\
A ticket (zs1…) is a secret: whoever holds it can find the stream and decrypt
it. The relay only ever sees a path derived one-way from it. By default a
ticket transfer runs a key exchange first (forward secrecy): the stream is
sealed to a one-time key of the reader's, so a replayed stream fails (exit 8);
--no-forward-secrecy on both sides skips it (the reader may then come later).

Examples:
  zebrastream ticket new --relay https://relay.example.org/v0 --path /hospital -o t.txt
  zebrastream write --ticket-file t.txt < export.parquet   # both sides online together:
  ZEBRASTREAM_TICKET=$(cat t.txt) zebrastream read > export.parquet   # a fresh key per transfer
  zebrastream ticket show --ticket-file t.txt      # relay and stream path, no secret")]
pub struct TicketArgs {
    #[command(subcommand)]
    action: TicketAction,
}

#[derive(Debug, Subcommand)]
enum TicketAction {
    /// Make a new ticket with a fresh 256-bit secret and print it (or write it to -o FILE)
    New {
        /// Connect API URL of the relay
        #[arg(long = "relay", value_name = "URL", default_value = DEFAULT_CONNECT_URL)]
        relay: String,
        /// Path prefix the stream lives under (your namespace on the relay)
        #[arg(long = "path", value_name = "PREFIX", default_value = "/")]
        path: String,
        /// Embed the access token read from the first line of FILE
        #[arg(long = "access-token-file", value_name = "FILE")]
        access_token_file: Option<PathBuf>,
        /// Write the ticket to FILE (mode 0600, never overwritten) instead of stdout
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show the relay and stream paths a ticket addresses, without its secret
    Show {
        /// Read the ticket from FILE (default: ZEBRASTREAM_TICKET)
        #[arg(long = "ticket-file", value_name = "FILE")]
        ticket_file: Option<PathBuf>,
    },
}

/// Runs `zebrastream ticket …`.
pub fn run(args: TicketArgs, config: &Config) -> CmdResult {
    match args.action {
        TicketAction::New {
            relay,
            path,
            access_token_file,
            output,
        } => {
            let mut ticket =
                Ticket::generate(&relay, &path).map_err(|e| Failure::usage(e.to_string()))?;
            if let Some(file) = access_token_file {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    Failure::usage(format!(
                        "cannot read access token file {}: {e}",
                        file.display()
                    ))
                })?;
                let token = SecretString::from(text.lines().next().unwrap_or_default().to_owned());
                ticket = ticket
                    .with_access_token(token)
                    .map_err(|e| Failure::usage(e.to_string()))?;
            }
            let text = ticket.to_secret_string();
            let line = zeroize::Zeroizing::new(format!("{}\n", text.expose_secret()));
            match output {
                Some(file) => {
                    super::keygen::write_new_private_file(&file, line.as_bytes())?;
                    eprintln!(
                        "ticket written to {}; stream path {}",
                        file.display(),
                        ticket.stream_path()
                    );
                    Ok(())
                }
                None => super::output::write_stdout_all(line.as_bytes()),
            }
        }
        TicketAction::Show { ticket_file } => {
            let ticket = super::settings::resolve_ticket(None, ticket_file.as_deref(), config)?
                .ok_or_else(|| {
                    Failure::usage(
                        "no ticket given: use --ticket-file FILE or set ZEBRASTREAM_TICKET",
                    )
                })?;
            let path = ticket.stream_path();
            let report = format!(
                "connect URL:    {}\nstream path:    {path}\nkey exchange:   {} and {} (forward secrecy)\naccess token:   {}\n",
                ticket.connect_url(),
                side_path(&path, OFFER_SIDE_PATH),
                side_path(&path, KEY_SIDE_PATH),
                if ticket.access_token().is_some() { "included" } else { "none" }
            );
            super::output::write_stdout_all(report.as_bytes())
        }
    }
}
