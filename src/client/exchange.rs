//! Runs the forward-secrecy exchange ([`crate::forward_secrecy`]) over the
//! relay: the two small messages travel on the transfer's side paths
//! ([`side_channel`], shared with resume's control messages), each step
//! bounded by the configuration's connect timeout.

use std::future::Future;

use super::side_channel::{self, side_config};
use super::{Config, Error, Opening, Sealing};
use crate::forward_secrecy::{
    ExchangeError, ExchangeKey, ExchangeStep, KEY_SIDE_PATH, MAX_KEY_MESSAGE, OFFER_BYTES,
    OFFER_SIDE_PATH,
};
use crate::protocol::side_path;

/// Writer side: sends the offer, checks the reader's answer, and returns
/// the sealing to the reader's one-time key alone (in `format`).
pub(super) async fn seal(
    key: &ExchangeKey,
    data: &Config,
    format: crate::cipher::Format,
) -> Result<Sealing, Error> {
    let path = data.stream_path();
    let (offer, offer_bytes) = key.offer(path);
    send(data, OFFER_SIDE_PATH, &offer_bytes, ExchangeStep::Offer).await?;
    let answer = receive(
        data,
        KEY_SIDE_PATH,
        MAX_KEY_MESSAGE,
        ExchangeStep::KeyMessage,
    )
    .await?;
    let recipient = key.accept(&offer, path, &answer)?;
    Ok(Sealing::recipients(vec![Box::new(recipient)], format))
}

/// Reader side: answers the writer's offer with a one-time key and returns
/// the opening that holds that key only (dropped with the reader).
pub(super) async fn open(key: &ExchangeKey, data: &Config) -> Result<Opening, Error> {
    let path = data.stream_path();
    let offer = receive(data, OFFER_SIDE_PATH, OFFER_BYTES, ExchangeStep::Offer).await?;
    let (identity, answer) = key.answer(path, &offer)?;
    send(data, KEY_SIDE_PATH, &answer, ExchangeStep::KeyMessage).await?;
    Ok(Opening::identities(vec![Box::new(identity)]))
}

/// Runs one step of the exchange within the connect timeout: the wait for
/// the peer and the message itself, so a relay that stalls a message cannot
/// hold a side longer than a missing peer could.
async fn bounded<T>(
    config: &Config,
    step: ExchangeStep,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let timeout = |after| Error::Exchange(ExchangeError::Timeout { step, after });
    let result = match config.connect_timeout() {
        Some(after) => tokio::time::timeout(after, work)
            .await
            .map_err(|_| timeout(after))?,
        None => work.await,
    };
    result.map_err(|error| match error {
        Error::ConnectTimeout(after) => timeout(after),
        other => other,
    })
}

async fn send(data: &Config, name: &str, message: &[u8], step: ExchangeStep) -> Result<(), Error> {
    let config = side_config(data, side_path(data.stream_path(), name))?;
    bounded(&config, step, side_channel::send(&config, message)).await
}

/// Reads a whole message of at most `limit` bytes.
async fn receive(
    data: &Config,
    name: &str,
    limit: usize,
    step: ExchangeStep,
) -> Result<Vec<u8>, Error> {
    let config = side_config(data, side_path(data.stream_path(), name))?;
    bounded(&config, step, side_channel::receive(&config, limit)).await
}
