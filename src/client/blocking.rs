//! Blocking wrappers: [`Writer`] (`std::io::Write`) and [`Reader`]
//! (`std::io::Read`) for code without an async runtime.
//!
//! Each wrapper owns a small Tokio runtime (one worker thread) that keeps the
//! transfer going between calls (auto-flush timers, status lines). Do not use
//! them from inside an async runtime; use [`StreamWriter`]/[`StreamReader`]
//! there.

use std::io::{self, Read, Write};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use super::{Config, Error, Opening, Sealing, StreamReader, StreamWriter, TransferReport};

fn runtime() -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("zebrastream-io")
        .enable_all()
        .build()
        .map_err(Error::Io)
}

/// A blocking [`StreamWriter`]. Call [`Writer::finish`] at the end: dropping
/// the writer without it aborts the upload.
///
/// ```no_run
/// use std::io::Write;
/// use zebrastream::client::{blocking, Config, Sealing, SecretString};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .build()?;
/// let sealing = Sealing::passphrase(SecretString::from("correct horse battery staple"));
/// let mut writer = blocking::Writer::connect(&config, &sealing)?;
/// writer.write_all(b"hello\n")?;
/// let report = writer.finish()?; // the relay confirmed the transfer
/// assert_eq!(report.bytes, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Writer {
    // Declared before the runtime so it is dropped (aborting the upload) first.
    inner: StreamWriter,
    started: Instant,
    runtime: Runtime,
}

impl Writer {
    /// Connects like [`StreamWriter::connect`], blocking until paired.
    pub fn connect(config: &Config, sealing: &Sealing) -> Result<Writer, Error> {
        let runtime = runtime()?;
        let inner = runtime.block_on(StreamWriter::connect(config, sealing))?;
        Ok(Writer {
            inner,
            started: Instant::now(),
            runtime,
        })
    }

    /// Finishes the stream and waits for the relay's confirmation.
    pub fn finish(mut self) -> Result<TransferReport, Error> {
        let inner = &mut self.inner;
        self.runtime
            .block_on(inner.shutdown())
            .map_err(Error::from_io_error)?;
        Ok(TransferReport {
            bytes: self.inner.bytes_written(),
            duration: self.started.elapsed(),
        })
    }

    /// Plaintext bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        self.runtime.block_on(inner.write(buf))
    }

    /// Returns once every byte written so far was handed to the connection
    /// (see [`StreamWriter`]).
    fn flush(&mut self) -> io::Result<()> {
        let inner = &mut self.inner;
        self.runtime.block_on(inner.flush())
    }
}

/// A blocking [`StreamReader`]: `read` returns `Ok(0)` only at the verified
/// end of the stream.
///
/// ```no_run
/// use std::io::Read;
/// use zebrastream::client::{blocking, Config, Opening, SecretString};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .build()?;
/// let opening = Opening::passphrase(SecretString::from("correct horse battery staple"));
/// let mut reader = blocking::Reader::connect(&config, &opening)?;
/// let mut data = Vec::new();
/// reader.read_to_end(&mut data)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Reader {
    inner: StreamReader,
    runtime: Runtime,
}

impl Reader {
    /// Connects like [`StreamReader::connect`], blocking until paired.
    pub fn connect(config: &Config, opening: &Opening) -> Result<Reader, Error> {
        let runtime = runtime()?;
        let inner = runtime.block_on(StreamReader::connect(config, opening))?;
        Ok(Reader { inner, runtime })
    }

    /// The `Content-Type` the producer announced, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.inner.content_type()
    }

    /// Plaintext bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }

    /// With resume on, sends the receipt once the whole stream was read and
    /// committed, like [`StreamReader::confirm`]; without resume it does
    /// nothing.
    pub fn confirm(&mut self) -> Result<(), Error> {
        let inner = &mut self.inner;
        self.runtime.block_on(inner.confirm())
    }

    /// With resume on, tells the writer the stream will not be committed,
    /// like [`StreamReader::abandon`]; without resume it does nothing.
    pub fn abandon(&mut self) {
        let inner = &mut self.inner;
        self.runtime.block_on(inner.abandon());
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        self.runtime.block_on(inner.read(buf))
    }
}
