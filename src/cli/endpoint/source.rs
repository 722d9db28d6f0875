//! Where `write` (and `encrypt`) read from: stdin, a file, or the stdout of
//! a producer command.

use std::path::Path;
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncRead;
use tokio::process::{Child, ChildStdout};

use crate::cli::{ExitKind, Failure};

/// An input of a transfer.
pub struct Source {
    kind: SourceKind,
}

enum SourceKind {
    Stdin(tokio::io::Stdin),
    File(tokio::fs::File),
    Producer {
        child: Child,
        stdout: ChildStdout,
        name: String,
    },
}

impl Source {
    /// The file at `path`, or stdin when `None` or `-`.
    pub async fn open(path: Option<&Path>) -> Result<Source, Failure> {
        let kind = match path {
            None => Self::stdin(),
            Some(p) if p == Path::new("-") => Self::stdin(),
            Some(p) => SourceKind::File(tokio::fs::File::open(p).await.map_err(|e| {
                Failure::new(
                    ExitKind::Other,
                    format!("cannot open input {}: {e}", p.display()),
                )
            })?),
        };
        Ok(Source { kind })
    }

    fn stdin() -> SourceKind {
        super::widen_pipe(&std::io::stdin());
        SourceKind::Stdin(tokio::io::stdin())
    }

    /// Starts `command` (program and arguments) with its stdout piped to us;
    /// its stdin and stderr are ours. `subject` names the stream for errors.
    pub fn spawn_producer(command: &[String], subject: &str) -> Result<Source, Failure> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| Failure::usage("empty producer command"))?;
        let mut child = super::child_command(program, args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Failure::new(
                    ExitKind::ProducerFailed,
                    format!("{subject}: cannot start producer command '{program}': {e}"),
                )
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::new(ExitKind::Other, "producer stdout was not piped"))?;
        super::widen_pipe(&stdout);
        Ok(Source {
            kind: SourceKind::Producer {
                child,
                stdout,
                name: program.clone(),
            },
        })
    }

    /// What this source is, for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            SourceKind::Stdin(_) => String::from("stdin"),
            SourceKind::File(_) => String::from("the input file"),
            SourceKind::Producer { name, .. } => format!("producer command '{name}'"),
        }
    }

    /// The byte stream to read.
    pub fn reader(&mut self) -> &mut (dyn AsyncRead + Unpin + Send) {
        match &mut self.kind {
            SourceKind::Stdin(s) => s,
            SourceKind::File(f) => f,
            SourceKind::Producer { stdout, .. } => stdout,
        }
    }

    /// After EOF: a producer must have exited with status 0, or the transfer
    /// fails with exit code 6 (the caller then aborts the upload).
    pub async fn finish(self, subject: &str) -> Result<(), Failure> {
        match self.kind {
            SourceKind::Producer {
                mut child, name, ..
            } => {
                let status = child.wait().await.map_err(|e| {
                    Failure::new(
                        ExitKind::ProducerFailed,
                        format!("{subject}: cannot wait for producer command '{name}': {e}"),
                    )
                })?;
                if status.success() {
                    Ok(())
                } else {
                    Err(Failure::new(
                        ExitKind::ProducerFailed,
                        format!(
                            "{subject}: producer command '{name}' {}; upload aborted, the reader does not get a complete stream",
                            describe_status(status)
                        ),
                    ))
                }
            }
            SourceKind::Stdin(_) | SourceKind::File(_) => Ok(()),
        }
    }

    /// Stops a producer that is still running (the transfer failed).
    pub async fn abort(self) {
        if let SourceKind::Producer { mut child, .. } = self.kind {
            // Already-exited children make kill fail harmlessly.
            let _ = child.kill().await;
        }
    }
}

/// "exited with status 3" / "was killed by signal 9".
pub fn describe_status(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => String::from("failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn cmd(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn producer_output_and_status() {
        let mut src = Source::spawn_producer(&cmd("printf hello"), "/s").unwrap();
        let mut out = Vec::new();
        src.reader().read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"hello");
        src.finish("/s").await.unwrap();

        let mut src = Source::spawn_producer(&cmd("printf part; exit 3"), "/s").unwrap();
        let mut out = Vec::new();
        src.reader().read_to_end(&mut out).await.unwrap();
        let err = src.finish("/s").await.unwrap_err();
        assert_eq!(err.kind, ExitKind::ProducerFailed);
        assert!(
            err.message.contains("exited with status 3"),
            "{}",
            err.message
        );
        assert!(err.message.starts_with("/s:"));
    }

    #[tokio::test]
    async fn missing_input_file_and_program() {
        let err = Source::open(Some(Path::new("/nonexistent/in")))
            .await
            .err()
            .unwrap();
        assert!(err.message.contains("/nonexistent/in"));
        let err = Source::spawn_producer(&["/nonexistent/prog".into()], "/s")
            .err()
            .unwrap();
        assert_eq!(err.kind, ExitKind::ProducerFailed);
    }
}
