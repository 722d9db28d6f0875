//! The `write`/`read` flags shared with the Python CLI, and their resolution
//! against the config: flag > `ZEBRASTREAM_*` env > config file > global file.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use zebrastream::cipher::Format;
use zebrastream::client::resume::MIN_RESUME_BUFFER;
use zebrastream::client::Resume;
use zebrastream::ticket::Ticket;

use super::config::{Config, ConfigError, ConfigSelection};
use super::keys::{self, KeyFlags, KeyPlan, Role};
use super::shell_words;
use super::Failure;

/// Flags `write` and `read` share (the Python CLI's names and letters).
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Stream path, e.g. /org/team/feed (optional if set in the config)
    #[arg(short = 's', long = "stream-path", value_name = "PATH")]
    pub stream_path: Option<String>,
    /// Override the Connect API URL [default: https://connect.zebrastream.io/v0]
    #[arg(short = 'U', long = "connect-url", value_name = "URL")]
    pub connect_url: Option<String>,
    /// Also send the access token (and the stream) to these data origins (scheme://host[:port]; comma-separated or repeated) when the relay's Connect API names them [default: only the connect URL's origin]
    #[arg(long = "token-origins", value_name = "ORIGINS", value_delimiter = ',')]
    pub token_origins: Vec<String>,
    /// Give up if the peer has not connected after this many seconds
    #[arg(short = 't', long = "connect-timeout", value_name = "SECONDS")]
    pub connect_timeout: Option<u64>,
    /// Access token (insecure in argv: prefer ZEBRASTREAM_ACCESS_TOKEN or a config file)
    #[arg(short = 'a', long = "access-token", value_name = "TOKEN", value_parser = secret_arg)]
    pub access_token: Option<SecretString>,
    /// Passphrase (insecure in argv: prefer --passphrase-file, ZEBRASTREAM_PASSPHRASE or the prompt)
    #[arg(short = 'p', long = "passphrase", value_name = "PASSPHRASE", value_parser = secret_arg)]
    pub passphrase: Option<SecretString>,
    /// Read the passphrase from the first line of FILE
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Explicitly transfer without encryption (overrides keys from config/env)
    #[arg(long)]
    pub plain: bool,
    /// Ticket (zs1…) carrying relay URL, stream path and key (insecure in argv: prefer ZEBRASTREAM_TICKET or --ticket-file)
    #[arg(long = "ticket", value_name = "TICKET", value_parser = secret_arg)]
    pub ticket: Option<SecretString>,
    /// Read the ticket from the first line of FILE
    #[arg(long = "ticket-file", value_name = "FILE", conflicts_with = "ticket")]
    pub ticket_file: Option<PathBuf>,
    /// Fresh key per transfer (the default with a ticket; opt-in with a passphrase, on both sides): a replayed stream fails, a key leaked later opens nothing recorded
    #[arg(long = "forward-secrecy")]
    pub forward_secrecy: bool,
    /// With a ticket: skip the key exchange (the reader may come later), accepting that a relay can replay an earlier stream of the ticket
    #[arg(long = "no-forward-secrecy", conflicts_with = "forward_secrecy")]
    pub no_forward_secrecy: bool,
    /// Resume after a broken connection, and report success only on the reader's receipt (the default with a ticket; otherwise on both sides: --resume, ZEBRASTREAM_RESUME=true or 'resume: true'); needs encryption
    #[arg(long = "resume")]
    pub resume: bool,
    /// Turn resume off (with a ticket, or over ZEBRASTREAM_RESUME / the config)
    #[arg(long = "no-resume", conflicts_with = "resume")]
    pub no_resume: bool,
    /// With resume: resume when nothing arrived for this many seconds [default: 15]
    #[arg(long = "stall-timeout", value_name = "SECONDS")]
    pub stall_timeout: Option<f64>,
    /// With resume: give up when a resume (or the reader's receipt) takes longer than this many seconds [default: 60]
    #[arg(long = "resume-timeout", value_name = "SECONDS")]
    pub resume_timeout: Option<f64>,
    /// With resume (write): keep this much sealed data to re-send, e.g. 64MiB [default: 16MiB]; also the most in flight unacknowledged
    #[arg(long = "resume-buffer", value_name = "SIZE", value_parser = super::size::parse_size)]
    pub resume_buffer: Option<u64>,
}

