//! The Connect API and the Data API on the wire: their URL prefixes, the
//! Connect request's query, the base URL both are reached under, and how a
//! data URL is formed.
//!
//! ```text
//! GET  {base}/v0/<stream path>?mode=await-reader|await-writer[&timeout=N][&redirect=true]
//! PUT  {base}/data/<stream path>        (producer)
//! GET  {base}/data/<stream path>        (consumer)
//! ```
//!
//! A client is given the *connect URL* (`{base}/v0`); the relay answers a
//! Connect request with the data URL. The client encodes its request with
//! [`ConnectQuery::encode`], the relay decodes it with
//! [`ConnectQuery::decode`], so both read the same names and values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// URL prefix of the Connect API (after the relay's base URL).
pub const CONNECT_PREFIX: &str = "/v0";
/// URL prefix of the Data API (after the relay's base URL).
pub const DATA_PREFIX: &str = "/data";

/// Query parameter of a Connect request: the [`ConnectMode`].
pub const MODE_PARAM: &str = "mode";
/// Query parameter of a Connect request: how long to wait for the peer, in
/// seconds (fractions allowed).
pub const TIMEOUT_PARAM: &str = "timeout";
/// Query parameter of a Connect request: `true` (or `1`) asks for a `307`
/// redirect to the data URL instead of the URL as text.
pub const REDIRECT_PARAM: &str = "redirect";
/// Query parameter of any request: the access token, for clients that cannot
/// send an `Authorization: Bearer` header.
pub const ACCESS_TOKEN_PARAM: &str = "accesstoken";

/// Which peer a Connect call waits for.
///
/// ```
/// use zebrastream::protocol::ConnectMode;
/// assert_eq!(ConnectMode::AwaitReader.as_query(), "await-reader");
/// assert_eq!("await-writer".parse(), Ok(ConnectMode::AwaitWriter));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectMode {
    /// `await-reader`, sent by a producer: wait until a reader (consumer) is there.
    AwaitReader,
    /// `await-writer`, sent by a consumer: wait until a writer (producer) is there.
    AwaitWriter,
}

impl ConnectMode {
    /// The `mode=` query value.
    pub const fn as_query(self) -> &'static str {
        match self {
            ConnectMode::AwaitReader => "await-reader",
            ConnectMode::AwaitWriter => "await-writer",
        }
    }
}

impl FromStr for ConnectMode {
    type Err = ConnectQueryError;

    /// Parses a `mode=` query value (exactly `await-reader` or `await-writer`).
    fn from_str(value: &str) -> Result<Self, ConnectQueryError> {
        [ConnectMode::AwaitReader, ConnectMode::AwaitWriter]
            .into_iter()
            .find(|mode| mode.as_query() == value)
            .ok_or_else(|| ConnectQueryError::BadMode(value.to_owned()))
    }
}

impl fmt::Display for ConnectMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_query())
    }
}

/// Why the query of a Connect request was refused (the relay answers
/// `400 Bad Request` with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectQueryError {
    /// There is no `mode=` parameter.
    #[error("mode is missing: it must be await-reader (producer) or await-writer (consumer)")]
    MissingMode,
    /// The `mode=` value is neither `await-reader` nor `await-writer`.
    #[error("mode must be await-reader (producer) or await-writer (consumer), got {0:?}")]
    BadMode(String),
    /// The `timeout=` value is not a non-negative number of seconds.
    #[error("timeout must be a number of seconds, got {0:?}")]
    BadTimeout(String),
}

/// The query of a Connect request: what the caller waits for and how long.
///
/// ```
/// use std::time::Duration;
/// use zebrastream::protocol::{ConnectMode, ConnectQuery};
///
/// let query = ConnectQuery::new(ConnectMode::AwaitReader).timeout(Duration::from_secs(3));
/// assert_eq!(query.encode(), "mode=await-reader&timeout=3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectQuery {
    /// Which peer the caller waits for.
    pub mode: ConnectMode,
    /// How long the relay should hold the request; `None`: the relay's default.
    pub timeout: Option<Duration>,
    /// Whether the answer is a `307` redirect to the data URL (not what the
    /// official client asks for: it reads the data URL from the body).
    pub redirect: bool,
}

impl ConnectQuery {
    /// A query for `mode`, with the relay's default wait and no redirect.
    pub fn new(mode: ConnectMode) -> Self {
        ConnectQuery {
            mode,
            timeout: None,
            redirect: false,
        }
    }

    /// Asks the relay to wait at most `timeout` (sent in whole seconds,
    /// rounded up).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The query string, without the `?`: `mode=…[&timeout=N][&redirect=true]`.
    /// Every value is plain ASCII, so nothing needs percent-encoding.
    pub fn encode(&self) -> String {
        let mut query = format!("{MODE_PARAM}={}", self.mode.as_query());
        if let Some(timeout) = self.timeout {
            let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
            query.push_str(&format!("&{TIMEOUT_PARAM}={secs}"));
        }
        if self.redirect {
            query.push_str(&format!("&{REDIRECT_PARAM}=true"));
        }
        query
    }

