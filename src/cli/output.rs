//! Writing command output to stdout.

use std::io::Write;

use super::{CmdResult, ExitKind, Failure};

/// Writes all of `bytes` to stdout and flushes. A closed pipe is a failure:
/// the output is incomplete, so the command must not report success.
pub fn write_stdout_all(bytes: &[u8]) -> CmdResult {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(ExitKind::Other, format!("cannot write to stdout: {e}")))
}
