//! The wire conventions that clients and the relay share, defined once.
//!
//! The client ([`api`](crate::api)) and the relay ([`relay`](crate::relay))
//! both read and write the wire through this module, so they cannot drift
//! apart:
//!
//! - stream paths ([`StreamPath`]): one validator, the relay's and the client's;
//! - the Connect and Data APIs ([`ConnectMode`], [`ConnectQuery`],
//!   [`CONNECT_PREFIX`], [`DATA_PREFIX`], [`data_url`], the base URL check):
//!   the client encodes the Connect request, the relay decodes it;
//! - status lines ([`StatusLine`]): the relay encodes the `PUT` response's
//!   `[STATE:…]`/`[ERROR:…]` lines, the client decodes them
//!   (`StatusLineCodec`, with the `client` feature).
//!
//! Nothing here does I/O.
//!
//! This module also holds the naming of *side paths*: the extra streams one
//! transfer uses besides its data stream (the forward-secrecy key exchange,
//! later resume). A side path is the transfer's stream path plus one last
//! segment that starts with [`SIDE_PATH_MARKER`], so a token that covers the
//! transfer's path covers its side paths, and a relay counts them with their
//! transfer (per-token quotas) without knowing what they carry.
//!
//! ```
//! use zebrastream::protocol::{side_path, transfer_path};
//!
//! let offer = side_path("/hospital/trial-42", "fs-offer");
//! assert_eq!(offer, "/hospital/trial-42/~fs-offer");
//! assert_eq!(transfer_path(&offer), "/hospital/trial-42");
//! assert_eq!(transfer_path("/hospital/trial-42"), "/hospital/trial-42");
//! ```

mod connect;
pub(crate) mod path;
mod status_line;

#[cfg(any(feature = "client", feature = "relay"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "client", feature = "relay"))))]
pub use connect::parse_base_url;
#[cfg(feature = "relay")]
pub(crate) use connect::query_value;
pub use connect::{
    connect_url, data_url, strip_api_prefix, BaseUrlError, ConnectMode, ConnectQuery,
    ConnectQueryError, ACCESS_TOKEN_PARAM, CONNECT_PREFIX, DATA_PREFIX, MODE_PARAM, REDIRECT_PARAM,
    TIMEOUT_PARAM,
};
pub use path::{PathError, StreamPath, MAX_PATH_LEN};
pub use status_line::{
    StatusLine, CONNECTED, MAX_STATUS_LINE, RECEIVER_PREMATURE_DISCONNECT, TRANSFER_SUCCESSFUL,
};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use status_line::{StatusLineCodec, StatusLineError};

/// The first character of a side path's last segment.
pub const SIDE_PATH_MARKER: char = '~';

/// The side path `name` of the transfer on `transfer` (a stream path).
pub fn side_path(transfer: &str, name: &str) -> String {
    format!("{transfer}/{SIDE_PATH_MARKER}{name}")
}

/// The transfer a stream path belongs to: the parent of a side path, or the
/// path itself.
pub fn transfer_path(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some((parent, last)) if !parent.is_empty() && last.starts_with(SIDE_PATH_MARKER) => parent,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_last_segment_is_a_side_path() {
        assert_eq!(transfer_path("/a/~x"), "/a");
        assert_eq!(transfer_path("/a/b~x"), "/a/b~x");
        assert_eq!(transfer_path("/~x"), "/~x");
        assert_eq!(transfer_path("/a/~x/b"), "/a/~x/b");
        assert_eq!(transfer_path(&side_path("/a/b", "fs-key")), "/a/b");
    }
}
