//! The official client's keyword arguments (and our `recipients`,
//! `identities`, `ticket`) turned into the library's [`Config`] and a
//! [`Sealing`] or [`Opening`]. The Python half checks the official
//! client's own rules first (modes, `encryption_mode` with a passphrase,
//! ranges); what is left to reject here are keys, tickets and addresses.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use zebrastream::cipher::{keys, Format};
use zebrastream::client::{AutoFlush, Config, ConfigBuilder, Opening, Resume, Sealing};
use zebrastream::ticket::Ticket;

use crate::errors::to_python;

/// A key given to `recipients=` or `identities=`: the key itself, or a file of keys.
#[derive(FromPyObject)]
pub(crate) enum KeySource {
    /// `age1…`, `ssh-ed25519 …` or `AGE-SECRET-KEY-1…` text, or a path (a `str` that is no key).
    Text(String),
    /// A path (`pathlib.Path`, `os.PathLike`).
    File(PathBuf),
}

/// Where the stream is and how to reach it, common to writers and readers.
pub(crate) struct Endpoint {
    pub(crate) stream_path: Option<String>,
    pub(crate) connect_api_url: Option<String>,
    pub(crate) access_token: Option<String>,
    pub(crate) connect_timeout: Option<f64>,
    pub(crate) ticket: Option<String>,
    /// Resume (both ends must agree): on by default with a ticket, as in
    /// the CLI.
    pub(crate) resume: Option<bool>,
    /// Its settings, when resume is on.
    pub(crate) tuning: ResumeTuning,
}

/// `resume_buffer=`, `stall_timeout=` and `resume_timeout=`: the CLI's
/// `--resume-buffer`, `--stall-timeout` and `--resume-timeout` (bytes,
/// seconds, seconds; unset: the library's defaults).
#[derive(Default)]
pub(crate) struct ResumeTuning {
    /// Signed, so that a negative size is a `ValueError` like the rest
    /// (not an `OverflowError` of the conversion).
    pub(crate) buffer: Option<i64>,
    pub(crate) stall_timeout: Option<f64>,
    pub(crate) resume_timeout: Option<f64>,
}

impl ResumeTuning {
    /// The settings, or a `ValueError` naming the keyword whose value is no
    /// duration (the library checks the rest when the configuration is
    /// built).
    fn resume(&self) -> PyResult<Resume> {
        let mut resume = Resume::default();
        if let Some(bytes) = self.buffer {
            let bytes = usize::try_from(bytes).map_err(|_| {
                PyValueError::new_err(format!(
                    "resume_buffer must be a size in bytes, not {bytes}"
                ))
            })?;
            resume = resume.with_buffer(bytes);
        }
        if let Some(timeout) = seconds("stall_timeout", self.stall_timeout)? {
            resume = resume.with_stall_timeout(timeout);
        }
        if let Some(timeout) = seconds("resume_timeout", self.resume_timeout)? {
            resume = resume.with_resume_timeout(timeout);
        }
        Ok(resume)
    }

    /// The first keyword given, if any (they mean nothing with resume off).
    fn first_given(&self) -> Option<&'static str> {
        [
            ("resume_buffer", self.buffer.is_some()),
            ("stall_timeout", self.stall_timeout.is_some()),
            ("resume_timeout", self.resume_timeout.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// `value` seconds as a duration, a `ValueError` naming `keyword` unless it
/// is a finite number above zero.
fn seconds(keyword: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    value
        .map(|v| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "{keyword} must be a number of seconds > 0, not {v}"
                    ))
                })
        })
        .transpose()
}

impl Endpoint {
    /// The configuration builder of these settings (see [`Endpoint::builder`])
    /// and the parsed ticket, if one was given.
    pub(crate) fn resolve(self) -> PyResult<(ConfigBuilder, Option<Ticket>)> {
        let ticket = self
            .ticket
            .as_deref()
            .map(|text| {
                Ticket::parse(text).map_err(|e| PyValueError::new_err(format!("ticket: {e}")))
            })
            .transpose()?;
        Ok((self.builder(ticket.as_ref())?, ticket))
    }

    /// The configuration builder: the ticket's relay, path and token, or
    /// the `stream_path` (required without a ticket) and `connect_api_url`;
    /// explicit `connect_api_url`/`access_token` override the ticket's.
    fn builder(&self, ticket: Option<&Ticket>) -> PyResult<ConfigBuilder> {
        let mut builder = match (ticket, &self.stream_path) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give either stream_path or ticket: a ticket names its own stream path",
                ))
            }
            (Some(ticket), None) => ticket.config(),
            (None, Some(path)) => Config::builder(path.clone())
                .connect_url(zebrastream::client::DEFAULT_CONNECT_URL.to_owned()),
            (None, None) => return Err(PyValueError::new_err("stream_path is required")),
        };
        if let Some(url) = &self.connect_api_url {
            builder = builder.connect_url(url.trim_end_matches('/').to_owned());
        }
        if let Some(token) = &self.access_token {
            builder = builder.access_token(SecretString::from(token.clone()));
        }
        if let Some(seconds) = self.connect_timeout {
            let timeout = Duration::try_from_secs_f64(seconds).map_err(|_| {
                PyValueError::new_err(format!(
                    "connect_timeout must be a number of seconds >= 0, not {seconds}"
                ))
            })?;
            builder = builder.connect_timeout(timeout);
        }
        if self.resume.unwrap_or(ticket.is_some()) {
            builder = builder.resume(self.tuning.resume()?);
        } else if let Some(keyword) = self.tuning.first_given() {
            return Err(PyValueError::new_err(format!(
                "{keyword} is a resume setting, and resume is off: pass resume=True on both \
                 ends (or a ticket, which turns it on)"
            )));
        }
        Ok(builder)
    }
}

