//! `zebrastream write`: send stdin, a file, or a producer command's output
//! to a stream, encrypted unless `--plain`.

use std::path::PathBuf;

use clap::Args;
use tokio::io::AsyncWriteExt;

use zebrastream::client::{self, AutoFlush, StreamWriter};

use super::config::{Config, ConfigSelection};
use super::endpoint::{pump, FlushPolicy, PumpError, Source};
use super::errors::{client_failure, io_failure, Side};
use super::keys::Resolution;
use super::passphrase;
use super::progress::Progress;
use super::settings::{self, ModeFlags, StreamArgs};
use super::{CmdResult, ExitKind, Failure};

/// Arguments of `zebrastream write`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads stdin by default, INPUT if given, or the stdout of a producer command
after '--'. Encrypts with the key from -p/--passphrase-file/-r/-R, or from
ZEBRASTREAM_PASSPHRASE / the config; asks for a passphrase on a terminal;
refuses to send plaintext unless --plain is given.

Prefer '-- CMD' to a shell pipe: in 'pg_dump | zebrastream write' a dump
that dies looks finished (its pipe just closes) and is sealed as a complete
stream; with '-- pg_dump' a failed producer aborts the stream (exit 6).

Examples:
  zebrastream write -s /hospital/trial-42 --passphrase-file key.txt -- pg_dump mydb
  zebrastream write -s /trial-42 -r age1… data.csv
  zebrastream write -s /logs -d 0 --plain -- tail -f app.log   # instant flush
  zebrastream write -s /backup -- sh -c \"tar c dir | gzip\"
  zebrastream --config-name myconfig write                    # stream_path etc. from the config")]
pub struct WriteArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// Content-Type HTTP header for the stream
    #[arg(short = 'c', long = "content-type", value_name = "TYPE")]
    content_type: Option<String>,
    /// Automatic flush delay in seconds (0 = instant, 1+ = timer, omit to disable)
    #[arg(short = 'd', long = "auto-flush-delay", value_name = "SECONDS")]
    auto_flush_delay: Option<u64>,
    /// Encryption format: age-rt (default, variable chunks) or age (standard, fixed 64 KiB blocks);
    /// --format is the same flag (the word `encrypt` uses)
    #[arg(
        long = "encryption-mode",
        visible_alias = "format",
        value_name = "MODE"
    )]
    encryption_mode: Option<String>,
    /// Encrypt to this recipient (age1… or an SSH public key); repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    recipients: Vec<String>,
    /// Encrypt to the recipients listed in FILE (one per line); repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    recipients_files: Vec<PathBuf>,
    /// Send input as soon as it arrives (flush after every read)
    #[arg(short = 'u', long = "unbuffered-input")]
    unbuffered_input: bool,
    /// Send this file instead of stdin
    #[arg(value_name = "INPUT", conflicts_with = "command")]
    input: Option<PathBuf>,
    /// Producer command and arguments (after --): its stdout is sent
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `zebrastream write`.
pub fn run(
    args: WriteArgs,
    config: &Config,
    selection: &ConfigSelection,
    quiet: bool,
) -> CmdResult {
    let write = settings::resolve_write(
        args.content_type,
        args.auto_flush_delay,
        args.encryption_mode,
        config,
    )?;
    let input = args.input;
    let stream = settings::resolve_stream(
        args.stream,
        ModeFlags {
            command: args.command,
            unbuffered: args.unbuffered_input,
            recipients: args.recipients,
            recipients_files: args.recipients_files,
            identities: Vec::new(),
        },
        config,
        selection,
        settings::Mode::Write,
        passphrase::can_prompt(),
    )?;
    let subject = stream.stream_path.clone();
    // An INPUT path on the command line beats a config `command`.
    let command = if input.is_some() {
        Vec::new()
    } else {
        stream.command.clone()
    };
    let builder = super::client_common(client::Config::builder(subject.clone()), &stream);
    let wait = super::PeerWait::of(Side::Producer, &stream);
    // Keys first: prompts and key files fail before anyone is kept waiting.
    let fresh = stream.forward_secrecy;
    let sealing = stream.keys.sealing(
        write.encryption_mode,
        &Resolution {
            ticket: stream.ticket.as_ref(),
            fresh,
            subject: &subject,
        },
    )?;
    let auto_flush = match write.auto_flush_delay {
        None => AutoFlush::Never,
        Some(d) if d.is_zero() => AutoFlush::EveryWrite,
        Some(d) => AutoFlush::After(d),
    };
    let mut builder = builder.auto_flush(auto_flush);
    if let Some(content_type) = write.content_type {
        builder = builder.content_type(content_type);
    }
    let config = builder
        .build()
        .map_err(|e| client_failure(&subject, Side::Producer, &e))?;
    let unbuffered = stream.unbuffered;

    super::block_on(super::Runtime::SingleStream, async move {
        // A file input is opened before connecting: a wrong path fails fast.
        let mut early_source = match (&input, command.is_empty()) {
            (Some(path), _) => Some(Source::open(Some(path)).await?),
            (None, true) => Some(Source::open(None).await?),
            (None, false) => None,
        };
        let progress = Progress::for_stderr(quiet);
        // With forward secrecy the library runs the exchange first: the key
        // is the reader's one-time key, answered to our offer (a key message
        // from any other session is refused before the data stream opens).
        progress.waiting(wait.notice(&config));
        let mut writer = StreamWriter::connect(&config, &sealing)
            .await
            .map_err(|e| wait.failure(&e, &progress))?;
        tracing::info!("{subject}: reader connected");
        progress.transferring("sent");
        // The producer starts only once a reader is there (as in the Python CLI).
        let mut source = match early_source.take() {
            Some(s) => s,
            None => match Source::spawn_producer(&command, &subject) {
                Ok(s) => s,
                Err(f) => {
                    progress.clear();
                    // Aborting the upload: the reader sees an error (with
                    // resume, it is told at once instead of resuming).
                    writer.abandon().await;
                    return Err(f);
                }
            },
        };
        let pumped = pump(
            source.reader(),
            &mut writer,
            &progress,
            if unbuffered {
                FlushPolicy::EachPiece
            } else {
                FlushPolicy::WhenFull
            },
        )
        .await;
        let outcome = match pumped {
            Ok(_) => match source.finish(&subject).await {
                // The producer failed: abort instead of finishing, so the reader
                // never takes its partial output for a complete stream.
                Err(f) => Err(f),
                Ok(()) => writer
                    .shutdown()
                    .await
                    .map_err(|e| io_failure(&subject, Side::Producer, e)),
            },
            Err(PumpError::Read(e)) => {
                let what = source.describe();
                source.abort().await;
                Err(Failure::new(
                    ExitKind::Other,
                    format!("{subject}: cannot read {what}: {e}; upload aborted"),
                ))
            }
            Err(PumpError::Write(e)) => {
                source.abort().await;
                Err(io_failure(&subject, Side::Producer, e))
            }
        };
        let sent = writer.bytes_written();
        // A failure ends the upload on purpose (the reader sees an error;
        // with resume, it is told at once instead of resuming).
        if outcome.is_err() {
            writer.abandon().await;
        } else {
            writer.abort();
        }
        match outcome {
            Ok(()) => {
                progress.finish();
                tracing::info!("{subject}: sent {sent} bytes; the relay confirmed the transfer");
                Ok(())
            }
            Err(f) => {
                progress.clear();
                Err(f)
            }
        }
    })
}
