//! The wire conventions that clients and the relay share, defined once.
//!
//! Stream paths ([`StreamPath`]) are validated here, by the relay and the
//! client alike.
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

pub(crate) mod path;

pub use path::{PathError, StreamPath, MAX_PATH_LEN};

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
