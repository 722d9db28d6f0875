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
//! | 1 stream cipher | [`cipher`] | sans-IO age-rt v0.2 / age v1 encoder and decoder, plus thin `tokio::io` and `std::io` adapters |
//! | 2 protocol client | [`api`] | Connect API and Data API over HTTP, status lines, retries |
//! | 3 streams | [`client`] | `StreamWriter: AsyncWrite`, `StreamReader: AsyncRead`, blocking wrappers, `push`/`pull` |
//! | 4 relay | [`relay`] | a Connect + Data API relay that forwards opaque bytes |
//!
//! Beside layer 3, [`ticket`] turns one copy-pasteable string into a relay URL, an
//! unguessable stream path and a stream key the relay never sees.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod cipher;
pub mod client;
pub mod relay;
pub mod ticket;
