//! `zebrastream encrypt` and `zebrastream decrypt`: files or pipes, like `age`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use tokio::io::AsyncWriteExt;

use zebrastream::cipher::{DecryptingReader, EncryptingWriter, Format, DEFAULT_MAX_WORK_FACTOR};

use super::config::{Config, Environment};
use super::endpoint::{pump, FlushPolicy, PumpError, Sink, Source};
use zebrastream::client::Opening;

use super::errors::{client_failure, io_failure, Side};
use super::keys::{self, KeyFlags, KeyPlan, Resolution, Role};
use super::passphrase;
use super::progress::Progress;
use super::{CmdResult, ExitKind, Failure};

/// Key options shared by `encrypt` and `decrypt`.
#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from environment variable VAR
    #[arg(
        long = "passphrase-env",
        value_name = "VAR",
        conflicts_with = "passphrase_file"
    )]
    passphrase_env: Option<String>,
    /// Read the passphrase from the first line of FILE
    #[arg(long = "passphrase-file", value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// Arguments of `zebrastream encrypt`.
#[derive(Debug, Args)]
#[command(after_help = "\
Without -r/-R/--passphrase-*, ZEBRASTREAM_PASSPHRASE is used when set, else the
passphrase is asked on the terminal (twice).

Examples:
  zebrastream encrypt -r age1… -o data.csv.age data.csv
  zebrastream encrypt --format age --passphrase-file pw.txt < dump.sql > dump.sql.age
  zebrastream encrypt -a -r age1… < notes.txt > notes.txt.age   (ASCII armor, age format)
  tar c dir | zebrastream encrypt -R partners.txt | zebrastream write --plain -s /drop")]
pub struct EncryptArgs {
    /// Payload format: age-rt (default, what `write` sends) or age (readable by age/rage; the default with -a)
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<Format>,
    /// Write ASCII armor (PEM-style base64 text, as `age -a`); age format only
    #[arg(short = 'a', long = "armor")]
    armor: bool,
    /// Encrypt to this recipient (age1… or an SSH public key); repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    recipients: Vec<String>,
    /// Encrypt to the recipients listed in FILE (one per line); repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    recipients_files: Vec<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// Write the ciphertext to FILE instead of stdout (a file appears only when complete; a device or FIFO is written in place)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// The file to encrypt (default: stdin)
    #[arg(value_name = "INPUT")]
    input: Option<PathBuf>,
}

/// Arguments of `zebrastream decrypt`.
#[derive(Debug, Args)]
#[command(after_help = "\
The format (age-rt, age, or age in ASCII armor) is detected. Only authenticated plaintext is
written; with -o the file appears only when the whole stream authenticated.
Exit 8: wrong key or tampered data; exit 9: truncated.

Examples:
  zebrastream decrypt -i partner.key -o data.csv data.csv.age
  ZEBRASTREAM_PASSPHRASE=… zebrastream decrypt < dump.sql.age | psql")]
pub struct DecryptArgs {
    /// Decrypt with the identities in FILE (age-keygen / zebrastream keygen format); repeatable
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identities: Vec<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// Write the plaintext to FILE instead of stdout (a file appears only when complete; a device or FIFO is written in place)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Accept passphrase files with an scrypt work factor up to 2^N (each step doubles memory and time)
    #[arg(
        long = "max-work-factor",
        value_name = "N",
        default_value_t = DEFAULT_MAX_WORK_FACTOR,
        value_parser = clap::value_parser!(u8).range(1..=63)
    )]
    max_work_factor: u8,
    /// The file to decrypt (default: stdin)
    #[arg(value_name = "INPUT")]
    input: Option<PathBuf>,
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse::<Format>().map_err(|e| e.to_string())
}

/// How the input is named in messages.
fn subject_of(input: Option<&Path>) -> String {
    match input {
        Some(p) if p != Path::new("-") => p.display().to_string(),
        _ => String::from("stdin"),
    }
}

