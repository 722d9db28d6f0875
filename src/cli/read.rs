//! `zebrastream read`: receive a stream into stdout, a file, or a consumer
//! command, decrypting and authenticating it.

use std::io;
use std::path::PathBuf;

use clap::Args;
use tokio::io::{AsyncRead, AsyncReadExt};

use zebrastream::cipher::Format;
use zebrastream::client::{self, StreamReader};

use super::config::{Config, ConfigSelection};
use super::endpoint::{pump, FlushPolicy, PumpError, Sink};
use super::errors::{client_failure, io_failure, Side};
use super::forward_secrecy::{self, ExchangeKeying};
use super::key_material::{self, OpeningKey, OpeningPlan};
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
    // Keys first: prompts and key files fail before anyone is kept waiting.
    let plan = OpeningPlan::from_plan(stream.keys, &subject)?;
    let fresh = stream.forward_secrecy;
    let mut exchange_key = None;
    // `refuse`: no key and no terminal; the stream is refused, named by what it is.
    let (encryption, refuse) = match (&stream.ticket, plan) {
        (Some(ticket), plan) => {
            if let OpeningPlan::Key(OpeningKey::Identities(extra)) = plan {
                if !extra.is_empty() {
                    tracing::warn!("{subject}: -i is not used with a ticket: the ticket's stanza must open the stream");
                }
            }
            if fresh {
                exchange_key = Some(ExchangeKeying::Ticket(ticket).key(&subject));
            }
            (ticket.reader_encryption(), false)
        }
        (None, OpeningPlan::Plain) => (client::Encryption::Plain, false),
        (None, OpeningPlan::Detect) => (client::Encryption::Plain, true),
        (None, OpeningPlan::Key(key)) => {
            if let (true, OpeningKey::Passphrase(passphrase)) = (fresh, &key) {
                exchange_key = Some(ExchangeKeying::Passphrase(passphrase).key(&subject));
            }
            (key_material::client_opening(key), false)
        }
    };
    let (connect_url, connect_timeout, access_token, token_origins) = (
        stream.connect_url,
        stream.connect_timeout,
        stream.access_token,
        stream.token_origins,
    );
    let config_subject = subject.clone();
    let make_config = move |encryption: client::Encryption| {
        let builder = client::Config::builder(config_subject.clone())
            .encryption(encryption)
            .max_work_factor(max_work_factor);
        super::client_common(
            builder,
            &connect_url,
            connect_timeout,
            access_token.clone(),
            &token_origins,
        )
        .build()
        .map_err(|e| client_failure(&config_subject, Side::Consumer, &e))
    };
    let client_config = make_config(encryption)?;
    // What "no identity matched" means for a fresh or a ticket stream.
    let refusal_hint =
        (fresh || stream.ticket.is_some()).then(|| forward_secrecy::no_key_hint(fresh));
    let skipped_exchange = stream.ticket.is_some() && !fresh;
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
        // With forward secrecy, the reader first answers the writer's offer
        // with a one-time key; only that key opens the data stream.
        let client_config = match &exchange_key {
            Some(key) => make_config(
                forward_secrecy::reader_encryption(key, &client_config, &progress, &subject)
                    .await?,
            )?,
            None => client_config,
        };
        let mut reader = super::connect_to_peer(
            &client_config,
            StreamReader::connect,
            &progress,
            &subject,
            Side::Consumer,
            skipped_exchange,
        )
        .await?;
        tracing::info!("{subject}: writer connected");
        if refuse {
            progress.clear();
            return Err(refusal(&mut reader, &subject).await);
        }
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
            Ok(_) => sink.commit(&subject).await,
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
                Err(f)
            }
        }
    })
}

/// Why a stream read without any key (and no terminal to ask on) is refused:
/// it is encrypted and there is no key, or it is not encrypted and plaintext
/// was not chosen (a relay could have injected it). Reads only the first bytes.
async fn refusal<R: AsyncRead + Unpin>(reader: &mut R, subject: &str) -> Failure {
    let format = match sniff_format(reader).await {
        Ok(format) => format,
        Err(e) => return io_failure(subject, Side::Consumer, e),
    };
    let why = match format {
        None => String::from(
            "the stream is not encrypted; use --plain to accept it (or 'plain: true' in the config)",
        ),
        Some(format) => format!(
            "the stream is encrypted ({format}) but no key was given; use -p/--passphrase-file/-i or ZEBRASTREAM_PASSPHRASE (or --plain to save the ciphertext as it is)"
        ),
    };
    Failure::new(ExitKind::Decryption, format!("{subject}: {why}"))
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

/// Reads just enough of `reader` to tell whether the stream starts with an
/// age-rt or age v1 header line, and returns the format found (`None`: not
/// an age stream). Stops at the first byte that rules both out.
async fn sniff_format<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Format>> {
    let lines: Vec<(Format, Vec<u8>)> = [Format::AgeRt, Format::AgeV1]
        .into_iter()
        .map(|f| (f, format!("{}\n", f.identifier()).into_bytes()))
        .collect();
    let longest = lines.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    let mut head = Vec::with_capacity(longest);
    let mut buf = [0u8; 64];
    loop {
        if let Some((format, _)) = lines.iter().find(|(_, l)| head.starts_with(l)) {
            return Ok(Some(*format));
        }
        let still_possible = lines.iter().any(|(_, l)| l.starts_with(&head));
        if !still_possible {
            return Ok(None);
        }
        let want = (longest - head.len()).clamp(1, buf.len());
        let n = reader.read(&mut buf[..want]).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sniffing_finds_formats_and_tells_plaintext_apart() {
        let rt = format!("{}\n-> scrypt …", Format::AgeRt.identifier());
        assert_eq!(
            sniff_format(&mut rt.as_bytes()).await.unwrap(),
            Some(Format::AgeRt)
        );
        let v1 = format!("{}\n-> X25519 …", Format::AgeV1.identifier());
        assert_eq!(
            sniff_format(&mut v1.as_bytes()).await.unwrap(),
            Some(Format::AgeV1)
        );
        // Plaintext: decided by the first read that matches no header.
        assert_eq!(sniff_format(&mut &b"hello world"[..]).await.unwrap(), None);
        // A plaintext prefix of a header, then EOF.
        assert_eq!(sniff_format(&mut &b"age-enc"[..]).await.unwrap(), None);
        assert_eq!(sniff_format(&mut &b""[..]).await.unwrap(), None);
    }
}
