//! Resume: a broken connection costs seconds, not the transfer, and a
//! writer's success means the reader has it all.
//!
//! Turned on with [`ConfigBuilder::resume`](super::ConfigBuilder::resume) on
//! **both** sides (with resume off, a stream is byte for byte what it is
//! without this module, so the official Python client never sees resume
//! traffic). docs/resume.md is the specification; in short:
//!
//! - The reader decides when to resume: when its connection fails, ends
//!   before the final chunk, or delivers nothing for the stall timeout, it
//!   asks the writer (an authenticated `RESUME` message on a side path) to
//!   start a new *leg* at the first chunk it has not authenticated, on a
//!   path of the leg's own that only the two ends can derive.
//! - The writer keeps the last sealed chunks exactly as they went on the
//!   wire (the replay buffer) and re-sends them: nothing is sealed twice.
//!   The reader's decryptor keeps its chunk counter across legs, so a relay
//!   that resumes at a wrong offset, drops, repeats or splices chunks causes
//!   an authentication failure, never a gap or a duplicate.
//! - The writer's `shutdown` succeeds only on the reader's authenticated
//!   receipt ([`StreamReader::confirm`](super::StreamReader::confirm)), sent
//!   after the reader committed its output.
//! - Every message is authenticated with a key derived from the stream's
//!   file key and payload nonce, so resume needs encryption and works with
//!   every key type.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zebrastream::client::Error> {
//! use std::time::Duration;
//! use tokio::io::AsyncWriteExt;
//! use zebrastream::client::{Config, Resume, Sealing, SecretString, StreamWriter};
//!
//! let config = Config::builder("/hospital/trial-42")
//!     .resume(Resume::default().with_buffer(64 << 20).with_stall_timeout(Duration::from_secs(10)))
//!     .build()?;
//! let sealing = Sealing::passphrase(SecretString::from("correct horse battery staple"));
//! let mut writer = StreamWriter::connect(&config, &sealing).await?;
//! writer.write_all(b"rows...").await?;
//! writer.shutdown().await?; // the reader's receipt arrived: it has it all
//! # Ok(()) }
//! ```

use std::time::Duration;

pub(super) mod consumer;
mod control;
pub(super) mod producer;
mod replay;

/// The default replay buffer: 16 MiB of sealed chunks.
pub const DEFAULT_RESUME_BUFFER: usize = 16 * 1024 * 1024;
/// The smallest replay buffer [`ConfigBuilder::build`](super::ConfigBuilder::build)
/// accepts: one chunk of data (a writer with less could not hold the chunk
/// it is sending).
pub const MIN_RESUME_BUFFER: usize = 64 * 1024;
/// The default stall timeout: a reader that received nothing for 15 s
/// resumes (TCP can outlive a 10 s link-down without any error).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The default resume timeout: a resume (or the reader's receipt) must
/// arrive within 60 s.
pub const DEFAULT_RESUME_TIMEOUT: Duration = Duration::from_secs(60);

/// The resume settings of a [`Config`](super::Config): see the
/// [module documentation](self).
///
/// ```
/// use std::time::Duration;
/// use zebrastream::client::Resume;
///
/// let resume = Resume::default().with_buffer(32 << 20).with_resume_timeout(Duration::from_secs(120));
/// assert_eq!(resume.buffer_size(), 32 << 20);
/// assert_eq!(resume.stall_timeout(), Duration::from_secs(15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    buffer: usize,
    stall_timeout: Duration,
    resume_timeout: Duration,
}

impl Default for Resume {
    fn default() -> Self {
        Resume {
            buffer: DEFAULT_RESUME_BUFFER,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            resume_timeout: DEFAULT_RESUME_TIMEOUT,
        }
    }
}

impl Resume {
    /// The writer's replay buffer in bytes of sealed chunks (default
    /// [`DEFAULT_RESUME_BUFFER`]): how far behind a reader may be and still
    /// resume. The writer's memory grows by up to this much.
    pub fn with_buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }

    /// How long a reader waits for the next byte before it resumes (default
    /// [`DEFAULT_STALL_TIMEOUT`]). A writer that is merely idle that long
    /// costs one reconnect, not the transfer.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// How long a resume may take, and how long a writer waits for the
    /// reader's handshake, and for its receipt after the end of the stream
    /// or the reader's last sign of life (a reader that commits its output
    /// slowly keeps the writer waiting for as long as it lives) (default
    /// [`DEFAULT_RESUME_TIMEOUT`]).
    pub fn with_resume_timeout(mut self, timeout: Duration) -> Self {
        self.resume_timeout = timeout;
        self
    }

    /// The replay buffer size in bytes.
    pub fn buffer_size(&self) -> usize {
        self.buffer
    }

    /// The stall timeout.
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// The resume timeout.
    pub fn resume_timeout(&self) -> Duration {
        self.resume_timeout
    }

    /// What [`ConfigBuilder::build`](super::ConfigBuilder::build) rejects:
    /// a buffer below [`MIN_RESUME_BUFFER`], a zero timeout (a reader that
    /// resumes whenever no byte is waiting; a resume that must be done
    /// before it starts).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.buffer < MIN_RESUME_BUFFER {
            return Err(format!(
                "the resume buffer ({} bytes) must hold at least one chunk ({MIN_RESUME_BUFFER} bytes)",
                self.buffer
            ));
        }
        for (name, timeout) in [
            ("stall", self.stall_timeout),
            ("resume", self.resume_timeout),
        ] {
            if timeout.is_zero() {
                return Err(format!("the {name} timeout must be longer than zero"));
            }
        }
        Ok(())
    }
}

