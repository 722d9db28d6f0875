//! Thin I/O adapters over the sans-IO [`Encryptor`] and [`Decryptor`]:
//! [`EncryptingWriter`] and [`DecryptingReader`] implement the `std::io`
//! traits (module `blocking`) and, with the `tokio` feature, the `tokio::io`
//! traits (module `tokio_io`). Errors are [`io::Error`]s wrapping the typed
//! [`cipher::Error`](super::Error); get it back with
//! [`Error::from_io`](super::Error::from_io).

use std::io;

use super::{Decryptor, Encryptor};

mod blocking;
#[cfg(feature = "tokio")]
mod tokio_io;

/// Encrypts everything written to it into `inner`.
///
/// - `flush` makes every byte written so far decryptable by the reader at
///   once (age-rt seals a partial chunk; age v1 only flushes `inner`).
/// - `shutdown` (tokio) or [`finish`](EncryptingWriter::finish) (std) writes
///   the final chunk. Dropping the writer without it leaves a truncated
///   stream that every reader rejects.
///
/// At most one 64 KiB chunk is buffered.
#[derive(Debug)]
pub struct EncryptingWriter<W> {
    inner: W,
    enc: Encryptor,
}

impl<W> EncryptingWriter<W> {
    /// Wraps `inner`; the header is written with the first write or flush.
    pub fn new(inner: W, enc: Encryptor) -> Self {
        EncryptingWriter { inner, enc }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The wrapped writer, mutably (writing to it directly corrupts the stream).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Unwraps the writer without finishing the stream.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Decrypts everything read from `inner`.
///
/// Returns plaintext only after its chunk authenticated, and reports EOF
/// only after the final chunk AND the end of `inner` (any byte after the
/// final chunk is an error). A stream that ends early fails with
/// [`io::ErrorKind::UnexpectedEof`] wrapping
/// [`Error::Truncated`](super::Error::Truncated); authentication and format
/// errors are [`io::ErrorKind::InvalidData`].
///
/// ```
/// use std::io::{Read, Write};
/// use zebrastream::cipher::{DecryptingReader, Decryptor, EncryptingWriter, Encryptor, Format};
/// # fn main() -> std::io::Result<()> {
/// let id = age::x25519::Identity::generate();
/// let enc = Encryptor::with_recipients(Format::AgeRt, vec![Box::new(id.to_public())])?;
/// let mut w = EncryptingWriter::new(Vec::new(), enc);
/// w.write_all(b"hello world")?;
/// let wire = w.finish()?;
///
/// let dec = Decryptor::with_identities(vec![Box::new(id)]);
/// let mut plain = String::new();
/// DecryptingReader::new(&wire[..], dec).read_to_string(&mut plain)?;
/// assert_eq!(plain, "hello world");
///
/// // Cut off the final chunk: the reader reports truncation, typed.
/// let dec = Decryptor::with_identities(vec![Box::new(age::x25519::Identity::generate())]);
/// let err = DecryptingReader::new(&wire[..10], dec).read_to_end(&mut Vec::new()).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DecryptingReader<R> {
    inner: R,
    dec: Decryptor,
    inner_eof: bool,
}

impl<R> DecryptingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, dec: Decryptor) -> Self {
        DecryptingReader {
            inner,
            dec,
            inner_eof: false,
        }
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The decryptor (e.g. to see the detected [`Format`](super::Format)).
    pub fn decryptor(&self) -> &Decryptor {
        &self.dec
    }

    /// Unwraps the reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// One step that needs no input: hands out plaintext, or at the end of
    /// `inner` finishes the decryptor. `Some(n)` is a complete read result
    /// (0 = EOF); `None` means input is needed.
    fn step_without_input(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        // Process bytes already buffered (several small chunks may arrive in one read).
        self.dec.commit_input(0)?;
        loop {
            if !self.dec.plaintext().is_empty() {
                return Ok(Some(self.dec.read_plaintext(out)));
            }
            if !self.inner_eof {
                return Ok(None);
            }
            self.dec.finish()?;
            if self.dec.plaintext().is_empty() {
                // finish succeeded with nothing left: the final chunk was seen.
                return Ok(Some(0));
            }
        }
    }

    /// Accounts for `n` bytes read from `inner` into the input buffer.
    fn commit(&mut self, n: usize) -> io::Result<()> {
        if n == 0 {
            self.inner_eof = true;
            return Ok(());
        }
        self.dec.commit_input(n)?;
        Ok(())
    }
}