/// Parses a secret flag value straight into a zeroizing, `[REDACTED]`-printing type.
fn secret_arg(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

/// Which subcommand is resolving its settings (the config's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `zebrastream write`.
    Write,
    /// `zebrastream read`.
    Read,
}

impl Mode {
    /// The value the config's `mode` key must have.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Write => "write",
            Mode::Read => "read",
        }
    }
}

/// Everything `write`/`read` needs, resolved.
#[derive(Debug)]
pub struct StreamSettings {
    /// The stream path (starts with `/`).
    pub stream_path: String,
    /// The Connect API URL, if not the default.
    pub connect_url: Option<String>,
    /// How long to wait for the peer.
    pub connect_timeout: Option<Duration>,
    /// The bearer token, if any.
    pub access_token: Option<SecretString>,
    /// Origins besides the connect URL's that may get the token and the stream.
    pub token_origins: Vec<String>,
    /// The producer/consumer command (empty: stdin/stdout or a file).
    pub command: Vec<String>,
    /// `-u` or `unbuffered_input`/`unbuffered_output`.
    pub unbuffered: bool,
    /// The key decision ([`keys::plan`]); with a ticket, only the extra keys.
    pub keys: KeyPlan,
    /// The ticket, when the stream is addressed and keyed by one.
    pub ticket: Option<Ticket>,
    /// Run the forward-secrecy exchange: a ticket without
    /// `--no-forward-secrecy`, or a passphrase with `--forward-secrecy`.
    pub forward_secrecy: bool,
    /// Resume settings when resume is on: a ticket without `--no-resume`,
    /// or `--resume` / `ZEBRASTREAM_RESUME` / `resume` in the config.
    pub resume: Option<Resume>,
}

/// Settings only `write` has.
#[derive(Debug)]
pub struct WriteSettings {
    /// `Content-Type` of the PUT.
    pub content_type: Option<String>,
    /// Flush buffered data at most this long after the first unflushed write.
    pub auto_flush_delay: Option<Duration>,
    /// age-rt or age v1 when encrypting.
    pub encryption_mode: Format,
}

/// The per-subcommand flags that take part in resolution.
pub struct ModeFlags {
    /// `-- COMMAND…` from the command line.
    pub command: Vec<String>,
    /// `-u`.
    pub unbuffered: bool,
    /// The key flags beyond `-p`/`--passphrase-file`/`--plain`.
    pub recipients: Vec<String>,
    /// `-R`.
    pub recipients_files: Vec<PathBuf>,
    /// `-i`.
    pub identities: Vec<PathBuf>,
}

fn config_failure(e: ConfigError) -> Failure {
    Failure::usage(e.to_string())
}

/// Logs the Python CLI's warning for a secret given in argv.
fn warn_secret_in_argv(flag: &str, env_var: &str) {
    tracing::warn!(
        "Using {flag} is insecure on shared systems. Use {env_var} environment variable or config file instead."
    );
}

