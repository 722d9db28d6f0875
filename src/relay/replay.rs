//! A connection whose first bytes were already read (by [`super::head`]):
//! reads yield those bytes again before reading on from the socket, so
//! hyper sees the connection exactly as the client sent it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `io` with `prefix` put back in front of its unread bytes.
#[derive(Debug)]
pub(crate) struct Replay<S> {
    prefix: Vec<u8>,
    /// Bytes of `prefix` already handed out.
    replayed: usize,
    io: S,
}

impl<S> Replay<S> {
    /// Reads yield `prefix` first, then whatever `io` yields.
    pub(crate) fn new(io: S, prefix: Vec<u8>) -> Self {
        Replay {
            prefix,
            replayed: 0,
            io,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.prefix[this.replayed..];
        if rest.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.replayed += n;
        if this.replayed == this.prefix.len() {
            // Replayed in full: give the memory back.
            this.prefix = Vec::new();
            this.replayed = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefix_comes_first_then_the_socket_and_writes_pass_through() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut replay = Replay::new(ours, b"GET / HTTP/1.1\r\n".to_vec());
        theirs.write_all(b"Host: x\r\n\r\n").await.unwrap();
        // A small read buffer takes the prefix in pieces.
        let mut piece = [0u8; 5];
        replay.read_exact(&mut piece).await.unwrap();
        assert_eq!(&piece, b"GET /");
        let mut rest = vec![0u8; b" HTTP/1.1\r\nHost: x\r\n\r\n".len()];
        replay.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, b" HTTP/1.1\r\nHost: x\r\n\r\n");
        replay.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        let mut answer = [0u8; 17];
        theirs.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n");
    }
}
