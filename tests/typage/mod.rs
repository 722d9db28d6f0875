//! typage (npm `age-encryption`, pinned) run with the machine's Node.js
//! through `tests/typage/age.mjs`, for the interop tests
//! (tests/cipher_typage.rs, tests/cipher_plugin.rs). `scripts/setup.sh`
//! installs the package into `$ZS_TYPAGE_DIR` (default
//! `${XDG_CACHE_HOME:-$HOME/.cache}/zebrastream-test/typage`). Without node
//! or the package the tests skip with a message, under `CI=true` they fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli_support::{Finished, Proc, Sandbox};
use crate::support;

/// The pinned typage version.
const TYPAGE_VERSION: &str = "0.3.1";

/// The folder `npm install --prefix` filled: `$ZS_TYPAGE_DIR` or the cache default.
fn typage_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZS_TYPAGE_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default();
    cache.join("zebrastream-test/typage")
}

/// node and typage's folder when both are there at the pinned version;
/// None (skip) otherwise, or a panic under CI.
pub fn typage() -> Option<Typage> {
    let node = support::tool("node")?;
    let dir = typage_dir();
    let manifest = dir.join("node_modules/age-encryption/package.json");
    let version = std::fs::read_to_string(&manifest).ok().and_then(|text| {
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["version"].as_str().map(str::to_owned)
    });
    if version.as_deref() == Some(TYPAGE_VERSION) {
        return Some(Typage { node, dir });
    }
    let problem = format!(
        "typage age-encryption@{TYPAGE_VERSION} not installed at {} (found {version:?}; run ./scripts/setup.sh)",
        manifest.display()
    );
    if support::in_ci() {
        panic!("{problem}");
    }
    eprintln!("SKIP: {problem}");
    None
}

/// node with typage: runs `tests/typage/age.mjs`.
pub struct Typage {
    node: PathBuf,
    dir: PathBuf,
}

impl Typage {
    /// `node age.mjs ARGS` in the sandbox, with `env` added, `stdin` fed.
    pub fn run(
        &self,
        sb: &Sandbox,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Vec<u8>,
    ) -> Finished {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/typage/age.mjs");
        let mut cmd = Command::new(&self.node);
        sb.apply(&mut cmd);
        cmd.env("ZS_TYPAGE_DIR", &self.dir)
            .envs(env.iter().copied());
        cmd.arg(script).args(args);
        Proc::spawn(cmd, Some(stdin)).finish()
    }

    /// `keygen [--pq]`: writes the identity to `file` in the sandbox and
    /// returns the recipient.
    pub fn keygen(&self, sb: &Sandbox, pq: bool, file: &str) -> String {
        let args: &[&str] = if pq { &["keygen", "--pq"] } else { &["keygen"] };
        let out = self.run(sb, args, &[], Vec::new());
        out.expect_code(0);
        let text = String::from_utf8(out.stdout).unwrap();
        let (identity, recipient) = text.trim().split_once('\n').expect("two lines");
        sb.file(file, format!("{identity}\n").as_bytes());
        recipient.to_owned()
    }
}