/// Resolves the shared settings of `write`/`read`.
pub fn resolve_stream(
    args: StreamArgs,
    extra: ModeFlags,
    config: &Config,
    selection: &ConfigSelection,
    mode: Mode,
    can_prompt: bool,
) -> Result<StreamSettings, Failure> {
    config
        .check_mode(selection, mode.as_str())
        .map_err(config_failure)?;

    let resume_flags = args.resume_flags();
    let ticket = resolve_ticket(args.ticket, args.ticket_file.as_deref(), config)?;
    // Fresh by default with a ticket; an opt-in with a passphrase.
    let forward_secrecy = match &ticket {
        Some(_) => !args.no_forward_secrecy,
        None => args.forward_secrecy,
    };
    let stream_path = match (args.stream_path, &ticket) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                "-s/--stream-path contradicts the ticket, which carries the stream path; give one of them",
            ))
        }
        (None, Some(ticket)) => ticket.stream_path(),
        (Some(p), None) => p,
        (None, None) => config
            .string("stream_path")
            .map_err(config_failure)?
            .map(|s| s.value)
            .ok_or_else(|| {
                Failure::usage(
                    "no stream path provided: use -s/--stream-path, ZEBRASTREAM_STREAM_PATH, or 'stream_path' in a config file",
                )
            })?,
    };
    if !stream_path.starts_with('/') {
        return Err(Failure::usage(format!(
            "stream path '{stream_path}' must start with '/', e.g. /org/team/feed"
        )));
    }

    let flag_token = args.access_token.filter(|t| !t.expose_secret().is_empty());
    if flag_token.is_some() {
        warn_secret_in_argv("--access-token", "ZEBRASTREAM_ACCESS_TOKEN");
    }
    let access_token = match flag_token {
        Some(t) => Some(t),
        _ => config
            .secret("access_token")
            .map_err(config_failure)?
            .map(|s| s.value)
            .or_else(|| ticket.as_ref().and_then(|t| t.access_token().cloned())),
    };
    if access_token.is_none() {
        tracing::info!(
            "{stream_path}: no access token configured (ZEBRASTREAM_ACCESS_TOKEN, config 'access_token' or -a); connecting without one"
        );
    }

    let connect_url = match (args.connect_url, &ticket) {
        (Some(u), _) => Some(u),
        (None, Some(ticket)) => Some(ticket.connect_url().to_owned()),
        (None, None) => config
            .string("connect_url")
            .map_err(config_failure)?
            .map(|s| s.value),
    };
    if let Some(url) = &connect_url {
        check_http_url(url)?;
    }
    let token_origins = resolve_token_origins(args.token_origins, config)?;
    let connect_timeout = match args.connect_timeout {
        Some(secs) => Some(Duration::from_secs(secs)),
        None => config
            .seconds("connect_timeout")
            .map_err(config_failure)?
            .map(|s| Duration::from_secs_f64(s.value)),
    };

    let command = if extra.command.is_empty() {
        match config.string("command").map_err(config_failure)? {
            Some(s) => shell_words::split(&s.value).map_err(|e| {
                Failure::usage(format!("config key 'command' from {}: {e}", s.origin))
            })?,
            None => Vec::new(),
        }
    } else {
        extra.command
    };
    let unbuffered_key = match mode {
        Mode::Write => "unbuffered_input",
        Mode::Read => "unbuffered_output",
    };
    let unbuffered = extra.unbuffered
        || config
            .flag(unbuffered_key)
            .map_err(config_failure)?
            .is_some_and(|s| s.value);

    if args
        .passphrase
        .as_ref()
        .is_some_and(|p| !p.expose_secret().is_empty())
    {
        warn_secret_in_argv("--passphrase", "ZEBRASTREAM_PASSPHRASE");
    }
    let key_flags = KeyFlags {
        passphrase: args.passphrase,
        passphrase_env: None,
        passphrase_file: args.passphrase_file,
        recipients: extra.recipients,
        recipients_files: extra.recipients_files,
        identities: extra.identities,
        plain: args.plain,
    };
    let role = match mode {
        Mode::Write => Role::Write,
        Mode::Read => Role::Read,
    };
    let keys = match ticket {
        Some(_) => keys::plan_with_ticket(role, key_flags, forward_secrecy, &stream_path)?,
        None if forward_secrecy => keys::plan_with_passphrase_exchange(
            keys::plan(role, key_flags, config, can_prompt, &stream_path)?,
            &stream_path,
        )?,
        None => keys::plan(role, key_flags, config, can_prompt, &stream_path)?,
    };

    let resume = resolve_resume(&resume_flags, ticket.is_some(), config)?;

    Ok(StreamSettings {
        stream_path,
        connect_url,
        connect_timeout,
        access_token,
        token_origins,
        command,
        unbuffered,
        keys,
        ticket,
        forward_secrecy,
        resume,
    })
}

