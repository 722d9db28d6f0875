//! The local ends of a transfer: where `write` gets its bytes ([`Source`]:
//! stdin, a file or a producer command) and where `read` puts them
//! ([`Sink`]: stdout, a file or a consumer command), and the [`pump`] that
//! moves bytes between them with one bounded buffer.

mod sink;
mod source;

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use sink::Sink;
pub use source::Source;

use super::progress::Progress;

/// Bytes moved per read (the Python CLI's `CHUNK_SIZE`, one age chunk).
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Which side of a [`pump`] failed.
#[derive(Debug)]
pub enum PumpError {
    /// Reading from the source failed.
    Read(io::Error),
    /// Writing to the destination failed.
    Write(io::Error),
}

/// Copies `reader` to `writer` until EOF through one 64 KiB buffer, counting
/// bytes on `progress`. `flush_each` flushes the writer after every read
/// (`-u`: each piece goes out as soon as it arrives). Does not flush or shut
/// down `writer` at the end; the caller decides how the destination ends.
pub async fn pump<R, W>(
    reader: &mut R,
    writer: &mut W,
    progress: &Progress,
    flush_each: bool,
) -> Result<u64, PumpError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        writer
            .write_all(&buf[..n])
            .await
            .map_err(PumpError::Write)?;
        if flush_each {
            writer.flush().await.map_err(PumpError::Write)?;
        }
        total += n as u64;
        progress.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_copies_everything_and_reports_the_failing_side() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let progress = Progress::for_stderr(true);
        let n = pump(&mut data.as_slice(), &mut out, &progress, false)
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
        assert_eq!(progress.bytes(), data.len() as u64);

        struct Broken;
        impl AsyncWrite for Broken {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &[u8],
            ) -> std::task::Poll<io::Result<usize>> {
                std::task::Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
        }
        let err = pump(&mut data.as_slice(), &mut Broken, &progress, false)
            .await
            .unwrap_err();
        assert!(matches!(err, PumpError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe));
    }
}
