//! [`NativeWriter`] and [`NativeReader`]: a stream writer or reader whose
//! calls block the calling Python thread but release the GIL while they
//! wait or move bytes, so other Python threads (the other end of the
//! stream, a UI, a pandas pipeline) keep running, and Ctrl-C interrupts
//! them.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use zebrastream::client::{StreamReader, StreamWriter, DEFAULT_WRITE_BUFFER_SIZE};

use crate::errors::{io_to_python, to_python};
use crate::settings::{self, Endpoint, KeySource, ResumeTuning};

/// How often a waiting call checks for Python signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The Tokio runtime of one stream (one worker thread that keeps the
/// transfer going between calls: auto-flush timers, the relay's status
/// lines, read-ahead), and how a Python call runs on it.
struct Driver(Runtime);

impl Driver {
    fn new() -> PyResult<Driver> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zebrastream-py")
            .enable_all()
            .build()
            .map(Driver)
            .map_err(|e| PyOSError::new_err(format!("open failed: no runtime: {e}")))
    }

    /// Runs `operation` to its end with the GIL released. While it waits,
    /// Python's signal handlers run every [`SIGNAL_CHECK`]; if one raises
    /// (`KeyboardInterrupt`), the operation is dropped and that exception
    /// returned.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        operation: impl Future<Output = T> + Send,
    ) -> PyResult<T> {
        py.allow_threads(|| {
            self.0.block_on(async {
                tokio::pin!(operation);
                loop {
                    tokio::select! {
                        biased;
                        output = &mut operation => return Ok(output),
                        () = tokio::time::sleep(SIGNAL_CHECK) => {
                            Python::with_gil(|py| py.check_signals())?;
                        }
                    }
                }
            })
        })
    }
}

/// Connects a writer, blocking (with the GIL released) until a reader is there.
#[pyfunction]
#[pyo3(signature = (
    *, stream_path=None, connect_api_url=None, access_token=None, connect_timeout=None,
    content_type=None, auto_flush_delay=None, write_buffer_size=DEFAULT_WRITE_BUFFER_SIZE,
    passphrase=None, encryption_mode=None, recipients=None, ticket=None, forward_secrecy=true,
    resume=None, resume_buffer=None, stall_timeout=None, resume_timeout=None,
))]
#[allow(clippy::too_many_arguments)] // the official client's keyword arguments
pub(crate) fn connect_writer(
    py: Python<'_>,
    stream_path: Option<String>,
    connect_api_url: Option<String>,
    access_token: Option<String>,
    connect_timeout: Option<f64>,
    content_type: Option<String>,
    auto_flush_delay: Option<f64>,
    write_buffer_size: usize,
    passphrase: Option<String>,
    encryption_mode: Option<String>,
    recipients: Option<Vec<KeySource>>,
    ticket: Option<String>,
    forward_secrecy: bool,
    resume: Option<bool>,
    resume_buffer: Option<i64>,
    stall_timeout: Option<f64>,
    resume_timeout: Option<f64>,
) -> PyResult<NativeWriter> {
    let (builder, ticket) = Endpoint {
        stream_path,
        connect_api_url,
        access_token,
        connect_timeout,
        ticket,
        resume,
        tuning: ResumeTuning {
            buffer: resume_buffer,
            stall_timeout,
            resume_timeout,
        },
    }
    .resolve()?;
    let mut builder = builder
        .auto_flush(settings::auto_flush(auto_flush_delay)?)
        .write_buffer_size(write_buffer_size);
    if let Some(content_type) = content_type {
        builder = builder.content_type(content_type);
    }
    let config = settings::build(builder)?;
    let format = settings::format(encryption_mode.as_deref())?;
    let sealing = settings::sealing(
        passphrase,
        recipients,
        ticket.as_ref(),
        forward_secrecy,
        format,
    )?;
    let driver = Driver::new()?;
    let writer = driver
        .run(py, StreamWriter::connect(&config, &sealing))?
        .map_err(|e| to_python("open", e))?;
    Ok(NativeWriter {
        inner: Mutex::new(Some(writer)),
        stream_path: config.stream_path().to_owned(),
        driver,
    })
}

