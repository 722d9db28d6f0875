//! [`StreamReader`]: the consumer end, a `tokio::io::AsyncRead`.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::resume::consumer::{reconnect_first_leg, ResumingReader};
use super::{exchange, Config, Error, Opening, ResumeError};
use crate::cipher::{DecryptingReader, Format};
use crate::protocol::ConnectMode;

/// The transport the reader reads from: the download body or a cipher over
/// it, or (resume on) a cipher over the legs of the stream.
enum Transport {
    Single(Pin<Box<dyn AsyncRead + Send>>),
    Resuming(Pin<Box<ResumingReader>>),
}

impl Transport {
    fn as_read(&mut self) -> Pin<&mut (dyn AsyncRead + Send)> {
        match self {
            Transport::Single(reader) => reader.as_mut(),
            Transport::Resuming(reader) => reader.as_mut(),
        }
    }
}

/// The consumer end of a stream: an [`AsyncRead`] over the bytes the producer
/// writes.
///
/// EOF (`Ok` with nothing read) comes only after the clean end of the HTTP
/// body (plaintext) or the final authenticated chunk (encrypted; the format,
/// age-rt or age v1, is detected). A stream that breaks off reads as an error
/// carrying [`Error::Truncated`] (get it with [`Error::from_io`]); a wrong key
/// or tampered data is [`Error::Decryption`]. It never looks like a short
/// success. The network is
/// read only as fast as the application reads (backpressure reaches the
/// producer through the relay).
///
/// ```no_run
/// # async fn demo() -> Result<(), zebrastream::client::Error> {
/// use tokio::io::AsyncReadExt;
/// use zebrastream::client::{Config, Opening, SecretString, StreamReader};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .build()?;
/// let opening = Opening::passphrase(SecretString::from("correct horse battery staple"));
/// let mut reader = StreamReader::connect(&config, &opening).await?;
/// let mut text = String::new();
/// reader.read_to_string(&mut text).await?;
/// # Ok(()) }
/// ```
pub struct StreamReader {
    transport: Transport,
    /// The passphrase header is not parsed yet: its scrypt work (about half a
    /// second) runs in the next reads, off the async worker if possible.
    header_pending: bool,
    content_type: Option<String>,
    bytes: u64,
    failed: bool,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// Waits for a producer through the Connect API (`mode=await-writer`),
    /// then starts the download, opened as `opening` says. Returns once the
    /// relay sent the response head. With [`Opening::Fresh`] the
    /// forward-secrecy exchange runs first ([`Error::Exchange`] if it
    /// fails); with [`Opening::Detect`] the stream's first bytes are read
    /// and it is refused with [`Error::NotEncrypted`] or
    /// [`Error::KeyRequired`].
    pub async fn connect(config: &Config, opening: &Opening) -> Result<StreamReader, Error> {
        let exchanged;
        let opening = match opening {
            Opening::Fresh(exchange) => {
                exchanged = exchange::open(exchange, config).await?;
                &exchanged
            }
            other => other,
        };
        let api = config.api_client();
        let decryptor = match opening {
            Opening::Detect => None,
            other => other.decryptor()?,
        };
        if config.resume.is_some() && decryptor.is_none() {
            return Err(Error::Resume(ResumeError::NeedsEncryption));
        }
        let header_pending = matches!(opening, Opening::Passphrase { .. });
        // With resume, a first leg that breaks before it starts (the
        // Connect answer cut off, or an upload that never reached the relay)
        // starts over, as the writer's does.
        let connected = api
            .connect(
                &config.stream_path,
                ConnectMode::AwaitWriter,
                config.connect_timeout,
            )
            .await;
        // (the error, and whether the relay had paired us with a writer)
        let downloaded = match connected {
            Ok(data_url) => api.download(&data_url).await.map_err(|e| (e, true)),
            Err(error) => Err((error, false)),
        };
        let mut download = match downloaded {
            Ok(download) => download,
            Err((error, paired))
                if config.resume.is_some()
                    && (super::resume::cut_off_answer(&error)
                        || (paired && error.is_retryable())) =>
            {
                // The resume timeout counts from the break, not from the
                // start of the wait for the writer.
                let deadline = tokio::time::Instant::now()
                    + config
                        .resume
                        .map(|r| r.resume_timeout())
                        .unwrap_or_default();
                reconnect_first_leg(config.clone(), deadline, error.to_string()).await?
            }
            Err((error, _)) => return Err(error.into()),
        };
        if matches!(opening, Opening::Detect) {
            return Err(match sniff_format(&mut download).await? {
                None => Error::NotEncrypted,
                Some(format) => Error::KeyRequired(format),
            });
        }
        let content_type = download.content_type().map(str::to_owned);
        let transport = match (decryptor, config.resume) {
            (None, _) => Transport::Single(Box::pin(download)),
            (Some(decryptor), None) => {
                Transport::Single(Box::pin(DecryptingReader::new(download, decryptor)))
            }
            (Some(decryptor), Some(resume)) => Transport::Resuming(Box::pin(ResumingReader::new(
                config, resume, opening, decryptor, download,
            ))),
        };
        Ok(StreamReader {
            transport,
            header_pending,
            content_type,
            bytes: 0,
            failed: false,
        })
    }