/// Why a stream with resume on failed (inside
/// [`Error::Resume`](super::Error::Resume)). With resume on, a missing
/// handshake, answer or receipt is always a failure, never a fallback to a
/// transfer without resume: a relay could strip them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// Resume was asked for a plaintext stream: it authenticates every step
    /// with the stream's keys.
    #[error("resume needs an encrypted stream (a passphrase, recipients or a ticket)")]
    NeedsEncryption,
    /// The writer got no handshake from the reader.
    #[error(
        "the reader did not answer the resume handshake within {0:?} (is it running with resume on?)"
    )]
    NoHandshake(Duration),
    /// The writer sent everything but got no receipt from the reader (and
    /// heard nothing from it for the resume timeout): it cannot tell
    /// whether the reader committed the stream.
    #[error(
        "no receipt from the reader within {0:?} after the end of the stream or its last sign of life: it may not have committed it"
    )]
    NoReceipt(Duration),
    /// The reader's receipt found no writer to take it.
    #[error(
        "the writer did not take the receipt within {0:?} (is it running with resume on?); the stream itself arrived complete"
    )]
    ReceiptNotTaken(Duration),
    /// The reader gave the stream up and will send no receipt: it could
    /// not commit its output (`output`), or not read the stream.
    #[error("{}", if *output {
        "the reader gave the stream up: it arrived, but the reader's output failed (its consumer command or file); nothing was committed"
    } else {
        "the reader gave the stream up: it could not read it (see the reader's error)"
    })]
    GaveUp {
        /// The stream arrived but the output failed.
        output: bool,
    },
    /// The writer gave the stream up on purpose (its input failed) and told
    /// the reader instead of resuming: what arrived is incomplete.
    #[error("the writer gave the stream up (its input failed): the stream is incomplete")]
    WriterGaveUp,
    /// The reader needs chunks the writer no longer holds.
    #[error("cannot resume: {behind} bytes behind, the buffer holds {held}")]
    Behind {
        /// Plaintext bytes the reader is behind the writer.
        behind: u64,
        /// Bytes the writer's replay buffer holds.
        held: u64,
    },
    /// No resume succeeded in time.
    #[error("could not resume within {after:?}: {cause}")]
    TimedOut {
        /// The resume timeout.
        after: Duration,
        /// What broke the connection, and the last error while resuming.
        cause: String,
    },
    /// A control message did not authenticate or did not fit the stream
    /// (forged, replayed from another leg or stream, or a leg that does not
    /// start where asked).
    #[error("a resume message was refused: {0}")]
    Refused(String),
}

/// Whether `error` is an answer of the relay cut off on its way (a
/// transport error after the relay was reached), after which a first leg
/// starts over rather than fails.
pub(crate) fn cut_off_answer(error: &crate::api::Error) -> bool {
    matches!(error, crate::api::Error::Network { .. }) && !error.is_unreachable()
}

/// One attempt of a resume step on `path`: `step` within [`ATTEMPT`] plus
/// [`ATTEMPT_MARGIN`]. `None` when it failed: at once after a timeout (the
/// peer was not there yet, or the connection died with the link), after
/// [`RETRY_PAUSE`] after another error (the relay restarting).
async fn attempt<T>(
    path: &str,
    step: impl std::future::Future<Output = Result<T, super::Error>>,
) -> Option<T> {
    match tokio::time::timeout(ATTEMPT + ATTEMPT_MARGIN, step).await {
        Ok(Ok(value)) => Some(value),
        Err(_) => None,
        Ok(Err(error)) => {
            tracing::debug!("{path}: {error}");
            pause_after(&error).await;
            None
        }
    }
}

/// After a failed attempt: on at once after a timeout (the peer was not
/// there yet), after [`RETRY_PAUSE`] after another error (the relay
/// restarting).
async fn pause_after(error: &super::Error) {
    if !matches!(error, super::Error::ConnectTimeout(_)) {
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Sends `message` on the side path `path` until the peer took it (the
/// relay confirmed it) or `deadline` passed; each attempt waits up to
/// [`ATTEMPT`] for the peer, and a deadline already passed means one attempt.
async fn send_until(
    data: &super::Config,
    path: String,
    message: &[u8],
    deadline: tokio::time::Instant,
) -> Result<(), super::Error> {
    let mut config = super::side_channel::side_config(data, path)?;
    config.connect_timeout = Some(ATTEMPT);
    loop {
        let attempt = tokio::time::timeout(
            ATTEMPT + ATTEMPT_MARGIN,
            super::side_channel::send(&config, message),
        )
        .await;
        let error = match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => super::Error::ConnectTimeout(ATTEMPT),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(error);
        }
        if !matches!(error, super::Error::ConnectTimeout(_)) {
            tracing::debug!("{}: {error}", config.stream_path());
        }
        pause_after(&error).await;
    }
}

/// `bytes` for a log line: `12.0 MiB`, `1.20 GiB`.
fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB * KIB {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Pause between attempts after a connection error (the relay restarting).
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long one attempt of a resume step waits (a Connect call, a message):
/// short, so a connection that died with the link (a TCP handshake in its
/// SYN back-off, a request on a connection whose retransmissions back off)
/// is given up quickly and a fresh one tried once the link is back.
const ATTEMPT: Duration = Duration::from_secs(2);
/// The least time between two acknowledgements of one leg (the reader
/// acknowledges each chunk it authenticated, the newest only).
const ACK_PAUSE: Duration = Duration::from_millis(2);
/// What an attempt may take beyond [`ATTEMPT`] (the relay's own answer to
/// a Connect call that timed out) before it is abandoned.
const ATTEMPT_MARGIN: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(super::human_size(512), "512 B");
        assert_eq!(super::human_size(12 << 20), "12.0 MiB");
        assert_eq!(super::human_size(1288490189), "1.20 GiB");
    }
}