/// The resume flags of the command line.
struct ResumeFlags {
    on: bool,
    off: bool,
    stall_timeout: Option<f64>,
    resume_timeout: Option<f64>,
    buffer: Option<u64>,
}

impl StreamArgs {
    fn resume_flags(&self) -> ResumeFlags {
        ResumeFlags {
            on: self.resume,
            off: self.no_resume,
            stall_timeout: self.stall_timeout,
            resume_timeout: self.resume_timeout,
            buffer: self.resume_buffer,
        }
    }
}

/// Whether resume is on (flag > `ZEBRASTREAM_RESUME` / config `resume` >
/// on with a ticket) and its settings (flags > `stall_timeout`,
/// `resume_timeout`, `resume_buffer` in the environment or config).
fn resolve_resume(
    flags: &ResumeFlags,
    ticket: bool,
    config: &Config,
) -> Result<Option<Resume>, Failure> {
    let on = if flags.off {
        false
    } else if flags.on {
        true
    } else {
        config
            .flag("resume")
            .map_err(config_failure)?
            .map_or(ticket, |s| s.value)
    };
    if !on {
        return Ok(None);
    }
    let seconds = |flag: Option<f64>, key: &str| -> Result<Option<Duration>, Failure> {
        let value = match flag {
            Some(v) => Some(v),
            None => config
                .seconds(key)
                .map_err(config_failure)?
                .map(|s| s.value),
        };
        match value {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(Failure::usage(format!(
                "{key} must be a positive number of seconds, not {v}"
            ))),
            other => Ok(other.map(Duration::from_secs_f64)),
        }
    };
    let mut resume = Resume::default();
    if let Some(stall) = seconds(flags.stall_timeout, "stall_timeout")? {
        resume = resume.with_stall_timeout(stall);
    }
    if let Some(limit) = seconds(flags.resume_timeout, "resume_timeout")? {
        resume = resume.with_resume_timeout(limit);
    }
    let buffer = match flags.buffer {
        Some(size) => Some(size),
        None => match config.string("resume_buffer").map_err(config_failure)? {
            Some(s) => Some(super::size::parse_size(&s.value).map_err(|e| {
                Failure::usage(format!("config key 'resume_buffer' from {}: {e}", s.origin))
            })?),
            None => None,
        },
    };
    if let Some(size) = buffer {
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= MIN_RESUME_BUFFER)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--resume-buffer {size} is too small: it must hold at least one chunk (64KiB)"
                ))
            })?;
        resume = resume.with_buffer(size);
    }
    Ok(Some(resume))
}

/// The ticket from `--ticket` (warned about: argv is visible to other local
/// users), `--ticket-file`, or `ZEBRASTREAM_TICKET` / the config's `ticket`.
pub fn resolve_ticket(
    flag: Option<SecretString>,
    file: Option<&std::path::Path>,
    config: &Config,
) -> Result<Option<Ticket>, Failure> {
    let (text, origin) = if let Some(text) = flag {
        warn_secret_in_argv("--ticket", "ZEBRASTREAM_TICKET");
        (text, String::from("--ticket"))
    } else if let Some(path) = file {
        let content = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!("cannot read ticket file {}: {e}", path.display()))
        })?;
        let first = content.lines().next().unwrap_or_default().to_owned();
        (
            SecretString::from(first),
            format!("ticket file {}", path.display()),
        )
    } else {
        match config.secret("ticket").map_err(config_failure)? {
            Some(s) => (s.value, s.origin.to_string()),
            None => return Ok(None),
        }
    };
    // The error names the problem, never the ticket text.
    Ticket::parse(text.expose_secret())
        .map(Some)
        .map_err(|e| Failure::usage(format!("{origin}: {e}")))
}

