//! Proof that the relay sees only ciphertext: ticket and passphrase streams
//! through a real `zebrastream relay` with its forwarding tap, its logs
//! captured, and a relay that tampers with what it forwards.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::{Decryptor, Format};
use zebrastream::client::{Config, Error, Opening, Sealing, StreamReader, StreamWriter};
use zebrastream::relay::{CaptureTap, ForwardTap, Relay, RelayConfig, RelayHandle, TapVerdict};
use zebrastream::ticket::Ticket;

/// A marker that appears many times in every plaintext.
const MARKER: &[u8; 32] = b"ZEBRA-PLAINTEXT-MARKER-012345678";

fn plaintext(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Everything the relay logs, at every level, for the whole test.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The writer's configuration and key for a ticket stream without the
/// exchange (the ticket's static key: what these tests inspect on the wire).
fn static_writer(ticket: &Ticket) -> (Config, Sealing) {
    (
        ticket.config().build().unwrap(),
        ticket.static_sealing(Vec::new(), Format::AgeRt),
    )
}

/// The reader's side of [`static_writer`].
fn static_reader(ticket: &Ticket) -> (Config, Opening) {
    (ticket.config().build().unwrap(), ticket.static_opening())
}

async fn transfer(
    relay: &RelayHandle,
    (writer, sealing): (Config, Sealing),
    (reader, opening): (Config, Opening),
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let _ = relay;
    let payload = data.to_vec();
    let producer = tokio::spawn(async move {
        let mut w = StreamWriter::connect(&writer, &sealing).await?;
        w.write_all(&payload).await.map_err(Error::from)?;
        w.shutdown().await.map_err(Error::from)?;
        Ok::<_, Error>(())
    });
    let mut r = StreamReader::connect(&reader, &opening).await?;
    let mut got = Vec::new();
    let read = r.read_to_end(&mut got).await.map_err(Error::from);
    let produced = producer.await.expect("producer task");
    read?;
    produced?;
    Ok(got)
}

#[tokio::test]
async fn ticket_stream_relay_sees_no_plaintext_secret_or_key_in_bytes_or_logs() {
    let logs = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // #[tokio::test] runs every task on this thread, so this captures the relay's logs.
    let _guard = tracing::subscriber::set_default(subscriber);

    let tap = Arc::new(CaptureTap::new(16 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .unwrap();
    let ticket = Ticket::generate(&relay.connect_url(), "/hospital/trial-42").unwrap();
    let ticket_text = ticket.to_secret_string();
    // The consumer gets the ticket through its text, as a user would paste it.
    let reader_ticket = Ticket::parse(ticket_text.expose_secret()).unwrap();
    let data = plaintext(3 << 20);
    let got = transfer(
        &relay,
        (
            ticket
                .config()
                .access_token(SecretString::from("write-tok".to_owned()))
                .build()
                .unwrap(),
            ticket.static_sealing(Vec::new(), Format::AgeRt),
        ),
        (
            reader_ticket
                .config()
                .access_token(SecretString::from("read-tok".to_owned()))
                .build()
                .unwrap(),
            reader_ticket.static_opening(),
        ),
        &data,
    )
    .await
    .unwrap();
    assert_eq!(got, data);

    let path = ticket.stream_path();
    let seen = tap.bytes(&path);
    assert!(
        seen.len() > data.len(),
        "the tap saw the whole stream ({} bytes)",
        seen.len()
    );
    assert!(seen.starts_with(b"github.com/parsimonit/age-rt-encryption/v0.2\n"));
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the relay logged something to check");

    // Secrets that must appear neither on the wire nor in the logs.
    let secrets: Vec<Vec<u8>> = vec![
        MARKER.to_vec(),
        ticket_text.expose_secret().as_bytes().to_vec(),
        ticket_text.expose_secret().as_bytes()[3..40].to_vec(),
        ticket_secret(&reader_ticket).to_vec(),
        stream_key(&ticket_secret(&reader_ticket)).to_vec(),
    ];
    for secret in &secrets {
        assert!(!contains(&seen, secret), "forwarded bytes contain a secret");
        assert!(
            !contains(logs.as_bytes(), secret),
            "relay logs contain a secret"
        );
    }
    // The only ticket-derived value the relay may see is the path secret.
    assert!(!contains(logs.as_bytes(), b"read-tok") && !contains(logs.as_bytes(), b"write-tok"));
    relay.shutdown().await;
}

#[tokio::test]
async fn third_party_with_only_what_the_relay_saw_cannot_decrypt() {
    let tap = Arc::new(CaptureTap::new(1 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .unwrap();
    let ticket = Ticket::generate(&relay.connect_url(), "/exports").unwrap();
    let data = plaintext(100_000);
    transfer(
        &relay,
        static_writer(&ticket),
        static_reader(&ticket),
        &data,
    )
    .await
    .unwrap();
    let path = ticket.stream_path();
    let ciphertext = tap.bytes(&path);
    let segment = path.rsplit('/').next().unwrap();

    // Every key the relay could derive from what it saw: the path secret and
    // the full path through both HKDF labels and as raw bytes, and the same
    // strings as passphrases.
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for material in [segment.as_bytes(), path.as_bytes()] {
        for label in [
            &b"zebrastream key"[..],
            b"zebrastream path",
            b"zebrastream ticket wrap",
        ] {
            candidates.push(age_core::primitives::hkdf(&[], label, material).to_vec());
        }
        candidates.push(material.to_vec());
    }
    let (salt, body) = ticket_stanza(&ciphertext);
    for candidate in &candidates {
        // As a ticket secret (a forged ticket with the same relay and prefix)...
        let mut secret = [0u8; 32];
        let n = candidate.len().min(32);
        secret[..n].copy_from_slice(&candidate[..n]);
        let forged = Ticket::parse(&ticket_text_with_secret(&ticket, &secret)).unwrap();
        let attempt =
            Decryptor::with_identities(vec![Box::new(forged.identity())]).decrypt_all(&ciphertext);
        assert!(
            attempt.is_err(),
            "a relay-derivable ticket secret decrypted the stream"
        );
        // ...and directly as the stream key that wraps the file key.
        let mut key = [0u8; 32];
        key[..n].copy_from_slice(&candidate[..n]);
        let wrap = age_core::primitives::hkdf(&salt, b"zebrastream ticket wrap", &key);
        assert!(age_core::primitives::aead_decrypt(&wrap, 16, &body).is_err());
    }
    // Sanity check of the attempt itself: the real stream key does unwrap it.
    let real = stream_key(&ticket_secret(&ticket));
    let wrap = age_core::primitives::hkdf(&salt, b"zebrastream ticket wrap", &real);
    assert!(age_core::primitives::aead_decrypt(&wrap, 16, &body).is_ok());
    for pass in [segment, path.as_str(), ""] {
        let attempt = Decryptor::with_passphrase(SecretString::from(pass.to_owned()))
            .decrypt_all(&ciphertext);
        assert!(attempt.is_err());
    }
    // And the genuine ticket does decrypt the same captured bytes.
    let plain = Decryptor::with_identities(vec![Box::new(ticket.identity())])
        .decrypt_all(&ciphertext)
        .unwrap();
    assert_eq!(plain, data);
    relay.shutdown().await;
}

/// The 32-byte secret inside a ticket, decoded independently of the library
/// (format: "zs1" + base32hex-lowercase(version || secret || fields || checksum)).
fn ticket_secret(ticket: &Ticket) -> [u8; 32] {
    let text = ticket.to_secret_string();
    let raw = data_encoding::BASE32_DNSSEC
        .decode(&text.expose_secret().as_bytes()[3..])
        .unwrap();
    raw[1..33].try_into().unwrap()
}

/// The stream key as the ticket design defines it: HKDF-SHA256(S, "zebrastream key").
fn stream_key(secret: &[u8; 32]) -> [u8; 32] {
    age_core::primitives::hkdf(&[], b"zebrastream key", secret)
}

/// The same ticket text with another secret (and a fresh checksum).
fn ticket_text_with_secret(ticket: &Ticket, secret: &[u8; 32]) -> String {
    use sha2::Digest;
    let text = ticket.to_secret_string();
    let mut raw = data_encoding::BASE32_DNSSEC
        .decode(&text.expose_secret().as_bytes()[3..])
        .unwrap();
    raw.truncate(raw.len() - 4);
    raw[1..33].copy_from_slice(secret);
    let checksum = sha2::Sha256::digest(&raw);
    raw.extend_from_slice(&checksum[..4]);
    format!("zs1{}", data_encoding::BASE32_DNSSEC.encode(&raw))
}

/// The salt and body of the `zs-ticket` stanza in a captured header.
fn ticket_stanza(stream: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let header = String::from_utf8_lossy(&stream[..stream.len().min(4096)]).into_owned();
    let mut lines = header.lines();
    while let Some(line) = lines.next() {
        if let Some(salt) = line.strip_prefix("-> zs-ticket ") {
            let body = lines.next().unwrap();
            return (b64.decode(salt).unwrap(), b64.decode(body).unwrap());
        }
    }
    panic!("no zs-ticket stanza in the captured header");
}

/// A malicious relay: flips one bit at a given offset, or ends the stream
/// cleanly after a given number of bytes.
struct TamperingTap {
    flip_at: Option<u64>,
    end_after: Option<u64>,
    seen: Mutex<u64>,
}

impl ForwardTap for TamperingTap {
    fn forward(&self, _path: &str, chunk: &mut BytesMut) -> TapVerdict {
        let mut seen = self.seen.lock().unwrap();
        let start = *seen;
        *seen += chunk.len() as u64;
        if let Some(at) = self.flip_at {
            if (start..*seen).contains(&at) {
                chunk[(at - start) as usize] ^= 0x01;
            }
        }
        match self.end_after {
            Some(end) if *seen >= end => {
                chunk.truncate((end - start) as usize);
                TapVerdict::EndStream
            }
            _ => TapVerdict::Forward,
        }
    }
}

async fn tampered_transfer(flip_at: Option<u64>, end_after: Option<u64>) -> Error {
    let tap = Arc::new(TamperingTap {
        flip_at,
        end_after,
        seen: Mutex::new(0),
    });
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap))
        .await
        .unwrap();
    let ticket = Ticket::generate(&relay.connect_url(), "/t").unwrap();
    let (writer, sealing) = static_writer(&ticket);
    let (reader, opening) = static_reader(&ticket);
    let data = plaintext(500_000);
    let producer = tokio::spawn(async move {
        let mut w = StreamWriter::connect(&writer, &sealing).await?;
        w.write_all(&data).await.map_err(Error::from)?;
        w.shutdown().await.map_err(Error::from)
    });
    let mut r = StreamReader::connect(&reader, &opening).await.unwrap();
    let mut got = Vec::new();
    let err = r
        .read_to_end(&mut got)
        .await
        .expect_err("tampering must be detected");
    let _ = producer.await;
    relay.abort();
    Error::from(err)
}

#[tokio::test]
async fn a_relay_that_flips_one_bit_makes_the_consumer_fail_authentication() {
    // 300 bytes in: inside the first chunk's ciphertext (after header + nonce).
    let err = tampered_transfer(Some(300), None).await;
    assert!(
        matches!(
            err,
            Error::Decryption(zebrastream::cipher::Error::ChunkAuthentication { .. })
        ),
        "{err:?}"
    );
    // In the header: the HMAC (or stanza) check fails before any payload byte.
    let err = tampered_transfer(Some(60), None).await;
    assert!(matches!(err, Error::Decryption(_)), "{err:?}");
}

#[tokio::test]
async fn a_relay_that_drops_the_tail_makes_the_consumer_fail_truncated() {
    let err = tampered_transfer(None, Some(200_000)).await;
    assert!(matches!(err, Error::Truncated), "{err:?}");
}

#[test]
fn ticket_keys_are_fresh_by_default_and_take_the_format_asked_for() {
    let ticket = Ticket::generate("http://127.0.0.1:1/v0", "/x").unwrap();
    assert!(matches!(
        ticket.sealing(Format::AgeV1),
        Sealing::Fresh {
            format: Format::AgeV1,
            ..
        }
    ));
    assert!(matches!(ticket.opening(), Opening::Fresh(_)));
    let fixed = ticket.static_sealing(Vec::new(), Format::AgeV1);
    assert!(format!("{fixed:?}").contains("AgeV1"));
    assert_eq!(fixed.format(), Some(Format::AgeV1));
}
