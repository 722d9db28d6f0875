//! Small messages on a transfer's side paths: the mechanism the
//! forward-secrecy exchange and resume's control messages share.
//!
//! A message is a whole plaintext stream on a side path of the transfer
//! (`protocol::side_path`): the sender `PUT`s it (waiting for the receiver
//! through the Connect API), the receiver `GET`s it. The messages carry
//! their own authentication; a token for the transfer's path covers its side
//! paths, and a relay counts them with the transfer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Config, Error, Opening, Sealing, StreamReader, StreamWriter};

/// The configuration of the side path `path` of the transfer `data`
/// describes: same relay, token, timeout, retries and HTTP client; no
/// content type, no resume (a message is one small plaintext stream).
pub(super) fn side_config(data: &Config, path: String) -> Result<Config, Error> {
    let mut config = data.with_stream_path(path)?;
    config.content_type = None;
    config.resume = None;
    Ok(config)
}

/// Sends `message` as the whole stream at `config`'s path; returns once the
/// relay confirmed that the receiver got it.
pub(super) async fn send(config: &Config, message: &[u8]) -> Result<(), Error> {
    // Boxed: a writer's connect may run an exchange, which connects writers.
    let mut writer = Box::pin(StreamWriter::connect(config, &Sealing::Plain)).await?;
    writer.write_all(message).await?;
    writer.shutdown().await?;
    Ok(())
}

/// Reads the whole stream at `config`'s path, at most `limit` bytes (one
/// more is read, so an over-long message is seen as such).
pub(super) async fn receive(config: &Config, limit: usize) -> Result<Vec<u8>, Error> {
    let reader = Box::pin(StreamReader::connect(config, &Opening::Plain)).await?;
    let mut message = Vec::with_capacity(limit.min(512));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut message)
        .await?;
    Ok(message)
}
