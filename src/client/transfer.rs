//! One-call helpers: [`push`] a source into a stream, [`pull`] a stream into
//! a destination, and their file variants.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Config, Error, Opening, Sealing, StreamReader, StreamWriter};

/// The size of the copy buffer (one full age-rt chunk).
const COPY_BUFFER: usize = 64 * 1024;

/// What a completed transfer moved.
///
/// ```
/// use std::time::Duration;
/// use zebrastream::client::TransferReport;
///
/// let report = TransferReport { bytes: 1 << 20, duration: Duration::from_millis(500) };
/// assert_eq!(report.bytes_per_second(), 2.0 * 1024.0 * 1024.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferReport {
    /// Plaintext bytes transferred.
    pub bytes: u64,
    /// Time from pairing with the peer to the confirmed end of the transfer.
    pub duration: Duration,
}

impl TransferReport {
    /// Average throughput in bytes per second (0 for an instant transfer).
    pub fn bytes_per_second(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        }
    }
}

/// Streams everything `source` yields to the consumer and waits for the
/// relay's confirmation.
///
/// If `source` fails, the upload is aborted (the consumer sees an error) and
/// the source's error is returned as [`Error::Io`].
///
/// ```no_run
/// # async fn demo() -> Result<(), zebrastream::client::Error> {
/// use zebrastream::client::{push, Config, Sealing, SecretString};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .build()?;
/// let sealing = Sealing::passphrase(SecretString::from("correct horse battery staple"));
/// let report = push(&config, &sealing, &b"hello"[..]).await?;
/// assert_eq!(report.bytes, 5);
/// # Ok(()) }
/// ```
pub async fn push<R>(
    config: &Config,
    sealing: &Sealing,
    mut source: R,
) -> Result<TransferReport, Error>
where
    R: AsyncRead + Unpin,
{
    let mut writer = StreamWriter::connect(config, sealing).await?;
    let started = Instant::now();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match source.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                // The source failed: the consumer must get an error, not a short stream.
                writer.abort();
                return Err(Error::Io(e));
            }
        };
        if n == 0 {
            break;
        }
        writer
            .write_all(&buf[..n])
            .await
            .map_err(Error::from_io_error)?;
    }
    writer.shutdown().await.map_err(Error::from_io_error)?;
    Ok(TransferReport {
        bytes: writer.bytes_written(),
        duration: started.elapsed(),
    })
}

/// Reads the whole stream into `destination` (flushed at the end).
///
/// On error, `destination` holds an incomplete prefix of the stream: callers
/// writing to a file should use [`pull_file`], which only keeps complete streams.
/// With resume on, the receipt goes to the writer once `destination` is
/// flushed ([`StreamReader::confirm`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), zebrastream::client::Error> {
/// use zebrastream::client::{pull, Config, Opening, SecretString};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .build()?;
/// let opening = Opening::passphrase(SecretString::from("correct horse battery staple"));
/// let mut out = Vec::new();
/// let report = pull(&config, &opening, &mut out).await?;
/// assert_eq!(report.bytes, out.len() as u64);
/// # Ok(()) }
/// ```
pub async fn pull<W>(
    config: &Config,
    opening: &Opening,
    destination: W,
) -> Result<TransferReport, Error>
where
    W: AsyncWrite + Unpin,
{
    let (mut reader, report) = pull_unconfirmed(config, opening, destination).await?;
    reader.confirm().await?;
    Ok(report)
}

/// [`pull`] without the receipt: the caller commits, then confirms.
async fn pull_unconfirmed<W>(
    config: &Config,
    opening: &Opening,
    mut destination: W,
) -> Result<(StreamReader, TransferReport), Error>
where
    W: AsyncWrite + Unpin,
{
    let mut reader = StreamReader::connect(config, opening).await?;
    let started = Instant::now();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = reader.read(&mut buf).await.map_err(Error::from_io_error)?;
        if n == 0 {
            break;
        }
        destination.write_all(&buf[..n]).await.map_err(Error::Io)?;
    }
    destination.flush().await.map_err(Error::Io)?;
    let report = TransferReport {
        bytes: reader.bytes_read(),
        duration: started.elapsed(),
    };
    Ok((reader, report))
}

/// [`push`] with the contents of the file at `path`.
pub async fn push_file(
    config: &Config,
    sealing: &Sealing,
    path: impl AsRef<Path>,
) -> Result<TransferReport, Error> {
    let file = tokio::fs::File::open(path).await.map_err(Error::Io)?;
    push(config, sealing, file).await
}

/// [`pull`] into the file at `path`. The stream is written to a temporary
/// file in the same directory, which replaces `path` only when the whole
/// stream arrived; on error `path` is left untouched. With resume on, the
/// receipt goes to the writer after the file is synced and in place.
pub async fn pull_file(
    config: &Config,
    opening: &Opening,
    path: impl AsRef<Path>,
) -> Result<TransferReport, Error> {
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::NamedTempFile::new_in(dir).map_err(Error::Io)?;
    let std_file = temp.as_file().try_clone().map_err(Error::Io)?;
    let mut file = tokio::fs::File::from_std(std_file);
    let (mut reader, report) = pull_unconfirmed(config, opening, &mut file).await?;
    file.sync_all().await.map_err(Error::Io)?;
    drop(file);
    temp.persist(path).map_err(|e| Error::Io(e.error))?;
    reader.confirm().await?;
    Ok(report)
}
