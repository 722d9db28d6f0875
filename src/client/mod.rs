//! Layer 3: the client library: [`StreamWriter`] (`AsyncWrite`) and
//! [`StreamReader`] (`AsyncRead`) composed from the protocol client
//! ([`crate::api`]) and the stream cipher ([`crate::cipher`]).
//!
//! Build a [`Config`] once, then connect a writer (producer) or a reader
//! (consumer). Whichever side arrives first waits for the other.

pub mod blocking;
mod config;
mod encryption;
mod error;
mod reader;
mod transfer;
mod writer;

pub use config::{
    AutoFlush, Config, ConfigBuilder, ACCESS_TOKEN_ENV, DEFAULT_CONNECT_URL,
    DEFAULT_WRITE_BUFFER_SIZE, MAX_WRITE_BUFFER_SIZE,
};
pub use encryption::{Encryption, SharedIdentity, SharedRecipient};
pub use error::Error;
pub use reader::StreamReader;
pub use transfer::{pull, pull_file, push, push_file, TransferReport};
pub use writer::StreamWriter;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_static<T: Send + 'static>() {}
    fn send_sync_static<T: Send + Sync + 'static>() {}

    /// Streams can move into spawned tasks; configurations can be shared.
    #[test]
    fn thread_safety() {
        send_static::<StreamWriter>();
        send_static::<StreamReader>();
        send_static::<blocking::Writer>();
        send_static::<blocking::Reader>();
        send_sync_static::<Config>();
        send_sync_static::<Encryption>();
        send_sync_static::<Error>();
    }
}
