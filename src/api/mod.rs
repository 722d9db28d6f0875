//! Layer 2: the protocol client for the Connect API and the Data API.
//!
//! This layer moves opaque bytes; it knows nothing about encryption.
//!
//! The wire forms (modes, the Connect query, status lines, URL checks) are
//! [`crate::protocol`]'s, shared with the relay.
//!
//! - [`ApiClient::connect`]: `GET {connect_url}{path}?mode=await-reader|await-writer[&timeout=N+1]`
//!   returns the data URL once the peer is there; connection errors and 5xx
//!   are retried with capped exponential backoff and jitter ([`RetryPolicy`]),
//!   401/403 give [`Error::Auth`].
//! - [`ApiClient::upload`]: the Data API `PUT` with a chunked body fed through
//!   a bounded queue ([`UploadSink`]) while the status lines are read
//!   concurrently ([`UploadStatus`], [`StatusLineCodec`](crate::protocol::StatusLineCodec)).
//! - [`ApiClient::download`]: the Data API `GET`, read from the network on
//!   demand ([`Download`]).
//!
//! Nothing is retried once a data exchange started.
//!
//! The access token, and the stream, go only to the connect URL's origin and
//! the origins listed with [`ApiClientBuilder::token_origins`] (for the hosted
//! connect URL also `https://data.zebrastream.io`): a Connect answer naming
//! another origin fails with [`Error::ForeignDataOrigin`], an `https` connect
//! URL answered with an `http` data URL with [`Error::InsecureDataUrl`],
//! before any request goes there.

mod api_client;
mod connect;
mod download;
mod error;
mod origin;
mod retry;
#[cfg(test)]
pub(crate) mod test_server;
mod upload;

pub use api_client::{ApiClient, ApiClientBuilder};
pub use connect::{check_stream_path, parse_connect_url};
pub(crate) use download::on_multi_thread_runtime;
pub use download::Download;
pub use error::{Error, Operation};
pub use origin::parse_token_origin;
pub use retry::{RetryPolicy, RetryRun};
pub use upload::{Upload, UploadSink, UploadStatus};
