//! `tokio::io::AsyncRead` / `AsyncWrite` for the adapters.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{DecryptingReader, EncryptingWriter};

impl<W: AsyncWrite + Unpin> EncryptingWriter<W> {
    /// Writes all pending ciphertext to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.enc.output().is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, self.enc.output()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.enc.consume(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for EncryptingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_drain(cx))?;
            let n = this.enc.write(buf)?;
            if n > 0 || buf.is_empty() {
                return Poll::Ready(Ok(n));
            }
        }
    }

    /// Seals the pending partial chunk (age-rt), sends it, flushes `inner`.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.enc.flush();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Writes the final chunk, then shuts `inner` down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.enc.finish();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for DecryptingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some(n) = this.step_without_input(out.initialize_unfilled())? {
                out.advance(n);
                return Poll::Ready(Ok(()));
            }
            let space = super::input_buffer(&mut this.dec)?;
            let mut read_buf = ReadBuf::new(space);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read_buf))?;
            let n = read_buf.filled().len();
            this.commit(n)?;
        }
    }
}
