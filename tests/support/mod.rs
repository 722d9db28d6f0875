//! Shared helpers for the integration tests: where the external tools are.
//!
//! Interop tests need the Python venv (official client, age-rt), `age`,
//! `rage`, `curl`. `scripts/setup.sh` installs them and `scripts/test.sh`
//! exports their paths. A test that cannot find a tool skips with a message,
//! except under `CI=true`, where a missing tool is a failure.
#![allow(dead_code)]

pub mod balancer;
pub mod fault_proxy;
pub mod hostile_relay;
pub mod netns;

use std::path::{Path, PathBuf};

/// The relay's last status line of a complete transfer, as wire text (pinned
/// here rather than taken from `zebrastream::protocol::StatusLine`, so the
/// relay tests check the very bytes a client reads).
pub const STATE_TRANSFER_SUCCESSFUL: &str = "[STATE:TRANSFER_SUCCESSFUL]";
/// The relay's status line when the consumer left before the end, as wire text.
pub const ERROR_RECEIVER_PREMATURE_DISCONNECT: &str = "[ERROR:RECEIVER_PREMATURE_DISCONNECT]";

/// True when running under CI (`CI=true`): missing tools fail instead of skip.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns the path if it exists; otherwise panics under CI or returns None (skip).
fn found(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        Some(path)
    } else if in_ci() {
        panic!(
            "{what} not found at {} (run ./scripts/setup.sh)",
            path.display()
        );
    } else {
        eprintln!(
            "SKIP: {what} not found at {} (run ./scripts/setup.sh)",
            path.display()
        );
        None
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv directory: `.venv` in this checkout, or the main checkout's when
/// this is a git worktree without its own venv.
fn venv_dir() -> PathBuf {
    let local = manifest_dir().join(".venv");
    if local.exists() {
        return local;
    }
    let main = PathBuf::from("/work/main/.venv");
    if main.exists() {
        return main;
    }
    local
}

/// The venv's Python, with `zebrastream-io==0.5.4` and `age-rt==0.2.2`.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("ZS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv_dir().join("bin/python"));
    found("Python venv (zebrastream-io, age-rt)", p)
}

/// The official Python CLI, called by its venv path (never via PATH: it shares our name).
pub fn py_cli() -> Option<PathBuf> {
    let p = std::env::var_os("ZS_TEST_PY_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv_dir().join("bin/zebrastream"));
    found("Python zebrastream CLI", p)
}

/// `../shared` (conformance vectors and docs).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("ZS_TEST_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../shared"))
}

/// A program on PATH (`age`, `rage`, `curl`, `socat`), or None/panic as above.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let cargo_bin = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin").join(name))
        .unwrap_or_default();
    found(name, cargo_bin)
}
