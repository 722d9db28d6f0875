//! Exit codes and the one-line failure every subcommand reports.

use std::fmt;
use std::process::ExitCode;

/// What a failed command exits with. The numbers are part of the CLI contract
/// (documented in the README and `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 1: any failure not listed below.
    Other = 1,
    /// 2: bad flags, config or arguments.
    Usage = 2,
    /// 3: missing, wrong or expired access token.
    Auth = 3,
    /// 4: the peer did not show up within the connect timeout.
    ConnectTimeout = 4,
    /// 5: the peer went away during the transfer.
    PeerDisconnected = 5,
    /// 6: the producer command (`write -- CMD`) failed.
    ProducerFailed = 6,
    /// 7: the consumer command (`read -- CMD`) failed.
    ConsumerFailed = 7,
    /// 8: decryption failed: wrong key or passphrase, or tampered data.
    Decryption = 8,
    /// 9: the stream ended before its authenticated end.
    Truncated = 9,
    /// 130 (128 + SIGINT): stopped by Ctrl-C, after the cleanup; the shell
    /// convention, so `for` loops and `make` stop too.
    Interrupted = 130,
    /// 143 (128 + SIGTERM): stopped by SIGTERM, after the cleanup.
    Terminated = 143,
}

/// A command failure: an exit kind and one line for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The exit code to return.
    pub kind: ExitKind,
    /// One line that names the problem and, where possible, what to do.
    pub message: String,
}

impl Failure {
    /// A failure of the given kind.
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Usage, message)
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Result type of every subcommand.
pub type CmdResult = Result<(), Failure>;