    /// The `Content-Type` the producer announced, if the relay forwarded one.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Plaintext bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// With resume on: sends the writer the receipt that the whole stream
    /// arrived and was committed, which the writer's `shutdown` waits for.
    /// Call it after reading to the end *and* committing the output (the
    /// file renamed into place, the database transaction committed): a
    /// writer reports success only then. Retried until the writer takes it
    /// or the resume timeout ends ([`ResumeError::ReceiptNotTaken`]).
    /// Until then the reader keeps telling the writer it is alive, so the
    /// writer waits however long the commit takes: call
    /// [`abandon`](Self::abandon) or drop the reader if the commit failed.
    /// Without resume it does nothing.
    ///
    /// ```no_run
    /// # async fn demo(config: zebrastream::client::Config, opening: zebrastream::client::Opening) -> Result<(), zebrastream::client::Error> {
    /// use tokio::io::AsyncReadExt;
    /// use zebrastream::client::StreamReader;
    ///
    /// let mut reader = StreamReader::connect(&config, &opening).await?;
    /// let mut rows = Vec::new();
    /// reader.read_to_end(&mut rows).await?;
    /// // ... store `rows` durably, then:
    /// reader.confirm().await?;
    /// # Ok(()) }
    /// ```
    pub async fn confirm(&mut self) -> Result<(), Error> {
        match &mut self.transport {
            Transport::Single(_) => Ok(()),
            Transport::Resuming(reader) => reader.as_mut().get_mut().confirm().await,
        }
    }

    /// With resume on: tells the writer that this stream will not be
    /// committed (the output failed, or the stream could not be read), so
    /// its `shutdown` fails at once with
    /// [`ResumeError::GaveUp`](super::ResumeError::GaveUp) instead of
    /// waiting out the resume timeout for a receipt. Dropping the reader
    /// before [`confirm`](Self::confirm) does the same in the background.
    /// Without resume it does nothing.
    ///
    /// ```no_run
    /// # async fn demo(config: zebrastream::client::Config, opening: zebrastream::client::Opening) -> Result<(), zebrastream::client::Error> {
    /// use tokio::io::AsyncReadExt;
    /// use zebrastream::client::StreamReader;
    ///
    /// let mut reader = StreamReader::connect(&config, &opening).await?;
    /// let mut rows = Vec::new();
    /// reader.read_to_end(&mut rows).await?;
    /// if std::fs::write("rows.csv", &rows).is_err() {
    ///     reader.abandon().await;
    /// } else {
    ///     reader.confirm().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn abandon(&mut self) {
        if let Transport::Resuming(reader) = &mut self.transport {
            reader.as_mut().get_mut().abandon().await;
        }
    }

    /// How many times the stream resumed after a broken connection (0
    /// without resume).
    pub fn resumes(&self) -> u32 {
        match &self.transport {
            Transport::Single(_) => 0,
            Transport::Resuming(reader) => reader.resumes(),
        }
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(Error::Closed.into()));
        }
        let before = buf.filled().len();
        let result = // `block_in_place` is allowed on a multi-thread runtime only.
        if self.header_pending && crate::api::on_multi_thread_runtime() {
            // Moves this worker's other tasks elsewhere while scrypt runs.
            tokio::task::block_in_place(|| self.transport.as_read().poll_read(cx, buf))
        } else {
            self.transport.as_read().poll_read(cx, buf)
        };
        // The first completed read is past the header (or failed on it).
        self.header_pending &= result.is_pending();
        match ready!(result) {
            Ok(()) => {
                self.bytes += (buf.filled().len() - before) as u64;
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                self.failed = true;
                tracing::debug!(error = ?e, bytes = self.bytes, "stream read failed");
                Poll::Ready(Err(Error::from_io_error(e).into()))
            }
        }
    }
}

/// Reads just enough of `reader` to tell whether the stream starts with an
/// age-rt or age v1 header line, and returns the format found (`None`: not
/// an age stream). Stops at the first byte that rules both out.
async fn sniff_format<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Format>> {
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
        if !lines.iter().any(|(_, l)| l.starts_with(&head)) {
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
