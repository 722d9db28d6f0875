//! The forward-secrecy exchange through the library: a real relay for the
//! fresh path, and a hostile relay (tests/support/hostile_relay.rs) that
//! records every message and replays it, swaps it, or serves it elsewhere.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use support::hostile_relay::HostileRelay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::{self, Decryptor, Format};
use zebrastream::client::{Config, Error, Opening, Sealing, StreamReader, StreamWriter};
use zebrastream::forward_secrecy::{
    ExchangeError, ExchangeKey, ExchangeStep, MessageError, KEY_SIDE_PATH, OFFER_SIDE_PATH,
};
use zebrastream::protocol::side_path;
use zebrastream::relay::{CaptureTap, Relay, RelayConfig};
use zebrastream::ticket::Ticket;

fn copy(ticket: &Ticket) -> Ticket {
    Ticket::parse(secrecy::ExposeSecret::expose_secret(
        &ticket.to_secret_string(),
    ))
    .unwrap()
}

fn timed(builder: zebrastream::client::ConfigBuilder) -> Config {
    builder
        .connect_timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A fresh ticket transfer of `data`: writer and reader concurrently.
async fn fresh_transfer(
    ticket: &Ticket,
    data: &[u8],
) -> (Result<(), Error>, Result<Vec<u8>, Error>) {
    let writer_ticket = copy(ticket);
    let payload = data.to_vec();
    let producer = tokio::spawn(async move {
        let config = timed(writer_ticket.config());
        let mut w = writer_ticket.connect_writer(&config).await?;
        w.write_all(&payload).await.map_err(Error::from)?;
        w.shutdown().await.map_err(Error::from)?;
        Ok::<_, Error>(())
    });
    let read = async {
        let mut r = ticket.connect_reader(&timed(ticket.config())).await?;
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.map_err(Error::from)?;
        Ok::<_, Error>(got)
    }
    .await;
    (producer.await.unwrap(), read)
}

#[tokio::test]
async fn forward_secret_transfer_cannot_be_decrypted_with_the_ticket_afterwards() {
    let tap = Arc::new(CaptureTap::new(8 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .unwrap();
    let ticket = Ticket::generate(&relay.connect_url(), "/live").unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (written, read) = fresh_transfer(&ticket, &data).await;
    written.unwrap();
    assert_eq!(read.unwrap(), data);

    // What the relay recorded: the offer, the key message (the one-time
    // public key, sealed), and the data stream (sealed to that key only).
    let path = ticket.stream_path();
    let offer = tap.bytes(&side_path(&path, OFFER_SIDE_PATH));
    assert_eq!(offer.len(), 50, "version, kind, nonce, tag");
    assert_eq!(offer[0], 1, "the version byte");
    let key_message = tap.bytes(&side_path(&path, KEY_SIDE_PATH));
    assert!(!key_message.is_empty());
    assert!(
        !String::from_utf8_lossy(&key_message).contains("age1"),
        "the one-time key travels sealed"
    );
    let main = tap.bytes(&path);
    let header = String::from_utf8_lossy(&main[..300]).into_owned();
    // The one-time key is hybrid post-quantum (ML-KEM-768 + X25519).
    assert!(header.contains("-> mlkem768x25519 "), "{header}");
    assert!(!header.contains("-> X25519 "), "{header}");
    assert!(!header.contains("zs-ticket"), "{header}");

    // The leaked ticket opens neither the data nor the key message: the
    // exchange has keys of its own, never the data stream's.
    for recorded in [&main, &key_message, &offer] {
        let leaked =
            Decryptor::with_identities(vec![Box::new(ticket.identity())]).decrypt_all(recorded);
        assert!(leaked.is_err(), "{leaked:?}");
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn a_replayed_stream_fails_for_the_next_fresh_reader() {
    let relay = HostileRelay::start();
    let ticket = Ticket::generate(&relay.connect_url(), "/bank").unwrap();
    let (written, read) = fresh_transfer(&ticket, b"monday: pay 100 EUR to alice").await;
    written.unwrap();
    assert_eq!(read.unwrap(), b"monday: pay 100 EUR to alice");

    // Tuesday: no writer. The relay replays Monday's offer and data stream.
    let result = async {
        let mut r = ticket.connect_reader(&timed(ticket.config())).await?;
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.map_err(Error::from)?;
        Ok::<_, Error>(got)
    }
    .await;
    assert!(
        matches!(
            result,
            Err(Error::Decryption(cipher::Error::NoMatchingIdentity))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_replayed_key_message_is_refused_before_any_data_is_sent() {
    let relay = HostileRelay::start();
    let ticket = Ticket::generate(&relay.connect_url(), "/bank").unwrap();
    let (written, _) = fresh_transfer(&ticket, b"monday").await;
    written.unwrap();
    let data_puts = || {
        let target = format!("/data{}", ticket.stream_path());
        relay
            .seen()
            .iter()
            .filter(|s| s.method == "PUT" && s.uri == target)
            .count()
    };
    assert_eq!(data_puts(), 1);

    // Tuesday: a writer, no reader; the relay answers with Monday's key message.
    let config = timed(ticket.config());
    let result = ticket.connect_writer(&config).await;
    assert!(
        matches!(
            result,
            Err(Error::Exchange(ExchangeError::Refused {
                step: ExchangeStep::KeyMessage,
                reason: MessageError::NotAuthentic
            }))
        ),
        "{result:?}"
    );
    assert_eq!(data_puts(), 1, "no data stream was started");
}

#[tokio::test]
async fn swapped_messages_are_refused_by_both_sides() {
    let relay = HostileRelay::start();
    let ticket = Ticket::generate(&relay.connect_url(), "/swap").unwrap();
    let path = ticket.stream_path();
    let (offer_path, key_path) = (
        side_path(&path, OFFER_SIDE_PATH),
        side_path(&path, KEY_SIDE_PATH),
    );
    let (written, _) = fresh_transfer(&ticket, b"monday").await;
    written.unwrap();
    let offer = relay.recorded(&offer_path).pop().unwrap();
    let key_message = relay.recorded(&key_path).pop().unwrap();

    // The offer served where the key message belongs: the writer refuses.
    relay.serve(&key_path, offer.clone());
    let result = ticket.connect_writer(&timed(ticket.config())).await;
    assert!(
        matches!(
            result,
            Err(Error::Exchange(ExchangeError::Refused {
                step: ExchangeStep::KeyMessage,
                reason: MessageError::Kind { .. }
            }))
        ),
        "{result:?}"
    );
    // The key message served as the offer: the reader publishes no key.
    relay.serve(&offer_path, key_message);
    let key_puts = relay.recorded(&key_path).len();
    let result = ticket.connect_reader(&timed(ticket.config())).await;
    assert!(
        matches!(
            result,
            Err(Error::Exchange(ExchangeError::Refused {
                step: ExchangeStep::Offer,
                reason: MessageError::Kind { .. }
            }))
        ),
        "{result:?}"
    );
    assert_eq!(relay.recorded(&key_path).len(), key_puts);
}

#[tokio::test]
async fn a_ticket_reader_refuses_a_stream_without_the_tickets_stanza() {
    // Someone without the ticket, who knows the reader's public key (the
    // relay saw the path), seals a stream to that key alone.
    let relay = HostileRelay::start();
    let ticket = Ticket::generate(&relay.connect_url(), "/inbox").unwrap();
    let readers_key = age::x25519::Identity::generate();
    let forged =
        cipher::Encryptor::with_recipients(Format::AgeRt, vec![Box::new(readers_key.to_public())])
            .unwrap()
            .encrypt_all(b"pay 100 EUR to mallory")
            .unwrap();
    relay.serve(&ticket.stream_path(), forged);
    let mut got = Vec::new();
    let result = async {
        let mut r =
            StreamReader::connect(&timed(ticket.config()), &ticket.static_opening()).await?;
        r.read_to_end(&mut got).await.map_err(Error::from)
    }
    .await;
    assert!(
        matches!(
            result,
            Err(Error::Decryption(cipher::Error::NoMatchingIdentity))
        ),
        "{result:?}"
    );
    assert!(got.is_empty());
}

#[tokio::test]
async fn every_wait_of_the_exchange_honours_the_connect_timeout() {
    let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let ticket = Ticket::generate(&relay.connect_url(), "/alone").unwrap();
    let short = |b: zebrastream::client::ConfigBuilder| {
        b.connect_timeout(Duration::from_secs(2)).build().unwrap()
    };
    let started = Instant::now();
    let reader = ticket.connect_reader(&short(ticket.config())).await;
    assert!(
        matches!(
            reader,
            Err(Error::Exchange(ExchangeError::Timeout {
                step: ExchangeStep::Offer,
                ..
            }))
        ),
        "{reader:?}"
    );
    let writer = ticket.connect_writer(&short(ticket.config())).await;
    assert!(
        matches!(
            writer,
            Err(Error::Exchange(ExchangeError::Timeout {
                step: ExchangeStep::Offer,
                ..
            }))
        ),
        "{writer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(reader
        .unwrap_err()
        .to_string()
        .contains("may not be using forward secrecy"));

    // A relay that stalls the key message is bounded the same way.
    let hostile = HostileRelay::start();
    let ticket = Ticket::generate(&hostile.connect_url(), "/stall").unwrap();
    let started = Instant::now();
    let writer = ticket.connect_writer(&short(ticket.config())).await;
    assert!(
        matches!(
            writer,
            Err(Error::Exchange(ExchangeError::Timeout {
                step: ExchangeStep::KeyMessage,
                ..
            }))
        ),
        "{writer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn a_passphrase_keys_the_same_exchange_between_our_clients() {
    let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let path = "/team/fresh";
    let passphrase = SecretString::from("correct horse battery staple");
    let config = Config::builder(path)
        .connect_url(relay.connect_url())
        .connect_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let writer_key = ExchangeKey::from_passphrase(&passphrase, path);
    let writer_config = config.clone();
    let producer = tokio::spawn(async move {
        let sealing = Sealing::fresh(writer_key, Format::AgeRt);
        let mut w = StreamWriter::connect(&writer_config, &sealing).await?;
        w.write_all(b"fresh").await.map_err(Error::from)?;
        w.shutdown().await.map_err(Error::from)?;
        Ok::<_, Error>(())
    });
    let reader_key = ExchangeKey::from_passphrase(&passphrase, path);
    let mut r = StreamReader::connect(&config, &Opening::fresh(reader_key))
        .await
        .unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    producer.await.unwrap().unwrap();
    assert_eq!(got, b"fresh");

    // Another passphrase: the reader refuses the offer, publishes nothing.
    let wrong = ExchangeKey::from_passphrase(&SecretString::from("wrong"), path);
    let writer_key = ExchangeKey::from_passphrase(&passphrase, path);
    let writer_config = config.clone();
    let producer = tokio::spawn(async move {
        StreamWriter::connect(&writer_config, &Sealing::fresh(writer_key, Format::AgeRt)).await
    });
    let result = StreamReader::connect(&config, &Opening::fresh(wrong)).await;
    assert!(
        matches!(
            result,
            Err(Error::Exchange(ExchangeError::Refused {
                step: ExchangeStep::Offer,
                reason: MessageError::NotAuthentic
            }))
        ),
        "{result:?}"
    );
    producer.abort();
    relay.shutdown().await;
}