/// Connects a reader, blocking (with the GIL released) until a writer is
/// there and, for an encrypted stream, its header is opened.
#[pyfunction]
#[pyo3(signature = (
    *, stream_path=None, connect_api_url=None, access_token=None, connect_timeout=None,
    passphrase=None, identities=None, ticket=None, forward_secrecy=true, resume=None,
    resume_buffer=None, stall_timeout=None, resume_timeout=None,
))]
#[allow(clippy::too_many_arguments)] // the official client's keyword arguments
pub(crate) fn connect_reader(
    py: Python<'_>,
    stream_path: Option<String>,
    connect_api_url: Option<String>,
    access_token: Option<String>,
    connect_timeout: Option<f64>,
    passphrase: Option<String>,
    identities: Option<Vec<KeySource>>,
    ticket: Option<String>,
    forward_secrecy: bool,
    resume: Option<bool>,
    resume_buffer: Option<i64>,
    stall_timeout: Option<f64>,
    resume_timeout: Option<f64>,
) -> PyResult<NativeReader> {
    let (builder, ticket) = Endpoint {
        stream_path,
        connect_api_url,
        access_token,
        connect_timeout,
        ticket,
        resume,
        tuning: ResumeTuning {
            buffer: resume_buffer,
            stall_timeout,
            resume_timeout,
        },
    }
    .resolve()?;
    let config = settings::build(builder)?;
    let opening = settings::opening(passphrase, identities, ticket.as_ref(), forward_secrecy)?;
    let driver = Driver::new()?;
    let reader = driver
        .run(py, StreamReader::connect(&config, &opening))?
        .map_err(|e| to_python("open", e))?;
    Ok(NativeReader {
        inner: Mutex::new(Some(ReaderState {
            reader,
            scratch: Vec::new(),
        })),
        stream_path: config.stream_path().to_owned(),
        at_eof: Mutex::new(false),
        driver,
    })
}

/// Takes the lock without ever waiting for it: a second thread using the
/// same stream at the same time gets an error instead of a deadlock (the
/// holder may be waiting for the GIL the caller holds).
fn lock<T>(mutex: &Mutex<Option<T>>) -> PyResult<MutexGuard<'_, Option<T>>> {
    match mutex.try_lock() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
            "the stream is in use by another thread (one call at a time)",
        )),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("I/O operation on closed file")
}

/// A stream writer (`zebrastream_rs.Writer` wraps it).
#[pyclass(module = "zebrastream_rs._native")]
pub(crate) struct NativeWriter {
    // Declared before the runtime, so a writer left open is dropped
    // (aborting its upload) while the runtime still runs.
    inner: Mutex<Option<StreamWriter>>,
    stream_path: String,
    driver: Driver,
}

#[pymethods]
impl NativeWriter {
    /// Writes all of `data` (`bytes`; the Python half turns other
    /// bytes-like objects into it: the limited API of Python 3.9 has no
    /// buffer protocol); returns its length.
    fn write(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<usize> {
        let mut guard = lock(&self.inner)?;
        let writer = guard.as_mut().ok_or_else(closed)?;
        self.driver
            .run(py, writer.write_all(bytes))?
            .map_err(|e| io_to_python("write", e))?;
        Ok(bytes.len())
    }

    /// Hands every byte written so far to the connection.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let mut guard = lock(&self.inner)?;
        let writer = guard.as_mut().ok_or_else(closed)?;
        self.driver
            .run(py, writer.flush())?
            .map_err(|e| io_to_python("flush", e))
    }

    /// Ends the stream and waits for the relay's confirmation that the
    /// reader got it (with resume: for the reader's receipt that it
    /// committed it); returns the plaintext byte count.
    fn finish(&self, py: Python<'_>) -> PyResult<u64> {
        let mut writer = lock(&self.inner)?.take().ok_or_else(closed)?;
        // Interrupted, the future and the writer in it are dropped: the
        // upload is aborted, never ended.
        let finished = async move {
            writer.shutdown().await?;
            Ok::<_, std::io::Error>(writer.bytes_written())
        };
        self.driver
            .run(py, finished)?
            .map_err(|e| io_to_python("close", e))
    }