/// Resolves the settings only `write` has.
pub fn resolve_write(
    content_type: Option<String>,
    auto_flush_delay: Option<u64>,
    encryption_mode: Option<String>,
    config: &Config,
) -> Result<WriteSettings, Failure> {
    let content_type = match content_type {
        Some(c) => Some(c),
        None => config
            .string("content_type")
            .map_err(config_failure)?
            .map(|s| s.value),
    };
    let auto_flush_delay = match auto_flush_delay {
        Some(secs) => Some(Duration::from_secs(secs)),
        None => config
            .seconds("auto_flush_delay")
            .map_err(config_failure)?
            .map(|s| Duration::from_secs_f64(s.value)),
    };
    let (mode_text, origin) = match encryption_mode {
        Some(m) => (Some(m), String::from("--encryption-mode")),
        None => match config.string("encryption_mode").map_err(config_failure)? {
            Some(s) => (Some(s.value), s.origin.to_string()),
            None => (None, String::new()),
        },
    };
    let encryption_mode = match mode_text {
        None => Format::AgeRt,
        Some(text) => text.parse::<Format>().map_err(|_| {
            Failure::usage(format!(
                "invalid encryption_mode '{text}' from {origin}. Must be 'age-rt' or 'age'."
            ))
        })?,
    };
    Ok(WriteSettings {
        content_type,
        auto_flush_delay,
        encryption_mode,
    })
}

/// The token origins from `--token-origins` (comma lists, repeatable), else
/// from `ZEBRASTREAM_TOKEN_ORIGINS` / the config's `token_origins` (a comma
/// list or a YAML list). Each must be `scheme://host[:port]`.
fn resolve_token_origins(flag: Vec<String>, config: &Config) -> Result<Vec<String>, Failure> {
    let (items, origin) = if flag.is_empty() {
        match config.strings("token_origins").map_err(config_failure)? {
            Some(s) => (s.value, s.origin.to_string()),
            None => return Ok(Vec::new()),
        }
    } else {
        (flag, String::from("--token-origins"))
    };
    let origins: Vec<String> = items
        .iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect();
    for text in &origins {
        zebrastream::api::parse_token_origin(text)
            .map_err(|e| Failure::usage(format!("{origin}: {e}")))?;
    }
    Ok(origins)
}

