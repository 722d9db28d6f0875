//! `zebrastream read`: receive a stream into stdout, a file, or a consumer
//! command, decrypting and authenticating it.

use std::io;
use std::path::PathBuf;

use clap::Args;

use zebrastream::client::{self, StreamReader};

use super::config::{Config, ConfigSelection};
use super::endpoint::{pump, FlushPolicy, PumpError, Sink};
use super::errors::{client_failure, io_failure, Side};
use super::forward_secrecy;
use super::keys::Resolution;
use super::passphrase;
use super::progress::Progress;
use super::settings::{self, ModeFlags, StreamArgs};
use super::{CmdResult, ExitKind, Failure};

/// Arguments of `zebrastream read`.
#[derive(Debug, Args)]
#[command(after_help = "\
Writes to stdout by default, to FILE with -o (the file appears only when the
whole stream arrived and authenticated), or into a consumer command's stdin
after '--'. The format (age-rt or age) is detected. An unencrypted stream is
accepted only with --plain (or 'plain: true'): anything else refuses it (exit
8), so a relay cannot slip in plaintext. Without a key, the passphrase is
asked on the terminal before connecting; with no terminal either, the stream
is refused (exit 8). --plain saves whatever arrives as it is.

With a consumer command, a stream that fails kills it before its input
ends; 'psql --single-transaction -v ON_ERROR_STOP=1' then commits nothing of
a cut dump, where '| psql' would commit every row that arrived.

Examples:
  zebrastream read -s /hospital/trial-42 --passphrase-file key.txt \\
      -- psql --single-transaction -v ON_ERROR_STOP=1 mydb
  zebrastream read -s /trial-42 -i partner.key -o data.csv
  zebrastream read -s /logs --plain --unbuffered-output | grep ERROR
  zebrastream read -s /backup --passphrase-file key.txt -- tar -xz
  zebrastream --config-name myconfig read -- python process.py")]
pub struct ReadArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// Decrypt with the identities in FILE (age-keygen / zebrastream keygen format); repeatable
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identities: Vec<PathBuf>,
    /// Accept passphrase streams with an scrypt work factor up to 2^N (each step doubles memory and time)
    #[arg(
        long = "max-work-factor",
        value_name = "N",
        default_value_t = client::DEFAULT_READER_MAX_WORK_FACTOR,
        value_parser = clap::value_parser!(u8).range(1..=63)
    )]
    max_work_factor: u8,
    /// Flush after every piece received (output is live without it too: what
    /// arrived is written out before read waits for more)
    #[arg(short = 'u', long = "unbuffered-output")]
    unbuffered_output: bool,
    /// Write to FILE instead of stdout (a file appears only when complete; a device or FIFO is written in place; - is stdout)
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "command"
    )]
    output: Option<PathBuf>,
    /// Consumer command and arguments (after --): the stream goes to its stdin
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `zebrastream read`.
pub fn run(args: ReadArgs, config: &Config, selection: &ConfigSelection, quiet: bool) -> CmdResult {
    let output = args.output;
    let max_work_factor = args.max_work_factor;
    let stream = settings::resolve_stream(
        args.stream,
        ModeFlags {
            command: args.command,
            unbuffered: args.unbuffered_output,
            recipients: Vec::new(),
            recipients_files: Vec::new(),
            identities: args.identities,
        },
        config,
        selection,
        settings::Mode::Read,
        passphrase::can_prompt(),
    )?;
    let subject = stream.stream_path.clone();
    let command = if output.is_some() {
        Vec::new()
    } else {
        stream.command.clone()
    };
    let builder = super::client_common(client::Config::builder(subject.clone()), &stream);
    let wait = super::PeerWait::of(Side::Consumer, &stream);
    // Keys first: prompts and key files fail before anyone is kept waiting.
    let fresh = stream.forward_secrecy;
    let opening = stream.keys.opening(
        max_work_factor,
        &Resolution {
            ticket: stream.ticket.as_ref(),
            fresh,
            subject: &subject,
        },
    )?;
    let config = builder
        .build()
        .map_err(|e| client_failure(&subject, Side::Consumer, &e))?;
    // What "no identity matched" means for a fresh or a ticket stream.
    let refusal_hint =
        (fresh || stream.ticket.is_some()).then(|| forward_secrecy::no_key_hint(fresh));
    // Every authenticated byte goes out before the next wait (live output);
    // `-u` flushes after every piece on top.
    let flush = if stream.unbuffered {
        FlushPolicy::EachPiece
    } else {
        FlushPolicy::WhenIdle
    };

    super::block_on(super::Runtime::SingleStream, async move {
        // A file output is created before connecting: an unwritable path fails fast.
        let early_sink = match (&output, command.is_empty()) {
            (Some(path), _) => Some(Sink::create(Some(path)).await?),
            (None, true) => Some(Sink::create(None).await?),
            (None, false) => None,
        };
        let progress = Progress::for_stderr(quiet);
        // With forward secrecy the library first answers the writer's offer
        // with a one-time key; only that key opens the data stream. Without
        // any key (and no terminal) it refuses the stream, naming what it is.
        progress.waiting(wait.notice(&config));
        let mut reader = StreamReader::connect(&config, &opening)
            .await
            .map_err(|e| wait.failure(&e, &progress))?;
        tracing::info!("{subject}: writer connected");
        progress.transferring("received");
        let mut sink = match early_sink {
            Some(s) => s,
            None => match Sink::spawn_consumer(&command, &subject) {
                Ok(s) => s,
                Err(f) => {
                    progress.clear();
                    return Err(f);
                }
            },
        };
        let pumped = pump(&mut reader, sink.writer(), &progress, flush).await;
        let outcome = match pumped {
            // With resume, the writer reports success only on our receipt,
            // sent once the output is committed (file renamed into place,
            // consumer command exited 0, stdout flushed).
            Ok(_) => match sink.commit(&subject).await {
                Ok(()) => reader
                    .confirm()
                    .await
                    .map_err(|e| client_failure(&subject, Side::Consumer, &e)),
                Err(f) => Err(f),
            },
            Err(PumpError::Read(e)) => {
                sink.abort().await;
                let hint = refusal_hint.filter(|_| no_identity_matched(&e));
                let failure = io_failure(&subject, Side::Consumer, e);
                Err(match hint {
                    Some(hint) => {
                        Failure::new(failure.kind, format!("{}; {hint}", failure.message))
                    }
                    None => failure,
                })
            }
            Err(PumpError::Write(e)) if sink.is_consumer() => {
                tracing::debug!("{subject}: consumer input closed: {e}");
                sink.consumer_stopped(&subject).await
            }
            Err(PumpError::Write(e)) => {
                let what = sink.describe();
                sink.abort().await;
                Err(Failure::new(
                    ExitKind::Other,
                    format!("{subject}: cannot write to {what}: {e}; stopped reading"),
                ))
            }
        };
        match outcome {
            Ok(()) => {
                progress.finish();
                tracing::info!("{subject}: received {} bytes", reader.bytes_read());
                Ok(())
            }
            Err(f) => {
                progress.clear();
                // With resume, the writer fails at once instead of waiting
                // for a receipt that will not come.
                reader.abandon().await;
                Err(f)
            }
        }
    })
}

/// True if `error` says that no identity opened the stream's header.
fn no_identity_matched(error: &io::Error) -> bool {
    let cipher_error = match client::Error::from_io(error) {
        Some(client::Error::Decryption(e)) => Some(e),
        _ => zebrastream::cipher::Error::from_io(error),
    };
    matches!(
        cipher_error,
        Some(zebrastream::cipher::Error::NoMatchingIdentity)
    )
}
