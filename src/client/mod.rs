//! Layer 3: the client library: [`StreamWriter`] (`AsyncWrite`) and
//! [`StreamReader`] (`AsyncRead`) composed from the protocol client
//! ([`crate::api`]) and the stream cipher ([`crate::cipher`]).
//!
//! Build a [`Config`] once (where the stream is), then connect a writer
//! (producer) with a [`Sealing`] or a reader (consumer) with an [`Opening`]
//! (how it is protected). Whichever side arrives first waits for the other.
//!
//! # Throughput
//!
//! Any tokio runtime works, `#[tokio::main]`'s default included. A stream's
//! bytes pass between the caller's task, a background task (the writer's
//! pump; on a multi-thread runtime also the reader's read-ahead) and the
//! HTTP connection. The writer hands over 256 KiB at a time; the read-ahead
//! takes the connection's chunks on a worker thread and holds up to 512 KiB
//! for the reader, so a thread boundary is crossed less often. On a
//! current-thread runtime every hand-over stays on one thread, which is
//! still the cheapest for a single bulk stream on a small, busy machine:
//! on 2 cores shared by producer, relay and consumer, a
//! multi-thread runtime costs 1.1–1.4× the CPU per byte (docs/performance.md,
//! "Multi-thread runtime"). For that case, run the stream on a
//! current-thread runtime of its own:
//!
//! ```no_run
//! # fn demo(config: zebrastream::client::Config, sealing: zebrastream::client::Sealing, mut file: tokio::fs::File) -> std::io::Result<()> {
//! use tokio::io::AsyncWriteExt;
//! use zebrastream::client::StreamWriter;
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let mut writer = StreamWriter::connect(&config, &sealing).await?;
//!     tokio::io::copy(&mut file, &mut writer).await?;
//!     writer.shutdown().await
//! })
//! # }
//! ```

pub mod blocking;
mod config;
mod error;
mod exchange;
mod keys;
mod reader;
pub mod resume;
mod side_channel;
mod transfer;
mod writer;

pub use config::{
    AutoFlush, Config, ConfigBuilder, ACCESS_TOKEN_ENV, DEFAULT_CONNECT_URL,
    DEFAULT_READER_MAX_WORK_FACTOR, DEFAULT_WRITE_BUFFER_SIZE, MAX_WRITE_BUFFER_SIZE,
};
pub use error::Error;
pub use keys::{Opening, Sealing, SharedIdentity, SharedRecipient};
pub use reader::StreamReader;
pub use resume::{Resume, ResumeError};
pub use transfer::{pull, pull_file, push, push_file, TransferReport};
pub use writer::StreamWriter;

/// The secret string type of passphrases and access tokens
/// ([`Sealing::passphrase`], [`ConfigBuilder::access_token`]), re-exported
/// so that using the client needs no direct `secrecy` dependency.
pub use secrecy::SecretString;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_static<T: Send + 'static>() {}
    fn send_sync_static<T: Send + Sync + 'static>() {}

    /// The code blocks of `block` kind (` ```rust…`, ` ```toml`) of a page.
    fn code_blocks<'a>(page: &'a str, kind: &str) -> Vec<&'a str> {
        let mut blocks = Vec::new();
        let mut rest = page;
        while let Some(start) = rest.find("```") {
            let after = &rest[start + 3..];
            let (info, body) = after.split_once('\n').unwrap_or((after, ""));
            let end = body.find("```").unwrap_or(body.len());
            if info.trim().starts_with(kind) {
                blocks.push(&body[..end]);
            }
            rest = &body[(end + 3).min(body.len())..];
        }
        blocks
    }

    /// docs/client.md's quick start builds with exactly the dependencies the
    /// page tells a user to add (its examples are compiled as doc tests,
    /// where every dev-dependency would be available too): every path its
    /// Rust blocks start from is a listed crate, `std`, or a name one of
    /// their `use` lines brought in; every listed crate has a version.
    #[test]
    fn the_client_guide_uses_only_the_crates_it_lists() {
        let page = include_str!("../../docs/client.md");
        let toml = code_blocks(page, "toml");
        assert_eq!(toml.len(), 1, "one [dependencies] block");
        let listed: Vec<String> = toml[0]
            .lines()
            .skip_while(|l| l.trim() != "[dependencies]")
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (name, spec) = l.split_once('=').expect("name = spec");
                assert!(
                    spec.trim().starts_with('"') || spec.contains("version"),
                    "no version: {l}"
                );
                name.trim().replace('-', "_")
            })
            .collect();
        assert!(listed.iter().any(|c| c == "zebrastream"), "{listed:?}");
        let rust = code_blocks(page, "rust");
        assert!(!rust.is_empty());
        for block in rust {
            let code: String = block
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            let mut known: Vec<String> = ["std", "core", "alloc", "crate", "self", "super"]
                .iter()
                .map(|s| s.to_string())
                .chain(listed.iter().cloned())
                .collect();
            let uses: Vec<&str> = code
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("use "))
                .collect();
            for path in &uses {
                let root = path.split("::").next().unwrap_or_default().trim();
                assert!(
                    known.iter().any(|k| k == root),
                    "docs/client.md imports from `{root}`, which is not among the listed crates {listed:?}"
                );
            }
            for path in uses {
                known.extend(path.split(|c: char| !word(c)).map(str::to_owned));
            }
            let bytes = code.as_bytes();
            for (at, _) in code.match_indices("::") {
                let start = code[..at].rfind(|c: char| !word(c)).map_or(0, |i| i + 1);
                let segment = &code[start..at];
                let continues_a_path = start >= 2 && &bytes[start - 2..start] == b"::";
                let is_type = segment.starts_with(|c: char| c.is_ascii_uppercase());
                if segment.is_empty() || continues_a_path || is_type {
                    continue;
                }
                assert!(
                    known.iter().any(|k| k == segment),
                    "docs/client.md uses `{segment}::`, which is not among the listed crates {listed:?}"
                );
            }
        }
    }

    /// Streams can move into spawned tasks; configurations can be shared.
    #[test]
    fn thread_safety() {
        send_static::<StreamWriter>();
        send_static::<StreamReader>();
        send_static::<blocking::Writer>();
        send_static::<blocking::Reader>();
        send_sync_static::<Config>();
        send_sync_static::<Sealing>();
        send_sync_static::<Opening>();
        send_sync_static::<Error>();
    }
}
