//! Forward secrecy for live ticket transfers.
//!
//! The consumer makes a fresh X25519 identity for this one transfer and
//! publishes its public half on a *reverse path* derived from the ticket
//! secret, as a small stream sealed with the ticket key (so neither the relay
//! nor anyone without the ticket can read or substitute it). The producer
//! fetches it and encrypts the real stream to that key alone. When the
//! transfer ends the consumer drops the identity, so a ticket that leaks
//! afterwards decrypts nothing that was recorded.
//!
//! The trade-off: both sides must be online at the same time (the producer
//! cannot start before the consumer has published its key), and with a relay
//! that checks tokens, the token must allow the consumer to write the reverse
//! path and the producer to read it (a recursive token on the prefix).

use std::str::FromStr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Ticket;
use crate::cipher::Format;
use crate::client::{Encryption, Error, StreamReader, StreamWriter};

/// The longest reverse-path message accepted: one recipient line.
const MAX_KEY_MESSAGE: u64 = 1024;

impl Ticket {
    /// The reverse path the consumer publishes its one-time key on.
    pub fn reverse_stream_path(&self) -> String {
        self.derived_path(super::LABEL_REVERSE_PATH)
    }

    /// Consumer side of a forward-secret transfer: publishes a fresh X25519
    /// key on the reverse path (waiting until the producer has fetched it),
    /// then returns the decryption setting that holds that key only.
    ///
    /// Use it for one [`StreamReader`] right away (e.g. with
    /// `ticket.reader_config().encryption(e)`); the one-time identity is
    /// dropped with it.
    pub async fn forward_secret_reader(&self) -> Result<Encryption, Error> {
        let identity = age::x25519::Identity::generate();
        let message = format!("{}\n", identity.to_public());
        let publish = self
            .path_config(self.reverse_stream_path())
            .encryption(Encryption::recipients(
                vec![Box::new(self.recipient())],
                Format::AgeRt,
            ))
            .build()?;
        let mut writer = StreamWriter::connect(&publish).await?;
        writer.write_all(message.as_bytes()).await?;
        writer.shutdown().await?;
        Ok(Encryption::identities(vec![Box::new(identity)]))
    }

    /// Producer side of a forward-secret transfer: fetches the consumer's
    /// one-time key from the reverse path and returns the encryption setting
    /// that encrypts to it only (in `format`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), zebrastream::client::Error> {
    /// use tokio::io::AsyncWriteExt;
    /// use zebrastream::{cipher::Format, client::StreamWriter, ticket::Ticket};
    /// let ticket: Ticket = std::env::var("ZEBRASTREAM_TICKET").unwrap().parse().unwrap();
    /// let encryption = ticket.forward_secret_writer(Format::AgeRt).await?;
    /// let config = ticket.writer_config().encryption(encryption).build()?;
    /// let mut writer = StreamWriter::connect(&config).await?;
    /// writer.write_all(b"live data").await?;
    /// writer.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn forward_secret_writer(&self, format: Format) -> Result<Encryption, Error> {
        let fetch = self
            .path_config(self.reverse_stream_path())
            .encryption(self.reader_encryption(Vec::new()))
            .build()?;
        let reader = StreamReader::connect(&fetch).await?;
        let mut message = String::new();
        let mut limited = reader.take(MAX_KEY_MESSAGE + 1);
        limited.read_to_string(&mut message).await?;
        if message.len() as u64 > MAX_KEY_MESSAGE {
            return Err(Error::InvalidConfig(
                "forward secrecy: the consumer's key message is too long".into(),
            ));
        }
        let recipient = age::x25519::Recipient::from_str(message.trim()).map_err(|e| {
            Error::InvalidConfig(format!(
                "forward secrecy: the consumer's key is not an age X25519 recipient: {e}"
            ))
        })?;
        Ok(Encryption::recipients(vec![Box::new(recipient)], format))
    }
}
