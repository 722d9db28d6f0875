//! The ticket's side of the forward-secrecy exchange: the fresh path.
//!
//! A ticket keys the exchange ([`crate::forward_secrecy`]) with a secret of
//! its own (HKDF label `zebrastream fs exchange`), never the data stream's
//! key: a message of the exchange cannot open as a ticket stream, nor the
//! other way round.

use zeroize::Zeroizing;

use super::Ticket;
use crate::cipher::Format;
use crate::client::{self, Config, StreamReader, StreamWriter};
use crate::forward_secrecy::ExchangeKey;

impl Ticket {
    /// The key of the forward-secrecy exchange for this ticket's transfers.
    pub fn exchange_key(&self) -> ExchangeKey {
        use secrecy::ExposeSecret;
        ExchangeKey::from_derived(Zeroizing::new(age_core::primitives::hkdf(
            &[],
            super::LABEL_EXCHANGE,
            self.secret.expose_secret(),
        )))
    }

    /// The fresh writer: runs the forward-secrecy exchange with the reader
    /// (who must use [`Ticket::connect_reader`] or [`Ticket::opening`]), then
    /// connects the data stream sealed (age-rt) to the reader's one-time key
    /// alone. A replayed stream cannot pass for this one, and a ticket leaked
    /// later opens nothing the relay recorded. `config` is usually
    /// [`Ticket::config`] with a connect timeout; every wait honours it.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), zebrastream::client::Error> {
    /// use std::time::Duration;
    /// use tokio::io::AsyncWriteExt;
    /// use zebrastream::ticket::Ticket;
    /// let ticket: Ticket = std::env::var("ZEBRASTREAM_TICKET").unwrap().parse().unwrap();
    /// let config = ticket.config().connect_timeout(Duration::from_secs(60)).build()?;
    /// let mut writer = ticket.connect_writer(&config).await?;
    /// writer.write_all(b"live data").await?;
    /// writer.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_writer(&self, config: &Config) -> Result<StreamWriter, client::Error> {
        StreamWriter::connect(config, &self.sealing(Format::AgeRt)).await
    }

    /// The fresh reader: answers the writer's offer with a one-time key and
    /// connects the data stream, which only that key opens (a stream
    /// recorded in another session fails to decrypt). `config` is usually
    /// [`Ticket::config`] with a connect timeout.
    pub async fn connect_reader(&self, config: &Config) -> Result<StreamReader, client::Error> {
        StreamReader::connect(config, &self.opening()).await
    }
}
