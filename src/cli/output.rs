//! Command output: stdout, and what `-o PATH` names.
//!
//! `-o PATH` (`read`, `decrypt`, `encrypt`) must never turn something that
//! is not a regular file into one: a regular file, or a path where nothing
//! exists yet, is written beside it and renamed over it once the transfer
//! succeeded (so a failed transfer never leaves a plausible-looking partial
//! file), keeping the replaced file's mode and owner; a character or block
//! device or a FIFO is written in place, like stdout, as chunks
//! authenticate; a symlink is followed and these rules apply to its target
//! (the target is replaced, the link stays); `-` is stdout.

use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{CmdResult, ExitKind, Failure};

/// Writes all of `bytes` to stdout and flushes. A closed pipe is a failure:
/// the output is incomplete, so the command must not report success.
pub fn write_stdout_all(bytes: &[u8]) -> CmdResult {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(ExitKind::Other, format!("cannot write to stdout: {e}")))
}

/// Most symlinks followed from `-o PATH` to what it names (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// Permission bits a replaced file passes on to its new contents: set-id
/// and sticky bits are not carried over to bytes that came from elsewhere.
const KEPT_MODE_BITS: u32 = 0o777;

/// What `-o PATH` names, opened for writing.
#[derive(Debug)]
pub enum OutputFile {
    /// `-o -`.
    Stdout,
    /// A regular file or a new path: `temp`, in the same directory as
    /// `dest` (so the rename is atomic), is renamed over `dest` on success.
    Replace {
        /// The open temporary file; its mode and owner are already those
        /// of the file it replaces (a new path gets 0600).
        file: File,
        /// Removes the temporary file when dropped without persisting.
        temp: tempfile::TempPath,
        /// The path to rename over: `-o PATH` with symlinks followed.
        dest: PathBuf,
    },
    /// A character or block device or a FIFO, opened for writing in place.
    InPlace {
        /// The open device or FIFO.
        file: tokio::fs::File,
        /// `-o PATH` as given.
        path: PathBuf,
    },
}

impl OutputFile {
    /// Opens what `path` names (see the module docs). Opening a FIFO waits
    /// for its reader, as a shell redirection does; that wait runs on
    /// tokio's blocking pool, so Ctrl-C still stops the command.
    pub async fn open(path: &Path) -> Result<OutputFile, Failure> {
        if path == Path::new("-") {
            return Ok(OutputFile::Stdout);
        }
        let fail = |what: &str, e: io::Error| {
            Failure::new(
                ExitKind::Other,
                format!("cannot {what} output {}: {e}", path.display()),
            )
        };
        let dest = follow_symlinks(path).map_err(|e| fail("resolve", e))?;
        let existing = match std::fs::metadata(&dest) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail("inspect", e)),
        };
        match existing {
            Some(meta) if meta.is_dir() => Err(Failure::new(
                ExitKind::Other,
                format!(
                    "cannot write output {}: it is a directory; name a file inside it",
                    path.display()
                ),
            )),
            Some(meta) if !meta.is_file() => {
                // O_NOCTTY: a terminal device never becomes our controlling terminal.
                let file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOCTTY)
                    .open(&dest)
                    .await
                    .map_err(|e| fail("open", e))?;
                Ok(OutputFile::InPlace {
                    file,
                    path: path.to_owned(),
                })
            }
            existing => {
                let (file, temp) =
                    temp_beside(&dest, existing.as_ref()).map_err(|e| fail("create", e))?;
                Ok(OutputFile::Replace { file, temp, dest })
            }
        }
    }
}

/// Follows `path` while it is a symlink; the result is the first path that
/// is not one (it may not exist: a dangling link names a new file).
fn follow_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..MAX_SYMLINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                // A relative target is relative to the link's directory.
                current = match current.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// A temporary file in `dest`'s directory, with the mode and owner of the
/// regular file it will replace (`existing`), or tempfile's 0600 for a new
/// path.
fn temp_beside(dest: &Path, existing: Option<&Metadata>) -> io::Result<(File, tempfile::TempPath)> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (file, temp) = tempfile::Builder::new()
        .prefix(".zebrastream-")
        .suffix(".part")
        .tempfile_in(dir)?
        .into_parts();
    if let Some(meta) = existing {
        let ours = file.metadata()?;
        if (ours.uid(), ours.gid()) != (meta.uid(), meta.gid()) {
            // Owner first: changing it may clear permission bits.
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot give the new file the owner of the one it replaces \
                         (uid {}, gid {}): {e}; remove it first or write as its owner",
                        meta.uid(),
                        meta.gid()
                    ),
                )
            })?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(
            meta.mode() & KEPT_MODE_BITS,
        ))?;
    }
    Ok((file, temp))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn symlink_chains_are_followed_to_their_target_even_when_it_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/target");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // relative link -> absolute link -> missing target
        symlink(&target, dir.path().join("abs")).unwrap();
        symlink("abs", dir.path().join("rel")).unwrap();
        assert_eq!(follow_symlinks(&dir.path().join("rel")).unwrap(), target);
        // A loop is an error, not a hang.
        symlink("loop", dir.path().join("loop")).unwrap();
        let err = follow_symlinks(&dir.path().join("loop")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[tokio::test]
    async fn a_directory_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::open(dir.path()).await.unwrap_err();
        assert!(err.message.contains("it is a directory"), "{}", err.message);
        assert!(err.message.contains(&dir.path().display().to_string()));
    }
}
