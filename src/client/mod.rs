//! Layer 3: the client library: [`StreamWriter`] (`AsyncWrite`) and
//! [`StreamReader`] (`AsyncRead`) composed from the protocol client
//! ([`crate::api`]) and the stream cipher ([`crate::cipher`]).
//!
//! Build a [`Config`] once, then connect a writer (producer) or a reader
//! (consumer). Whichever side arrives first waits for the other.

mod config;
mod encryption;
mod error;
mod reader;
mod writer;

pub use config::{
    AutoFlush, Config, ConfigBuilder, ACCESS_TOKEN_ENV, DEFAULT_CONNECT_URL,
    DEFAULT_WRITE_BUFFER_SIZE, MAX_WRITE_BUFFER_SIZE,
};
pub use encryption::Encryption;
pub use error::Error;
pub use reader::StreamReader;
pub use writer::StreamWriter;
