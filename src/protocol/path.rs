//! Stream paths: the validated `/segment/segment` names that streams meet on.
//!
//! One validator for every side: the relay answers `400 Bad Request` to a
//! path [`StreamPath::parse`] refuses, and the client checks its path with
//! the same function before it connects, so it never sends a path the relay
//! refuses.
//!
//! A single trailing `/` is refused, not stripped. The hosted service's
//! Management API tolerates one, but whether `/a/` and `/a` then name one
//! stream or two is the relay's choice; stripping it on our side would make
//! a writer on `/a/` meet a reader on `/a` here and miss one elsewhere. A
//! clear error at once is the safe answer (the official Python client passes
//! `/a/` through; against our relay it gets the same refusal as a 400).

use std::fmt;

/// Longest stream path accepted, in bytes (the Management API's limit).
pub const MAX_PATH_LEN: usize = 1000;

/// A validated stream path such as `/userspace/project/my-stream`.
///
/// Rules (anything else is answered with `400 Bad Request`): it starts with
/// `/`, has at least one segment, is at most [`MAX_PATH_LEN`] bytes, every
/// segment is non-empty and made of ASCII letters, digits, `.`, `_`, `-`
/// and `~`, no segment is `.` or `..` (no traversal), and there is no
/// trailing `/` (see the module notes). Percent-encoded bytes are refused rather than decoded, so two
/// spellings can never name the same stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPath(String);

/// Why a stream path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty or just `/`.
    #[error("stream path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("stream path must start with '/'")]
    NotAbsolute,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("stream path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    /// `//` inside the path.
    #[error("stream path has an empty segment ('//')")]
    EmptySegment,
    /// A `/` at the end (`/a/b/`).
    #[error("stream path ends with '/' (name the stream without it: /a/b, not /a/b/)")]
    TrailingSlash,
    /// A `.` or `..` segment.
    #[error("stream path has a '.' or '..' segment")]
    DotSegment,
    /// A byte outside the allowed set.
    #[error("stream path has a character outside [A-Za-z0-9._~-]: {0:?}")]
    BadChar(char),
}

impl StreamPath {
    /// Validates `raw` (the part of the URL path after the API prefix).
    ///
    /// ```
    /// use zebrastream::protocol::StreamPath;
    /// assert_eq!(StreamPath::parse("/team/data-1").unwrap().as_str(), "/team/data-1");
    /// assert!(StreamPath::parse("/team/../etc").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() || raw == "/" {
            return Err(PathError::Empty);
        }
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if raw.ends_with('/') {
            return Err(PathError::TrailingSlash);
        }
        for segment in raw[1..].split('/') {
            check_segment(segment)?;
        }
        Ok(StreamPath(raw.to_owned()))
    }

    /// The path as text, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` equals `prefix` or lies below it, segment-wise:
    /// `/a/b` is below `/a` but `/ab` is not.
    pub fn is_within(&self, prefix: &StreamPath) -> bool {
        match self.0.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if segment == "." || segment == ".." {
        return Err(PathError::DotSegment);
    }
    match segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~')))
    {
        Some(bad) => Err(PathError::BadChar(bad)),
        None => Ok(()),
    }
}

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "/a",
            "/userspace/project/my-stream",
            "/A.b_c~d-9/x",
            "/..a/b.",
        ] {
            assert_eq!(StreamPath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_odd_paths_with_a_named_reason() {
        assert_eq!(StreamPath::parse(""), Err(PathError::Empty));
        assert_eq!(StreamPath::parse("/"), Err(PathError::Empty));
        assert_eq!(StreamPath::parse("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(StreamPath::parse("/a//b"), Err(PathError::EmptySegment));
        assert_eq!(StreamPath::parse("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(StreamPath::parse("/a//"), Err(PathError::TrailingSlash));
        assert_eq!(StreamPath::parse("/a/../b"), Err(PathError::DotSegment));
        assert_eq!(StreamPath::parse("/a/./b"), Err(PathError::DotSegment));
        assert_eq!(StreamPath::parse("/a/%2e%2e"), Err(PathError::BadChar('%')));
        assert_eq!(StreamPath::parse("/a b"), Err(PathError::BadChar(' ')));
        let long = format!("/{}", "x".repeat(MAX_PATH_LEN));
        assert_eq!(StreamPath::parse(&long), Err(PathError::TooLong));
    }

    #[test]
    fn within_is_segment_wise() {
        let p = |s| StreamPath::parse(s).unwrap();
        assert!(p("/a/b").is_within(&p("/a")));
        assert!(p("/a").is_within(&p("/a")));
        assert!(!p("/ab").is_within(&p("/a")));
        assert!(!p("/a").is_within(&p("/a/b")));
    }
}