/// Builds the configuration, a bad setting being a `ValueError`.
pub(crate) fn build(builder: ConfigBuilder) -> PyResult<Config> {
    builder.build().map_err(|e| to_python("open", e))
}

/// The official client's `auto_flush_delay`: `None` never, `0` every
/// write, `N` at most N seconds after the first write following a flush.
pub(crate) fn auto_flush(delay: Option<f64>) -> PyResult<AutoFlush> {
    Ok(match delay {
        None => AutoFlush::Never,
        Some(0.0) => AutoFlush::EveryWrite,
        Some(d) => AutoFlush::After(Duration::try_from_secs_f64(d).map_err(|_| {
            PyValueError::new_err(format!("auto_flush_delay must be >= 0, not {d}"))
        })?),
    })
}

/// `encryption_mode`: `"age-rt"` or `"age"`.
pub(crate) fn format(mode: Option<&str>) -> PyResult<Format> {
    match mode {
        None | Some("age-rt") => Ok(Format::AgeRt),
        Some("age") => Ok(Format::AgeV1),
        Some(other) => Err(PyValueError::new_err(format!(
            "encryption_mode must be 'age-rt' or 'age', not {other:?}"
        ))),
    }
}

/// A writer's key: one of a passphrase, recipients, a ticket (fresh unless
/// `forward_secrecy` is off; with extra recipients when static), or none.
pub(crate) fn sealing(
    passphrase: Option<String>,
    recipients: Option<Vec<KeySource>>,
    ticket: Option<&Ticket>,
    forward_secrecy: bool,
    format: Format,
) -> PyResult<Sealing> {
    let recipients = recipients.map(parse_recipients).transpose()?;
    match (passphrase, recipients, ticket) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(PyValueError::new_err(
            "a passphrase cannot be combined with recipients or a ticket (age allows scrypt alone)",
        )),
        (Some(passphrase), None, None) => Ok(Sealing::Passphrase {
            passphrase: SecretString::from(passphrase),
            format,
        }),
        (None, extra, Some(ticket)) if forward_secrecy => match extra {
            None => Ok(ticket.sealing(format)),
            Some(_) => Err(PyValueError::new_err(
                "recipients go with a ticket only without forward secrecy (forward_secrecy=False)",
            )),
        },
        (None, extra, Some(ticket)) => Ok(ticket.static_sealing(extra.unwrap_or_default(), format)),
        (None, Some(recipients), None) => Ok(Sealing::recipients(recipients, format)),
        (None, None, None) => Ok(Sealing::Plain),
    }
}

/// A reader's key: a passphrase, identities, a ticket, or none (the bytes
/// as the relay serves them, as the official client reads without one).
pub(crate) fn opening(
    passphrase: Option<String>,
    identities: Option<Vec<KeySource>>,
    ticket: Option<&Ticket>,
    forward_secrecy: bool,
) -> PyResult<Opening> {
    let identities = identities.map(parse_identities).transpose()?;
    match (passphrase, identities, ticket) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(
            PyValueError::new_err("give one of passphrase, identities or ticket to open a stream"),
        ),
        (Some(passphrase), None, None) => Ok(Opening::passphrase(SecretString::from(passphrase))),
        (None, Some(identities), None) => Ok(Opening::identities(identities)),
        (None, None, Some(ticket)) if forward_secrecy => Ok(ticket.opening()),
        (None, None, Some(ticket)) => Ok(ticket.static_opening()),
        (None, None, None) => Ok(Opening::Plain),
    }
}

fn key_error(what: &str, error: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{what}: {error}"))
}

fn parse_recipients(sources: Vec<KeySource>) -> PyResult<Vec<keys::BoxedRecipient>> {
    let mut recipients = Vec::new();
    for source in sources {
        match source {
            KeySource::Text(text) if looks_like_recipient(&text) => recipients
                .push(keys::parse_recipient(&text).map_err(|e| key_error("recipients", e))?),
            KeySource::Text(path) => recipients.extend(
                keys::read_recipients_file(path.as_ref())
                    .map_err(|e| key_error("recipients", e))?,
            ),
            KeySource::File(path) => recipients
                .extend(keys::read_recipients_file(&path).map_err(|e| key_error("recipients", e))?),
        }
    }
    if recipients.is_empty() {
        return Err(PyValueError::new_err("recipients: the list is empty"));
    }
    Ok(recipients)
}

fn parse_identities(sources: Vec<KeySource>) -> PyResult<Vec<keys::BoxedIdentity>> {
    let mut identities = Vec::new();
    for source in sources {
        let parsed = match source {
            KeySource::Text(text) if text.trim_start().starts_with("AGE-SECRET-KEY-") => {
                let text = SecretString::from(text);
                keys::parse_identities(text.expose_secret().as_bytes(), "identities=")
            }
            KeySource::Text(path) => keys::read_identity_file(path.as_ref()),
            KeySource::File(path) => keys::read_identity_file(&path),
        };
        identities.extend(parsed.map_err(|e| key_error("identities", e))?);
    }
    if identities.is_empty() {
        return Err(PyValueError::new_err("identities: the list is empty"));
    }
    Ok(identities)
}

/// `age1…` or an SSH public key, rather than a path to a recipients file.
fn looks_like_recipient(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("age1") || text.starts_with("ssh-")
}
