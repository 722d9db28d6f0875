//! Forward-secret ticket transfers through a real relay: the stream is
//! encrypted to the consumer's one-time key only, so the ticket alone (leaked
//! after the transfer) cannot decrypt what the relay recorded.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::{Decryptor, Format};
use zebrastream::client::{StreamReader, StreamWriter};
use zebrastream::relay::{CaptureTap, Relay, RelayConfig};
use zebrastream::ticket::Ticket;

#[tokio::test]
async fn forward_secret_transfer_cannot_be_decrypted_with_the_ticket_afterwards() {
    let tap = Arc::new(CaptureTap::new(8 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .unwrap();
    let ticket = Ticket::generate(&relay.connect_url(), "/live").unwrap();
    let consumer_ticket = Ticket::parse(secrecy::ExposeSecret::expose_secret(
        &ticket.to_secret_string(),
    ))
    .unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();

    let payload = data.clone();
    let producer = tokio::spawn(async move {
        let encryption = ticket.forward_secret_writer(Format::AgeRt).await.unwrap();
        let config = ticket
            .writer_config()
            .encryption(encryption)
            .build()
            .unwrap();
        let mut w = StreamWriter::connect(&config).await.unwrap();
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
        ticket
    });
    let encryption = consumer_ticket.forward_secret_reader().await.unwrap();
    let config = consumer_ticket
        .reader_config()
        .encryption(encryption)
        .build()
        .unwrap();
    let mut r = StreamReader::connect(&config).await.unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    let ticket = producer.await.unwrap();
    assert_eq!(got, data);

    // What the relay recorded: the reverse stream (the one-time public key,
    // sealed to the ticket) and the main stream (sealed to that key only).
    let reverse = tap.bytes(&ticket.reverse_stream_path());
    assert!(!reverse.is_empty());
    assert!(
        !String::from_utf8_lossy(&reverse).contains("age1"),
        "the one-time key travels encrypted"
    );
    let main = tap.bytes(&ticket.stream_path());
    let header = String::from_utf8_lossy(&main[..300]).into_owned();
    assert!(header.contains("-> X25519 "), "{header}");
    assert!(!header.contains("zs-ticket"), "{header}");

    // The leaked ticket decrypts the reverse stream but not the data.
    let key_message = Decryptor::with_identities(vec![Box::new(ticket.identity())])
        .decrypt_all(&reverse)
        .unwrap();
    assert!(String::from_utf8(key_message).unwrap().starts_with("age1"));
    let leaked = Decryptor::with_identities(vec![Box::new(ticket.identity())]).decrypt_all(&main);
    assert!(
        matches!(leaked, Err(zebrastream::cipher::Error::NoMatchingIdentity)),
        "{leaked:?}"
    );
    relay.shutdown().await;
}
