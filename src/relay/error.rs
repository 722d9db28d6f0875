//! Errors that stop a relay from starting.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why [`Relay::bind`](super::Relay::bind) failed: setup problems only.
///
/// Per-request failures (bad token, busy path, timeouts) never surface here:
/// they are HTTP answers to the client concerned (see `docs/relay.md`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound (in use, no permission, …).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate or key file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file was read but holds no usable certificate or private key.
    #[error("TLS file {path} has no {what} in PEM form")]
    TlsMissing {
        /// The file that was read.
        path: PathBuf,
        /// `"certificate"` or `"private key"`.
        what: &'static str,
    },
    /// Only one of the certificate and the key was given.
    #[error("TLS needs both a certificate and a key file; only the {given} was given")]
    TlsIncomplete {
        /// `"certificate"` or `"key"`.
        given: &'static str,
    },
    /// rustls refused the certificate/key pair (e.g. the key does not match).
    #[error("TLS certificate/key rejected: {0}")]
    Tls(#[source] rustls::Error),
    /// The tokens file could not be read.
    #[error("cannot read tokens file {path}: {source}")]
    TokensFile {
        /// The tokens file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The tokens file is not valid TOML/YAML or an entry is malformed.
    #[error("tokens file {path}: {reason}")]
    TokensParse {
        /// The tokens file.
        path: PathBuf,
        /// What is wrong, naming the entry where possible (never the token itself).
        reason: String,
    },
    /// The configuration is inconsistent (e.g. a default wait above the maximum).
    #[error("invalid relay configuration: {0}")]
    Config(String),
}