/// The decryptor's input buffer, never empty while input is needed.
fn input_buffer(dec: &mut Decryptor) -> io::Result<&mut [u8]> {
    let buf = dec.input_buffer();
    if buf.is_empty() {
        // Unreachable when `step_without_input` ran first; never spin.
        return Err(io::Error::other("decryptor made no progress"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "tokio")]
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::cipher::{Error, Format};

    fn pair(format: Format) -> (Encryptor, Decryptor) {
        let id = age::x25519::Identity::generate();
        let enc = Encryptor::with_recipients(format, vec![Box::new(id.to_public())]).unwrap();
        (enc, Decryptor::with_identities(vec![Box::new(id)]))
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn poll_flush_makes_bytes_readable_before_shutdown() {
        let (enc, dec) = pair(Format::AgeRt);
        // A small pipe: backpressure between writer and reader.
        let (a, b) = tokio::io::duplex(1024);
        let mut writer = EncryptingWriter::new(a, enc);
        let mut reader = DecryptingReader::new(b, dec);
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let reading = tokio::spawn(async move {
            let mut first = [0u8; 5];
            reader.read_exact(&mut first).await.unwrap();
            first_tx.send(first).unwrap();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).await.unwrap();
            rest
        });
        writer.write_all(b"hello").await.unwrap();
        writer.flush().await.unwrap();
        // The reader gets "hello" while the stream is still open.
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), first_rx)
            .await
            .expect("flushed bytes did not reach the reader")
            .unwrap();
        writer.write_all(&vec![7u8; 200_000]).await.unwrap();
        writer.shutdown().await.unwrap();
        let rest = reading.await.unwrap();
        assert_eq!(&first, b"hello");
        assert_eq!(rest, vec![7u8; 200_000]);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn a_writer_dropped_without_shutdown_reads_as_truncated() {
        let (enc, dec) = pair(Format::AgeRt);
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut writer = EncryptingWriter::new(a, enc);
        writer.write_all(b"partial").await.unwrap();
        writer.flush().await.unwrap();
        drop(writer);
        let mut reader = DecryptingReader::new(b, dec);
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(Error::from_io(&err), Some(&Error::Truncated));
        // Flushed, authenticated bytes were delivered; nothing else.
        assert_eq!(out, b"partial");
    }

    /// A std reader whose reads first fail with the given errors, in order.
    struct Failing<'a> {
        inner: &'a [u8],
        errors: Vec<io::ErrorKind>,
    }

    impl std::io::Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.errors.is_empty() {
                return Err(self.errors.remove(0).into());
            }
            std::io::Read::read(&mut self.inner, buf)
        }
    }

    /// std adapters: `flush` makes what was written decryptable before the
    /// end; a read interrupted by a signal is retried, any other read error
    /// is returned as it is.
    #[test]
    fn blocking_flush_delivers_and_only_interrupted_reads_are_retried() {
        use std::io::{Read, Write};
        let id = age::x25519::Identity::generate();
        let enc =
            Encryptor::with_recipients(Format::AgeRt, vec![Box::new(id.to_public())]).unwrap();
        let mut w = EncryptingWriter::new(Vec::new(), enc);
        Write::write_all(&mut w, b"flushed").unwrap();
        Write::flush(&mut w).unwrap();
        let wire = w.get_ref().clone();
        let read_once = |errors: Vec<io::ErrorKind>| {
            let dec = Decryptor::with_identities(vec![Box::new(id.clone())]);
            let inner = Failing {
                inner: &wire,
                errors,
            };
            let mut out = [0u8; 16];
            let n = Read::read(&mut DecryptingReader::new(inner, dec), &mut out)?;
            Ok::<_, io::Error>(out[..n].to_vec())
        };
        assert_eq!(
            read_once(vec![io::ErrorKind::Interrupted]).unwrap(),
            b"flushed"
        );
        let err = read_once(vec![io::ErrorKind::ConnectionReset]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn blocking_tamper_is_invalid_data() {
        use std::io::{Read, Write};
        let (enc, dec) = pair(Format::AgeV1);
        let mut w = EncryptingWriter::new(Vec::new(), enc);
        Write::write_all(&mut w, &[3u8; 100_000]).unwrap();
        let mut wire = w.finish().unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let mut out = Vec::new();
        let mut reader = DecryptingReader::new(&wire[..], dec);
        let err = Read::read_to_end(&mut reader, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            Error::from_io(&err),
            Some(&Error::ChunkAuthentication { index: 1 })
        );
        assert_eq!(out.len(), 65536, "only the authenticated first chunk");
    }
}