    /// Drops the upload without an end: the reader gets a truncation error
    /// (with resume, it is told at once instead of trying to resume; that
    /// takes a few seconds at most).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(writer) = lock(&self.inner)?.take() {
            self.driver.run(py, writer.abandon())?;
        }
        Ok(())
    }

    /// True once finished or aborted.
    #[getter]
    fn closed(&self) -> PyResult<bool> {
        Ok(lock(&self.inner)?.is_none())
    }

    /// Plaintext bytes written so far (0 once closed).
    #[getter]
    fn bytes_written(&self) -> PyResult<u64> {
        Ok(lock(&self.inner)?.as_ref().map_or(0, |w| w.bytes_written()))
    }

    /// The stream path.
    #[getter]
    fn stream_path(&self) -> &str {
        &self.stream_path
    }
}

/// A stream reader (`zebrastream_rs.Reader` wraps it).
#[pyclass(module = "zebrastream_rs._native")]
pub(crate) struct NativeReader {
    inner: Mutex<Option<ReaderState>>,
    stream_path: String,
    at_eof: Mutex<bool>,
    driver: Driver,
}

/// A reader and the buffer its reads land in before they become `bytes`.
struct ReaderState {
    reader: StreamReader,
    scratch: Vec<u8>,
}

impl NativeReader {
    fn note_eof(&self) {
        *self.at_eof.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }
}

#[pymethods]
impl NativeReader {
    /// Up to `size` bytes (at least one, waiting for them); `b""` at the
    /// verified end. A negative `size` reads to the end.
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&self, py: Python<'py>, size: isize) -> PyResult<Bound<'py, PyBytes>> {
        let mut guard = lock(&self.inner)?;
        let state = guard.as_mut().ok_or_else(closed)?;
        let reader = &mut state.reader;
        let scratch = &mut state.scratch;
        let n = self
            .driver
            .run(py, async {
                if size < 0 {
                    scratch.clear();
                    return reader.read_to_end(scratch).await;
                }
                // The scratch buffer is reused, so a loop of `read(n)` or
                // `readinto` neither allocates nor zeroes per call.
                if scratch.len() < size as usize {
                    scratch.resize(size as usize, 0);
                }
                match size {
                    0 => Ok(0),
                    size => reader.read(&mut scratch[..size as usize]).await,
                }
            })?
            .map_err(|e| io_to_python("read", e))?;
        if size != 0 && (size < 0 || n == 0) {
            self.note_eof();
        }
        let bytes = PyBytes::new(py, &scratch[..n]);
        if size < 0 {
            // The whole stream is in `bytes` now; do not hold a second copy.
            *scratch = Vec::new();
        }
        Ok(bytes)
    }

    /// With resume: sends the writer the receipt (the whole stream was read
    /// and the program is done with it); without resume it does nothing.
    fn confirm(&self, py: Python<'_>) -> PyResult<()> {
        let mut guard = lock(&self.inner)?;
        let state = guard.as_mut().ok_or_else(closed)?;
        self.driver
            .run(py, state.reader.confirm())?
            .map_err(|e| to_python("close", e))
    }

    /// Drops the download (no end-of-stream check). With resume the writer
    /// is told first that the stream will not be committed (waiting a
    /// moment for that message to leave: the runtime ends with the reader).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let state = lock(&self.inner)?.take();
        if let Some(mut state) = state {
            self.driver.run(py, state.reader.abandon())?;
            let _runtime = self.driver.0.enter();
            drop(state);
        }
        Ok(())
    }

    /// True once the reader saw the verified end of the stream.
    #[getter]
    fn at_eof(&self) -> bool {
        *self.at_eof.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once aborted.
    #[getter]
    fn closed(&self) -> PyResult<bool> {
        Ok(lock(&self.inner)?.is_none())
    }

    /// Plaintext bytes read so far (0 once closed).
    #[getter]
    fn bytes_read(&self) -> PyResult<u64> {
        Ok(lock(&self.inner)?
            .as_ref()
            .map_or(0, |s| s.reader.bytes_read()))
    }

    /// The `Content-Type` the writer announced, if any.
    #[getter]
    fn content_type(&self) -> PyResult<Option<String>> {
        Ok(lock(&self.inner)?
            .as_ref()
            .and_then(|s| s.reader.content_type().map(str::to_owned)))
    }

    /// The stream path.
    #[getter]
    fn stream_path(&self) -> &str {
        &self.stream_path
    }
}
