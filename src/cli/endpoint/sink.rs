//! Where `read` (and `decrypt`) write to: stdout, a file (which appears only
//! when the transfer succeeded), a device or FIFO (written in place), or the
//! stdin of a consumer command.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::process::{Child, ChildStdin};

use super::source::describe_status;
use super::CHUNK_SIZE;
use crate::cli::output::OutputFile;
use crate::cli::{ExitKind, Failure};

/// An output of a transfer.
pub struct Sink {
    kind: SinkKind,
}

enum SinkKind {
    Stdout(BufWriter<tokio::io::Stdout>),
    /// Written to a temporary file beside `dest`, renamed over it on commit,
    /// so a failed transfer never leaves a plausible-looking partial file.
    File {
        file: BufWriter<tokio::fs::File>,
        temp: tempfile::TempPath,
        dest: PathBuf,
    },
    /// A device or FIFO, written in place as chunks authenticate, like stdout.
    InPlace {
        file: BufWriter<tokio::fs::File>,
        path: PathBuf,
    },
    Consumer {
        child: Child,
        stdin: ChildStdin,
        name: String,
    },
}

impl Sink {
    /// `path`, or stdout when `None` or `-` (see [`OutputFile`] for what a
    /// path may name and how each kind is written).
    pub async fn create(path: Option<&Path>) -> Result<Sink, Failure> {
        let Some(path) = path else {
            return Ok(Self::stdout());
        };
        let kind = match OutputFile::open(path).await? {
            OutputFile::Stdout => return Ok(Self::stdout()),
            OutputFile::Replace { file, temp, dest } => SinkKind::File {
                file: BufWriter::with_capacity(CHUNK_SIZE, tokio::fs::File::from_std(file)),
                temp,
                dest,
            },
            OutputFile::InPlace { file, path } => SinkKind::InPlace {
                file: BufWriter::with_capacity(CHUNK_SIZE, file),
                path,
            },
        };
        Ok(Sink { kind })
    }

    fn stdout() -> Sink {
        super::widen_pipe(&std::io::stdout());
        Sink {
            kind: SinkKind::Stdout(BufWriter::with_capacity(CHUNK_SIZE, tokio::io::stdout())),
        }
    }

