//! # zebrastream
//!
//! End-to-end-encrypted HTTP bytestreams for the ZebraStream protocol: a
//! producer streams bytes of any length into a relay with a chunked HTTP
//! `PUT`, a consumer reads them with `GET`, and the Connect API lets whichever
//! side arrives first wait for the other. Every chunk is sealed with
//! ChaCha20-Poly1305 (age-rt v0.2 or age v1 framing) before it leaves the
//! producer, so the relay only ever sees ciphertext.
//!
//! The crate is built in layers; each only uses the ones listed before it:
//!
//! | layer | module | what it is |
//! |---|---|---|
//! | 0 wire conventions | [`protocol`] | the wire both the client and the relay speak, defined once: stream paths, Connect modes and query, URL prefixes, status lines (encoder and decoder) |
//! | 1 stream cipher | [`cipher`] | sans-IO age-rt v0.2 / age v1 encoder and decoder, plus thin `tokio::io` and `std::io` adapters |
//! | 2 protocol client | [`api`] | Connect API and Data API over HTTP, retries |
//! | 3 streams | [`client`] | `StreamWriter: AsyncWrite`, `StreamReader: AsyncRead`, blocking wrappers, `push`/`pull` |
//! | 4 relay | [`relay`] | a Connect + Data API relay that forwards opaque bytes |
//!
//! Beside layer 3, [`ticket`] turns one copy-pasteable string into a relay URL, an
//! unguessable stream path and a stream key the relay never sees, and
//! [`forward_secrecy`] gives a live transfer a fresh key of the reader's (a
//! replayed stream fails; a key leaked later opens nothing recorded).
//!
//! A producer and a consumer through an in-process relay, end to end
//! encrypted to an X25519 key (the relay never sees the plaintext):
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use zebrastream::cipher::Format;
//! use zebrastream::client::{Config, Opening, Sealing, StreamReader, StreamWriter};
//! use zebrastream::relay::{Relay, RelayConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let relay = Relay::bind(RelayConfig::open_loopback()).await?;
//! let key = age::x25519::Identity::generate();
//! let config = Config::builder("/demo/stream")
//!     .connect_url(relay.connect_url())
//!     .build()?;
//! let sealing = Sealing::recipients(vec![Box::new(key.to_public())], Format::AgeRt);
//! let opening = Opening::identities(vec![Box::new(key)]);
//!
//! let producer_config = config.clone(); // one HTTP client, shared
//! let producer = tokio::spawn(async move {
//!     let mut writer = StreamWriter::connect(&producer_config, &sealing).await?;
//!     writer.write_all(b"hello, partner").await?;
//!     writer.shutdown().await?; // resolves once the relay confirmed delivery
//!     Ok::<_, zebrastream::client::Error>(())
//! });
//! let mut reader = StreamReader::connect(&config, &opening).await?;
//! let mut received = Vec::new();
//! reader.read_to_end(&mut received).await?; // EOF only after the authenticated end
//! producer.await??;
//! assert_eq!(received, b"hello, partner");
//! relay.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod api;
pub mod cipher;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod forward_secrecy;
pub mod protocol;
#[cfg(feature = "relay")]
#[cfg_attr(docsrs, doc(cfg(feature = "relay")))]
pub mod relay;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod ticket;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(all(doctest, feature = "client", feature = "relay"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// docs/client.md's examples (the library's quick start), compiled as doc
/// tests so they build as the page tells a new user to set them up.
#[cfg(all(doctest, feature = "client", feature = "relay"))]
#[doc = include_str!("../docs/client.md")]
struct ClientGuideDoctests;