/// Encrypts INPUT (or stdin) to OUTPUT (or stdout).
pub fn run_encrypt(args: EncryptArgs, env: &Environment, quiet: bool) -> CmdResult {
    let subject = subject_of(args.input.as_deref());
    let format = match (args.format, args.armor) {
        // The armor is defined for age v1 files only, and a reader could not
        // see an age-rt flush before the end of its base64 line.
        (Some(Format::AgeRt), true) => {
            return Err(Failure::usage(
                "--armor writes the age format only (ASCII armor is defined for age v1 files); drop --format age-rt or use --format age",
            ))
        }
        (Some(format), _) => format,
        (None, true) => Format::AgeV1,
        (None, false) => Format::AgeRt,
    };
    if !args.armor && args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "refusing to write binary ciphertext to a terminal; use -o FILE, redirect stdout, or -a for ASCII armor",
        ));
    }
    let flags = KeyFlags {
        passphrase_env: args.passphrase.passphrase_env,
        passphrase_file: args.passphrase.passphrase_file,
        recipients: args.recipients,
        recipients_files: args.recipients_files,
        ..KeyFlags::default()
    };
    let plan = key_plan(Role::Encrypt, flags, env, &subject)?;
    let mut encryptor = plan
        .sealing(format, &Resolution::offline(&subject))?
        .encryptor()
        .map_err(|e| client_failure(&subject, Side::Producer, &e))?
        .ok_or_else(|| Failure::usage("encrypt needs a key"))?;
    if args.armor {
        encryptor = encryptor
            .armored()
            .map_err(|e| Failure::usage(format!("{subject}: {e}")))?;
    }
    super::block_on(super::Runtime::SingleStream, async move {
        let mut source = Source::open(args.input.as_deref()).await?;
        let mut sink = Sink::create(args.output.as_deref()).await?;
        let progress = Progress::for_stderr(quiet);
        progress.transferring("encrypted");
        let mut writer = EncryptingWriter::new(sink.writer(), encryptor);
        let pumped = pump(
            source.reader(),
            &mut writer,
            &progress,
            FlushPolicy::WhenFull,
        )
        .await;
        let result = match pumped {
            Ok(_) => writer
                .shutdown()
                .await
                .map_err(|e| output_failure(&subject, e)),
            Err(PumpError::Read(e)) => Err(Failure::new(
                ExitKind::Other,
                format!("{subject}: cannot read input: {e}"),
            )),
            Err(PumpError::Write(e)) => Err(output_failure(&subject, e)),
        };
        drop(writer);
        match result {
            Ok(()) => {
                sink.commit(&subject).await?;
                progress.finish();
                Ok(())
            }
            Err(f) => {
                progress.clear();
                sink.abort().await;
                Err(f)
            }
        }
    })
}

/// The key decision for `encrypt`/`decrypt`: flags, then `ZEBRASTREAM_PASSPHRASE`
/// (no config files: these commands work on files, not streams), then a prompt.
fn key_plan(
    role: Role,
    flags: KeyFlags,
    env: &Environment,
    subject: &str,
) -> Result<KeyPlan, Failure> {
    let config = Config::from_environment(env).map_err(|e| Failure::usage(e.to_string()))?;
    keys::plan(role, flags, &config, passphrase::can_prompt(), subject)
}

/// Decrypts INPUT (or stdin) to OUTPUT (or stdout).
pub fn run_decrypt(args: DecryptArgs, env: &Environment, quiet: bool) -> CmdResult {
    let subject = subject_of(args.input.as_deref());
    let flags = KeyFlags {
        passphrase_env: args.passphrase.passphrase_env,
        passphrase_file: args.passphrase.passphrase_file,
        identities: args.identities,
        ..KeyFlags::default()
    };
    let plan = key_plan(Role::Decrypt, flags, env, &subject)?;
    let decryptor = match plan.opening(args.max_work_factor, &Resolution::offline(&subject))? {
        Opening::Plain | Opening::Detect => {
            return Err(Failure::usage(format!("{subject}: decrypt needs a key")))
        }
        opening => opening
            .decryptor()
            .map_err(|e| client_failure(&subject, Side::Consumer, &e))?
            .ok_or_else(|| Failure::usage(format!("{subject}: decrypt needs a key")))?
            .accept_armor(true),
    };
    super::block_on(super::Runtime::SingleStream, async move {
        let mut source = Source::open(args.input.as_deref()).await?;
        let mut sink = Sink::create(args.output.as_deref()).await?;
        let progress = Progress::for_stderr(quiet);
        progress.transferring("decrypted");
        let mut reader = DecryptingReader::new(source.reader(), decryptor);
        let pumped = pump(&mut reader, sink.writer(), &progress, FlushPolicy::WhenIdle).await;
        drop(reader);
        match pumped {
            Ok(_) => {
                sink.commit(&subject).await?;
                progress.finish();
                Ok(())
            }
            Err(e) => {
                progress.clear();
                sink.abort().await;
                Err(match e {
                    PumpError::Read(e) => io_failure(&subject, Side::Consumer, e),
                    PumpError::Write(e) => output_failure(&subject, e),
                })
            }
        }
    })
}

fn output_failure(subject: &str, e: std::io::Error) -> Failure {
    Failure::new(
        ExitKind::Other,
        format!("{subject}: cannot write output: {e}"),
    )
}