    /// Starts `command` with its stdin fed by us; its stdout and stderr are ours.
    pub fn spawn_consumer(command: &[String], subject: &str) -> Result<Sink, Failure> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| Failure::usage("empty consumer command"))?;
        let mut child = super::child_command(program, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Failure::new(
                    ExitKind::ConsumerFailed,
                    format!("{subject}: cannot start consumer command '{program}': {e}"),
                )
            })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Failure::new(ExitKind::Other, "consumer stdin was not piped"))?;
        super::widen_pipe(&stdin);
        Ok(Sink {
            kind: SinkKind::Consumer {
                child,
                stdin,
                name: program.clone(),
            },
        })
    }

    /// True for a consumer command (a write error then means it stopped reading).
    pub fn is_consumer(&self) -> bool {
        matches!(self.kind, SinkKind::Consumer { .. })
    }

    /// What this sink is, for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            SinkKind::Stdout(_) => String::from("stdout"),
            SinkKind::File { dest, .. } => format!("output file {}", dest.display()),
            SinkKind::InPlace { path, .. } => format!("output {}", path.display()),
            SinkKind::Consumer { name, .. } => format!("consumer command '{name}'"),
        }
    }

    /// The byte stream to write.
    pub fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match &mut self.kind {
            SinkKind::Stdout(w) => w,
            SinkKind::File { file, .. } | SinkKind::InPlace { file, .. } => file,
            SinkKind::Consumer { stdin, .. } => stdin,
        }
    }

    /// The transfer is complete: flush stdout, move the file into place, or
    /// close the consumer's stdin and require exit status 0 (else exit 7).
    pub async fn commit(self, subject: &str) -> Result<(), Failure> {
        match self.kind {
            SinkKind::Stdout(mut w) => w.flush().await.map_err(|e| {
                Failure::new(
                    ExitKind::Other,
                    format!("{subject}: cannot write to stdout: {e}"),
                )
            }),
            SinkKind::File {
                mut file,
                temp,
                dest,
            } => {
                let fail = |e: std::io::Error| {
                    Failure::new(
                        ExitKind::Other,
                        format!("{subject}: cannot write {}: {e}", dest.display()),
                    )
                };
                file.flush().await.map_err(fail)?;
                file.get_ref().sync_all().await.map_err(fail)?;
                drop(file);
                temp.persist(&dest).map_err(|e| fail(e.error))?;
                Ok(())
            }
            // No fsync: a FIFO or most devices refuse it.
            SinkKind::InPlace { mut file, path } => file.flush().await.map_err(|e| {
                Failure::new(
                    ExitKind::Other,
                    format!("{subject}: cannot write {}: {e}", path.display()),
                )
            }),
            SinkKind::Consumer {
                child,
                mut stdin,
                name,
            } => {
                // A consumer that already closed its stdin makes these fail; its status decides.
                let _ = stdin.flush().await;
                drop(stdin);
                wait_consumer(child, &name, subject).await
            }
        }
    }

    /// The consumer stopped reading early (a write to it failed): wait for
    /// it and judge by its exit status alone.
    pub async fn consumer_stopped(self, subject: &str) -> Result<(), Failure> {
        match self.kind {
            SinkKind::Consumer { child, stdin, name } => {
                drop(stdin);
                wait_consumer(child, &name, subject).await?;
                tracing::warn!(
                    "{subject}: consumer command '{name}' stopped reading before the end of the stream"
                );
                Ok(())
            }
            other => Sink { kind: other }.commit(subject).await,
        }
    }

    /// The transfer failed: a consumer is killed *before* its stdin closes
    /// (so it never sees a clean end of partial data); a file is removed.
    pub async fn abort(self) {
        match self.kind {
            SinkKind::Stdout(mut w) => {
                // What was written is authenticated data; the exit code says it is incomplete.
                let _ = w.flush().await;
            }
            SinkKind::InPlace { file: mut w, .. } => {
                // The same as stdout: authenticated data, an exit code that says it is incomplete.
                let _ = w.flush().await;
            }
            SinkKind::File { file, temp, .. } => {
                drop(file);
                drop(temp);
            }
            SinkKind::Consumer {
                mut child, stdin, ..
            } => {
                let _ = child.kill().await;
                drop(stdin);
            }
        }
    }
}

async fn wait_consumer(mut child: Child, name: &str, subject: &str) -> Result<(), Failure> {
    let status = child.wait().await.map_err(|e| {
        Failure::new(
            ExitKind::ConsumerFailed,
            format!("{subject}: cannot wait for consumer command '{name}': {e}"),
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(
            ExitKind::ConsumerFailed,
            format!(
                "{subject}: consumer command '{name}' {}",
                describe_status(status)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut sink = Sink::create(Some(&dest)).await.unwrap();
        sink.writer().write_all(b"partial").await.unwrap();
        sink.abort().await;
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file left behind"
        );

        let mut sink = Sink::create(Some(&dest)).await.unwrap();
        sink.writer().write_all(b"complete").await.unwrap();
        sink.commit("/s").await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"complete");
    }

    #[tokio::test]
    async fn consumer_status_maps_to_exit_7() {
        let cmd = [
            "sh".to_string(),
            "-c".to_string(),
            "cat >/dev/null; exit 4".to_string(),
        ];
        let mut sink = Sink::spawn_consumer(&cmd, "/s").unwrap();
        sink.writer().write_all(b"data").await.unwrap();
        let err = sink.commit("/s").await.unwrap_err();
        assert_eq!(err.kind, ExitKind::ConsumerFailed);
        assert!(
            err.message.contains("exited with status 4"),
            "{}",
            err.message
        );

        let cmd = ["true".to_string()];
        let sink = Sink::spawn_consumer(&cmd, "/s").unwrap();
        sink.commit("/s").await.unwrap();

        let err = Sink::spawn_consumer(&["/nonexistent/prog".to_string()], "/s")
            .err()
            .unwrap();
        assert_eq!(err.kind, ExitKind::ConsumerFailed);
    }
}