/// Checks that `url` is an absolute http(s) URL.
fn check_http_url(url: &str) -> Result<(), Failure> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(Failure::usage(format!(
            "connect URL '{url}' must be an http:// or https:// URL"
        ))),
        Err(e) => Err(Failure::usage(format!(
            "connect URL '{url}' is not a URL: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::config::Environment;
    use secrecy::ExposeSecret;
    use std::path::Path;

    fn args(stream: Option<&str>) -> StreamArgs {
        StreamArgs {
            stream_path: stream.map(String::from),
            connect_url: None,
            token_origins: Vec::new(),
            connect_timeout: None,
            access_token: None,
            passphrase: None,
            passphrase_file: None,
            plain: true,
            ticket: None,
            ticket_file: None,
            forward_secrecy: false,
            no_forward_secrecy: false,
            resume: false,
            no_resume: false,
            stall_timeout: None,
            resume_timeout: None,
            resume_buffer: None,
        }
    }

    fn no_extra() -> ModeFlags {
        ModeFlags {
            command: Vec::new(),
            unbuffered: false,
            recipients: Vec::new(),
            recipients_files: Vec::new(),
            identities: Vec::new(),
        }
    }

    /// A temp HOME with the given global and named configs, and env pairs.
    struct Home {
        dir: tempfile::TempDir,
    }

    impl Home {
        fn new(global: Option<&str>, named: &[(&str, &str)]) -> Home {
            let dir = tempfile::tempdir().unwrap();
            let cfg = dir.path().join(".config/zebrastream");
            std::fs::create_dir_all(cfg.join("streams")).unwrap();
            if let Some(g) = global {
                std::fs::write(cfg.join("config.yaml"), g).unwrap();
            }
            for (name, text) in named {
                std::fs::write(cfg.join("streams").join(format!("{name}.yaml")), text).unwrap();
            }
            Home { dir }
        }

        fn env(&self, pairs: &[(&str, &str)]) -> Environment {
            let home = self.dir.path().to_str().unwrap().to_owned();
            let mut all: Vec<(&str, &str)> =
                vec![("HOME", &home), ("XDG_CONFIG_DIRS", "/nonexistent")];
            all.extend_from_slice(pairs);
            Environment::from_pairs(self.dir.path(), all.iter().map(|(k, v)| (*k, *v)))
        }
    }

    fn resolve(
        a: StreamArgs,
        env: &Environment,
        selection: ConfigSelection,
        mode: Mode,
    ) -> Result<StreamSettings, Failure> {
        let config = Config::load(&selection, env).map_err(config_failure)?;
        resolve_stream(a, no_extra(), &config, &selection, mode, false)
    }

    /// Resume: off by default, on with a ticket; flag > environment /
    /// config > the ticket's default; its settings from flags or config;
    /// bad values are usage errors naming the key.
    #[test]
    fn resume_is_resolved_flag_env_config_then_ticket() {
        let home = Home::new(Some("stall_timeout: 4\nresume_buffer: 32MiB\n"), &[]);
        let config = |pairs: &[(&str, &str)]| {
            Config::load(&ConfigSelection::GlobalOnly, &home.env(pairs)).unwrap()
        };
        let flags = |on: bool, off: bool| ResumeFlags {
            on,
            off,
            stall_timeout: None,
            resume_timeout: None,
            buffer: None,
        };
        let plain = config(&[]);
        assert_eq!(
            resolve_resume(&flags(false, false), false, &plain).unwrap(),
            None
        );
        let with_ticket = resolve_resume(&flags(false, false), true, &plain)
            .unwrap()
            .expect("on with a ticket");
        assert_eq!(with_ticket.stall_timeout(), Duration::from_secs(4));
        assert_eq!(with_ticket.buffer_size(), 32 << 20);
        assert_eq!(with_ticket.resume_timeout(), Duration::from_secs(60));
        assert_eq!(
            resolve_resume(&flags(false, true), true, &plain).unwrap(),
            None
        );
        assert!(resolve_resume(&flags(true, false), false, &plain)
            .unwrap()
            .is_some());
        let env_on = config(&[("ZEBRASTREAM_RESUME", "true")]);
        assert!(resolve_resume(&flags(false, false), false, &env_on)
            .unwrap()
            .is_some());
        let env_off = config(&[("ZEBRASTREAM_RESUME", "false")]);
        assert_eq!(
            resolve_resume(&flags(false, false), true, &env_off).unwrap(),
            None
        );
        let explicit = ResumeFlags {
            stall_timeout: Some(0.5),
            resume_timeout: Some(120.0),
            buffer: Some(64 << 20),
            ..flags(true, false)
        };
        let r = resolve_resume(&explicit, false, &plain).unwrap().unwrap();
        assert_eq!(r.stall_timeout(), Duration::from_millis(500));
        assert_eq!(r.resume_timeout(), Duration::from_secs(120));
        assert_eq!(r.buffer_size(), 64 << 20);
        let zero = ResumeFlags {
            stall_timeout: Some(0.0),
            ..flags(true, false)
        };
        let err = resolve_resume(&zero, false, &plain).unwrap_err();
        assert!(err.message.contains("stall_timeout"), "{}", err.message);
        let tiny = ResumeFlags {
            buffer: Some(1000),
            ..flags(true, false)
        };
        let err = resolve_resume(&tiny, false, &plain).unwrap_err();
        assert!(err.message.contains("too small"), "{}", err.message);
    }

    #[test]
    fn precedence_flag_env_named_global() {
        let home = Home::new(
            Some("stream_path: /global\nconnect_timeout: 1\ncontent_type: text/global\naccess_token: g\n"),
            &[("trial", "mode: write\nstream_path: /named\nconnect_timeout: 2\n")],
        );
        let named = ConfigSelection::Name(String::from("trial"));
        // global only
        let s = resolve(
            args(None),
            &home.env(&[]),
            ConfigSelection::GlobalOnly,
            Mode::Write,
        )
        .unwrap();
        assert_eq!(s.stream_path, "/global");
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(s.access_token.unwrap().expose_secret(), "g");
        // named over global
        let s = resolve(args(None), &home.env(&[]), named.clone(), Mode::Write).unwrap();
        assert_eq!(s.stream_path, "/named");
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(2)));
        // env over named, YAML-typed
        let env = home.env(&[
            ("ZEBRASTREAM_STREAM_PATH", "/env"),
            ("ZEBRASTREAM_CONNECT_TIMEOUT", "9"),
        ]);
        let s = resolve(args(None), &env, named.clone(), Mode::Write).unwrap();
        assert_eq!(s.stream_path, "/env");
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(9)));
        // flag over env
        let mut a = args(Some("/flag"));
        a.connect_timeout = Some(3);
        let s = resolve(a, &env, named, Mode::Write).unwrap();
        assert_eq!(s.stream_path, "/flag");
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(3)));
    }

    #[test]
    fn empty_env_value_unsets_a_file_key() {
        let home = Home::new(Some("stream_path: /global\n"), &[]);
        let env = home.env(&[("ZEBRASTREAM_STREAM_PATH", "")]);
        let err = resolve(args(None), &env, ConfigSelection::GlobalOnly, Mode::Read).unwrap_err();
        assert!(err.message.contains("no stream path"), "{}", err.message);
    }

    #[test]
    fn mode_must_match_when_a_config_is_selected() {
        let home = Home::new(
            None,
            &[
                ("w", "mode: write\nstream_path: /a\n"),
                ("nomode", "stream_path: /a\n"),
            ],
        );
        let err = resolve(
            args(None),
            &home.env(&[]),
            ConfigSelection::Name("w".into()),
            Mode::Read,
        )
        .unwrap_err();
        assert_eq!(err.kind, super::super::ExitKind::Usage);
        assert!(
            err.message.contains("conflicts with config mode 'write'"),
            "{}",
            err.message
        );
        let err = resolve(
            args(None),
            &home.env(&[]),
            ConfigSelection::Name("nomode".into()),
            Mode::Read,
        )
        .unwrap_err();
        assert!(
            err.message.contains("missing required 'mode'"),
            "{}",
            err.message
        );
        // ZEBRASTREAM_MODE counts, as in confuse.
        let env = home.env(&[("ZEBRASTREAM_MODE", "read")]);
        assert!(resolve(
            args(None),
            &env,
            ConfigSelection::Name("nomode".into()),
            Mode::Read
        )
        .is_ok());
        // Without -f/-n, mode is not checked.
        let env = home.env(&[("ZEBRASTREAM_MODE", "write")]);
        assert!(resolve(
            args(Some("/x")),
            &env,
            ConfigSelection::GlobalOnly,
            Mode::Read
        )
        .is_ok());
    }

    #[test]
    fn explicit_config_file_and_missing_files() {
        let home = Home::new(None, &[]);
        let file = home.dir.path().join("my.yaml");
        std::fs::write(&file, "mode: read\nstream_path: /from-file\ncommand: \"sh -c 'wc -c'\"\nunbuffered_output: yes\n").unwrap();
        let s = resolve(
            args(None),
            &home.env(&[]),
            ConfigSelection::File(file),
            Mode::Read,
        )
        .unwrap();
        assert_eq!(s.stream_path, "/from-file");
        assert_eq!(s.command, ["sh", "-c", "wc -c"]);
        assert!(s.unbuffered);
        let err = resolve(
            args(None),
            &home.env(&[]),
            ConfigSelection::File(Path::new("missing.yaml").into()),
            Mode::Read,
        )
        .unwrap_err();
        assert!(
            err.message.contains("config file not found"),
            "{}",
            err.message
        );
        let err = resolve(
            args(None),
            &home.env(&[]),
            ConfigSelection::Name("nope".into()),
            Mode::Read,
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("~/.config/zebrastream/streams/nope.yaml"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let home = Home::new(Some("connect_timeout: soon\n"), &[]);
        let err = resolve(
            args(Some("/a")),
            &home.env(&[]),
            ConfigSelection::GlobalOnly,
            Mode::Write,
        )
        .unwrap_err();
        assert!(err.message.contains("'connect_timeout'"), "{}", err.message);
        let home = Home::new(None, &[]);
        let err = resolve(
            args(Some("no-slash")),
            &home.env(&[]),
            ConfigSelection::GlobalOnly,
            Mode::Write,
        )
        .unwrap_err();
        assert!(err.message.contains("must start with '/'"));
        let env = home.env(&[("ZEBRASTREAM_CONNECT_URL", "ftp://x")]);
        let err = resolve(
            args(Some("/a")),
            &env,
            ConfigSelection::GlobalOnly,
            Mode::Write,
        )
        .unwrap_err();
        assert!(err.message.contains("http"), "{}", err.message);
    }

    #[test]
    fn env_secrets_keep_their_text() {
        let home = Home::new(None, &[]);
        let env = home.env(&[
            ("ZEBRASTREAM_PASSPHRASE", "0123"),
            ("ZEBRASTREAM_ACCESS_TOKEN", "007"),
        ]);
        let mut a = args(Some("/a"));
        a.plain = false;
        let s = resolve(a, &env, ConfigSelection::GlobalOnly, Mode::Write).unwrap();
        assert_eq!(s.access_token.unwrap().expose_secret(), "007");
        match s.keys {
            KeyPlan::Passphrase(keys::PassphraseSource::Given { secret, origin }) => {
                assert_eq!(secret.expose_secret(), "0123");
                assert!(origin.contains("ZEBRASTREAM_PASSPHRASE"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_origins_from_flag_env_or_config() {
        let home = Home::new(
            Some("token_origins: [\"https://a.example\", \"https://b.example:8443\"]\n"),
            &[],
        );
        let s = resolve(
            args(Some("/a")),
            &home.env(&[]),
            ConfigSelection::GlobalOnly,
            Mode::Read,
        )
        .unwrap();
        assert_eq!(
            s.token_origins,
            ["https://a.example", "https://b.example:8443"]
        );
        let env = home.env(&[(
            "ZEBRASTREAM_TOKEN_ORIGINS",
            "http://127.0.0.1:9,http://[::1]:9",
        )]);
        let s = resolve(
            args(Some("/a")),
            &env,
            ConfigSelection::GlobalOnly,
            Mode::Read,
        )
        .unwrap();
        assert_eq!(s.token_origins, ["http://127.0.0.1:9", "http://[::1]:9"]);
        let mut a = args(Some("/a"));
        a.token_origins = vec![String::from("https://flag.example")];
        let s = resolve(a, &env, ConfigSelection::GlobalOnly, Mode::Read).unwrap();
        assert_eq!(s.token_origins, ["https://flag.example"]);
        let env = home.env(&[("ZEBRASTREAM_TOKEN_ORIGINS", "https://x.example/data")]);
        let err = resolve(
            args(Some("/a")),
            &env,
            ConfigSelection::GlobalOnly,
            Mode::Read,
        )
        .unwrap_err();
        assert!(
            err.message.contains("ZEBRASTREAM_TOKEN_ORIGINS") && err.message.contains("path"),
            "{}",
            err.message
        );
    }

    #[test]
    fn write_only_settings() {
        let c = Config::from_yaml_layers(&[(
            "c.yaml",
            "content_type: text/csv\nauto_flush_delay: 0\nencryption_mode: age\n",
        )]);
        let w = resolve_write(None, None, None, &c).unwrap();
        assert_eq!(w.content_type.as_deref(), Some("text/csv"));
        assert_eq!(w.auto_flush_delay, Some(Duration::ZERO));
        assert_eq!(w.encryption_mode, Format::AgeV1);
        let w = resolve_write(Some("a/b".into()), Some(5), Some("age-rt".into()), &c).unwrap();
        assert_eq!(w.content_type.as_deref(), Some("a/b"));
        assert_eq!(w.auto_flush_delay, Some(Duration::from_secs(5)));
        assert_eq!(w.encryption_mode, Format::AgeRt);
        let err = resolve_write(None, None, Some("rot13".into()), &c).unwrap_err();
        assert!(err.message.contains("invalid encryption_mode 'rot13'"));
        let w = resolve_write(None, None, None, &Config::default()).unwrap();
        assert_eq!(w.encryption_mode, Format::AgeRt);
    }
}
