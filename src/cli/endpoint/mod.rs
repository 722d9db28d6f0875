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

/// Copies `reader` to `writer` until EOF through one 256 KiB buffer, counting
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
    let mut buf = vec![0u8; PUMP_BUFFER];
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
