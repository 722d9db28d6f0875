//! The local ends of a transfer: where `write` gets its bytes ([`Source`]:
//! stdin, a file or a producer command) and where `read` puts them
//! ([`Sink`]: stdout, a file or a consumer command), and the [`pump`] that
//! moves bytes between them with one bounded buffer.

mod sink;
mod source;

use std::future::Future;
use std::io;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use sink::Sink;
pub use source::Source;

use super::progress::Progress;

/// Buffer size of file and stdout writes (the Python CLI's `CHUNK_SIZE`, one
/// age chunk).
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Most bytes one [`pump`] read moves. Reads from stdin, a file or a pipe
/// each cost a hand-over to tokio's blocking pool, so large reads matter; a
/// read still returns whatever is available, never waiting to fill this.
const PUMP_BUFFER: usize = 256 * 1024;

/// Capacity [`widen_pipe`] asks for: the default unprivileged maximum
/// (`/proc/sys/fs/pipe-max-size`).
#[cfg(target_os = "linux")]
const PIPE_CAPACITY: libc::c_int = 1 << 20;

/// If `fd` is a pipe, asks the kernel to grow it from 64 KiB to 1 MiB, so
/// each read or write through it can move up to [`PUMP_BUFFER`] bytes
/// instead of 64 KiB: a quarter of the hand-overs and context switches.
/// A pipe's capacity is only a buffer size (the writer's and reader's view
/// of the data does not change), and for anything but a pipe, or a user over
/// the pipe-size limit, the call fails and nothing changes. Linux only (a
/// no-op elsewhere).
#[cfg(target_os = "linux")]
pub fn widen_pipe(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl(F_SETPIPE_SZ) takes an int and touches no memory of
    // ours; on a descriptor that is not a pipe it fails with EBADF/EINVAL.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_CAPACITY) };
}

/// Pipe capacity cannot be set outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn widen_pipe<T>(_pipe: &T) {}

/// How long a [`FlushPolicy::WhenIdle`] pump waits for more input before it
/// flushes what it has. Flushing the moment a read would block (zero) costs
/// 3-4x the CPU on a fast plaintext stream, whose reads often find the socket
/// empty for microseconds: every such gap became a small write and a wake-up
/// of the process downstream. A millisecond is below what a person or a
/// pipeline notices, and longer than those gaps.
const IDLE_FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// The producer or consumer command `program args…`, killed when dropped.
/// It inherits our environment except the variables that carry our secrets
/// (`ZEBRASTREAM_PASSPHRASE`, `ZEBRASTREAM_TICKET`, `ZEBRASTREAM_ACCESS_TOKEN`
/// and every other spelling of a [secret key](super::config::SECRET_KEYS)):
/// the command gets the stream, not the keys to it.
fn child_command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if super::config::is_secret_env_var(&name) {
            command.env_remove(&name);
        }
    }
    command
}

/// Which side of a [`pump`] failed.
#[derive(Debug)]
pub enum PumpError {
    /// Reading from the source failed.
    Read(io::Error),
    /// Writing to the destination failed.
    Write(io::Error),
}

/// When a [`pump`] flushes its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Only when the writer's buffer is full (and by the caller at the end):
    /// for `write`, whose flushes seal chunks and follow `-d`.
    WhenFull,
    /// When the source has had nothing more for [`IDLE_FLUSH_DELAY`]: bytes
    /// that arrived never wait longer than that for more, and a busy stream
    /// still goes out in full buffers. What `read` and `decrypt` use, so
    /// their output is live.
    WhenIdle,
    /// After every piece read (`-u`).
    EachPiece,
}

/// Copies `reader` to `writer` until EOF through one 256 KiB buffer, counting
/// bytes on `progress`, flushing the writer as `flush` says. Does not flush or
/// shut down `writer` at the end; the caller decides how the destination ends.
pub async fn pump<R, W>(
    reader: &mut R,
    writer: &mut W,
    progress: &Progress,
    flush: FlushPolicy,
) -> Result<u64, PumpError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    // Wiped when the pump ends: it held plaintext (read) or what becomes it (write).
    let mut buf = zeroize::Zeroizing::new(vec![0u8; PUMP_BUFFER]);
    let mut total = 0u64;
    // One timer, re-armed each time a read has to wait (WhenIdle only).
    let mut idle = std::pin::pin!(tokio::time::sleep(IDLE_FLUSH_DELAY));
    let mut unflushed = false;
    loop {
        let read = {
            let mut read = std::pin::pin!(reader.read(&mut buf));
            // Poll once: if nothing is ready and bytes are waiting in the
            // writer, give the source IDLE_FLUSH_DELAY, then flush and wait on.
            let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
            match first {
                Poll::Ready(result) => result,
                Poll::Pending if unflushed && flush == FlushPolicy::WhenIdle => {
                    idle.as_mut()
                        .reset(tokio::time::Instant::now() + IDLE_FLUSH_DELAY);
                    tokio::select! {
                        biased;
                        result = &mut read => result,
                        () = &mut idle => {
                            writer.flush().await.map_err(PumpError::Write)?;
                            unflushed = false;
                            read.await
                        }
                    }
                }
                Poll::Pending => read.await,
            }
        };
        let n = match read {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        writer
            .write_all(&buf[..n])
            .await
            .map_err(PumpError::Write)?;
        if flush == FlushPolicy::EachPiece {
            writer.flush().await.map_err(PumpError::Write)?;
        } else {
            unflushed = true;
        }
        total += n as u64;
        progress.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    #[cfg(target_os = "linux")]
    #[test]
    fn pipes_are_widened_and_other_descriptors_left_alone() {
        let mut fds = [0; 2];
        // SAFETY: pipe() fills two fresh descriptors, which OwnedFd then owns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let capacity = |fd: &OwnedFd| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(capacity(&read_end), 64 * 1024, "a fresh pipe holds 64 KiB");
        widen_pipe(&read_end);
        assert_eq!(capacity(&write_end), PIPE_CAPACITY, "one pipe, both ends");
        // A regular file is not a pipe: nothing happens, nothing fails.
        let file = tempfile::tempfile().unwrap();
        widen_pipe(&file);
    }

    #[tokio::test]
    async fn pump_copies_everything_and_reports_the_failing_side() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let progress = Progress::for_stderr(true);
        let n = pump(
            &mut data.as_slice(),
            &mut out,
            &progress,
            FlushPolicy::WhenFull,
        )
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
        let err = pump(
            &mut data.as_slice(),
            &mut Broken,
            &progress,
            FlushPolicy::WhenFull,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PumpError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe));
    }
}
