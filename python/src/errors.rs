//! The Python exceptions of a failed operation, as the official client's
//! file API raises them (protocol.md §5.4): `TimeoutError` for a peer that
//! never came, `BrokenPipeError` for one that left, `ValueError` for bad
//! settings, `OSError` for the rest; plus two `OSError` subclasses of our
//! own, [`TruncatedError`] and [`DecryptionError`].

use pyo3::create_exception;
use pyo3::exceptions::{PyBrokenPipeError, PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use zebrastream::client::{Error, ResumeError};
use zebrastream::forward_secrecy::ExchangeError;

create_exception!(
    zebrastream_rs,
    TruncatedError,
    PyOSError,
    "The stream ended before its end: the writer aborted, the connection was cut, or the relay \
     dropped the rest. The bytes read so far are incomplete."
);
create_exception!(
    zebrastream_rs,
    DecryptionError,
    PyOSError,
    "The stream could not be decrypted: wrong passphrase or key, tampered or corrupt data, \
     a stream that is not encrypted although a key was given, or an unknown format."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TruncatedError", py.get_type::<TruncatedError>())?;
    m.add("DecryptionError", py.get_type::<DecryptionError>())?;
    Ok(())
}

/// The Python exception for `error` during `operation` (`open`, `write`,
/// `flush`, `read`, `close`); the message starts with "`operation` failed:"
/// as the official client's do.
pub(crate) fn to_python(operation: &str, error: Error) -> PyErr {
    let message = format!("{operation} failed: {error}");
    match error {
        Error::InvalidConfig(_) | Error::Encryption(_) => PyValueError::new_err(message),
        Error::ConnectTimeout(_) | Error::Exchange(ExchangeError::Timeout { .. }) => {
            PyTimeoutError::new_err(message)
        }
        Error::PeerDisconnected => {
            PyBrokenPipeError::new_err(format!("{operation} failed: peer disconnected"))
        }
        // With resume: the reader gave the stream up (it left).
        Error::Resume(ResumeError::GaveUp { .. }) => PyBrokenPipeError::new_err(message),
        Error::Resume(
            ResumeError::NoHandshake(_)
            | ResumeError::NoReceipt(_)
            | ResumeError::ReceiptNotTaken(_)
            | ResumeError::TimedOut { .. },
        ) => PyTimeoutError::new_err(message),
        Error::Truncated | Error::Resume(ResumeError::WriterGaveUp) => {
            TruncatedError::new_err(message)
        }
        Error::Decryption(_) | Error::NotEncrypted | Error::KeyRequired(_) => {
            DecryptionError::new_err(message)
        }
        _ => PyOSError::new_err(message),
    }
}

/// The Python exception for an `io::Error` a stream returned.
pub(crate) fn io_to_python(operation: &str, error: std::io::Error) -> PyErr {
    to_python(operation, Error::from(error))
}