    /// Reads a Connect request's query string (without the `?`; values are
    /// percent-decoded, the first of a repeated name counts, unknown names
    /// are ignored). `mode` is required; `timeout` is a non-negative number
    /// of seconds (fractions allowed, a huge one saturates); `redirect` is
    /// on for `true` or `1`.
    #[cfg(any(feature = "client", feature = "relay"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "client", feature = "relay"))))]
    pub fn decode(query: &str) -> Result<Self, ConnectQueryError> {
        let mode = query_value(query, MODE_PARAM)
            .ok_or(ConnectQueryError::MissingMode)?
            .parse()?;
        let timeout = query_value(query, TIMEOUT_PARAM)
            .map(|raw| parse_seconds(&raw).ok_or(ConnectQueryError::BadTimeout(raw)))
            .transpose()?;
        let redirect = query_value(query, REDIRECT_PARAM).is_some_and(|v| v == "true" || v == "1");
        Ok(ConnectQuery {
            mode,
            timeout,
            redirect,
        })
    }
}

/// A non-negative, finite number of seconds; too large saturates.
#[cfg(any(feature = "client", feature = "relay"))]
fn parse_seconds(raw: &str) -> Option<Duration> {
    let secs: f64 = raw.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The value of query parameter `name` in `query` (percent-decoded; the
/// first one if it is repeated).
#[cfg(any(feature = "client", feature = "relay"))]
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The connect URL of a relay reached at `base` (`{base}/v0`; a trailing
/// `/` of `base` is dropped).
///
/// ```
/// use zebrastream::protocol::connect_url;
/// assert_eq!(connect_url("https://relay.example/"), "https://relay.example/v0");
/// ```
pub fn connect_url(base: &str) -> String {
    format!("{}{CONNECT_PREFIX}", base.trim_end_matches('/'))
}

/// The data URL of stream `path` on a relay reached at `base`:
/// `{base}/data{path}` (a trailing `/` of `base` is dropped, and `path` may
/// be given with or without its leading `/`).
///
/// ```
/// use zebrastream::protocol::data_url;
/// assert_eq!(data_url("http://127.0.0.1:8080", "/a/b"), "http://127.0.0.1:8080/data/a/b");
/// assert_eq!(data_url("http://127.0.0.1:8080/", "a/b"), "http://127.0.0.1:8080/data/a/b");
/// ```
pub fn data_url(base: &str, path: &str) -> String {
    format!(
        "{}{DATA_PREFIX}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The part of a request path after the API `prefix`, if the path starts
/// with that prefix as a whole segment: `/v0/a/b` gives `/a/b`, `/v0` gives
/// `""`, `/v00/a` gives `None`. The rest is not validated yet.
pub fn strip_api_prefix<'a>(request_path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = request_path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Why a relay base URL (a client's connect URL, a relay's public URL) was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// Not an absolute URL.
    #[error("it must be an absolute http:// or https:// URL ({0})")]
    NotAbsolute(String),
    /// A scheme other than `http` or `https`.
    #[error("the scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// A user name or password in the URL.
    #[error("it must not contain credentials (use the access token)")]
    Credentials,
    /// A `?query` or `#fragment`: paths are appended to a base URL.
    #[error("it must not have a query or fragment")]
    QueryOrFragment,
}

/// Parses and checks a relay base URL: absolute `http` or `https`, no
/// credentials (the access token is the only secret sent), no query or
/// fragment (stream paths are appended to it). Used for the client's
/// connect URL and the relay's public URL.
///
/// ```
/// use zebrastream::protocol::{parse_base_url, BaseUrlError};
/// assert!(parse_base_url("https://connect.zebrastream.io/v0").is_ok());
/// assert_eq!(parse_base_url("http://x/v0?a=1"), Err(BaseUrlError::QueryOrFragment));
/// ```
#[cfg(any(feature = "client", feature = "relay"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "client", feature = "relay"))))]
pub fn parse_base_url(text: &str) -> Result<url::Url, BaseUrlError> {
    let parsed = url::Url::parse(text).map_err(|e| BaseUrlError::NotAbsolute(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(BaseUrlError::Scheme(parsed.scheme().to_owned()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(BaseUrlError::Credentials);
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(BaseUrlError::QueryOrFragment);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_nothing_else_parses() {
        for mode in [ConnectMode::AwaitReader, ConnectMode::AwaitWriter] {
            assert_eq!(mode.as_query().parse(), Ok(mode));
            assert_eq!(mode.to_string(), mode.as_query());
        }
        for bad in ["", "await", "Await-Reader", "await-reader ", "read"] {
            assert_eq!(
                bad.parse::<ConnectMode>(),
                Err(ConnectQueryError::BadMode(bad.into()))
            );
        }
    }

    #[test]
    fn timeout_is_sent_in_whole_seconds_rounded_up() {
        let q = |t| ConnectQuery::new(ConnectMode::AwaitWriter).timeout(t);
        assert_eq!(
            q(Duration::from_secs(2)).encode(),
            "mode=await-writer&timeout=2"
        );
        assert_eq!(
            q(Duration::from_millis(1500)).encode(),
            "mode=await-writer&timeout=2"
        );
        assert_eq!(q(Duration::ZERO).encode(), "mode=await-writer&timeout=0");
        assert_eq!(
            ConnectQuery::new(ConnectMode::AwaitReader).encode(),
            "mode=await-reader"
        );
    }

    #[test]
    fn prefixes_split_whole_segments_only() {
        assert_eq!(strip_api_prefix("/v0/a/b", CONNECT_PREFIX), Some("/a/b"));
        assert_eq!(strip_api_prefix("/v0", CONNECT_PREFIX), Some(""));
        assert_eq!(strip_api_prefix("/v00/a", CONNECT_PREFIX), None);
        assert_eq!(strip_api_prefix("/data/a", CONNECT_PREFIX), None);
        assert_eq!(strip_api_prefix("/data/a", DATA_PREFIX), Some("/a"));
    }

    #[test]
    fn urls_are_formed_under_the_base() {
        assert_eq!(connect_url("http://h:1"), "http://h:1/v0");
        assert_eq!(
            data_url("http://h:1/zs/", "/a/~x"),
            "http://h:1/zs/data/a/~x"
        );
        let data = data_url("http://h:1", "/a");
        assert_eq!(
            strip_api_prefix(&data["http://h:1".len()..], DATA_PREFIX),
            Some("/a")
        );
    }

    #[cfg(any(feature = "client", feature = "relay"))]
    mod decoding {
        use super::*;

        #[test]
        fn decodes_what_the_relay_reads() {
            let q = ConnectQuery::decode("mode=await%2Dreader&timeout=0.5&redirect=1").unwrap();
            assert_eq!(q.mode, ConnectMode::AwaitReader);
            assert_eq!(q.timeout, Some(Duration::from_millis(500)));
            assert!(q.redirect);
            let q = ConnectQuery::decode("x=1&mode=await-writer&mode=await-reader").unwrap();
            assert_eq!(q, ConnectQuery::new(ConnectMode::AwaitWriter));
            let q = ConnectQuery::decode("mode=await-writer&timeout=1e300").unwrap();
            assert_eq!(q.timeout, Some(Duration::MAX), "saturates");
        }

        #[test]
        fn refuses_bad_queries_with_a_named_reason() {
            assert_eq!(
                ConnectQuery::decode(""),
                Err(ConnectQueryError::MissingMode)
            );
            assert_eq!(
                ConnectQuery::decode("timeout=3"),
                Err(ConnectQueryError::MissingMode)
            );
            assert_eq!(
                ConnectQuery::decode("mode=push"),
                Err(ConnectQueryError::BadMode("push".into()))
            );
            for bad in ["-1", "soon", "NaN", "inf", ""] {
                assert_eq!(
                    ConnectQuery::decode(&format!("mode=await-reader&timeout={bad}")),
                    Err(ConnectQueryError::BadTimeout(bad.into())),
                );
            }
            // The mode is checked first.
            assert_eq!(
                ConnectQuery::decode("mode=x&timeout=soon"),
                Err(ConnectQueryError::BadMode("x".into()))
            );
        }

        #[test]
        fn base_urls_are_checked() {
            for (bad, reason) in [
                ("connect.zebrastream.io", "absolute"),
                ("ftp://x/v0", "\"ftp\""),
                ("http://x/v0?a=1", "query"),
                ("http://x/v0#f", "fragment"),
                ("https://user:hunter2@relay.example/v0", "credentials"),
            ] {
                let err = parse_base_url(bad).unwrap_err();
                assert!(err.to_string().contains(reason), "{bad}: {err}");
                assert!(!err.to_string().contains("hunter2"), "{err}");
            }
            assert_eq!(
                parse_base_url("http://127.0.0.1:8080/v0/")
                    .unwrap()
                    .as_str(),
                "http://127.0.0.1:8080/v0/"
            );
        }

        proptest::proptest! {
            /// What a client encodes, the relay decodes to the same query
            /// (timeouts in the whole seconds they are sent in).
            #[test]
            fn encode_then_decode_is_the_same_query(
                reader in proptest::bool::ANY,
                timeout in proptest::option::of(0u64..10_000_000_000),
                redirect in proptest::bool::ANY,
            ) {
                let mode = if reader { ConnectMode::AwaitReader } else { ConnectMode::AwaitWriter };
                let query = ConnectQuery { mode, timeout: timeout.map(Duration::from_secs), redirect };
                proptest::prop_assert_eq!(ConnectQuery::decode(&query.encode()), Ok(query));
            }
        }
    }
}
