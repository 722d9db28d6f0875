//! The Connect API request: modes, URL building, and the data URL answer.

use std::time::Duration;

use url::Url;

use super::Error;
use crate::protocol::StreamPath;

/// Which peer a Connect call waits for.
///
/// ```
/// use zebrastream::api::ConnectMode;
/// assert_eq!(ConnectMode::AwaitReader.as_query(), "await-reader");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectMode {
    /// Sent by a producer: wait until a reader (consumer) is there.
    AwaitReader,
    /// Sent by a consumer: wait until a writer (producer) is there.
    AwaitWriter,
}

impl ConnectMode {
    /// The `mode=` query value.
    pub fn as_query(self) -> &'static str {
        match self {
            ConnectMode::AwaitReader => "await-reader",
            ConnectMode::AwaitWriter => "await-writer",
        }
    }
}

/// Parses and checks a Connect API base URL (absolute `http` or `https`,
/// without credentials: the access token is the only secret sent).
pub fn parse_connect_url(url: &str) -> Result<Url, Error> {
    // A URL with an `@` may carry credentials: never echo it in an error.
    let shown = if url.contains('@') {
        "[REDACTED]".to_owned()
    } else {
        url.to_owned()
    };
    let invalid = |reason: String| Error::InvalidConnectUrl {
        url: shown.clone(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "it must not contain credentials (use the access token)".into(),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment".into()));
    }
    Ok(parsed)
}

/// Checks a stream path with the relay's own rules
/// ([`StreamPath::parse`](crate::protocol::StreamPath::parse)): `/`-rooted,
/// no empty, `.` or `..` segment, no trailing `/`, only `A-Z a-z 0-9 . _ - ~`
/// in a segment, at most [`MAX_PATH_LEN`](crate::protocol::MAX_PATH_LEN)
/// bytes. A path that passes is one the relay accepts.
///
/// ```
/// use zebrastream::api::{check_stream_path, Error};
/// use zebrastream::protocol::PathError;
///
/// assert!(check_stream_path("/userspace/test").is_ok());
/// assert!(matches!(
///     check_stream_path("/trial/x/"),
///     Err(Error::InvalidStreamPath { reason: PathError::TrailingSlash, .. })
/// ));
/// ```
pub fn check_stream_path(path: &str) -> Result<(), Error> {
    StreamPath::parse(path)
        .map(drop)
        .map_err(|reason| Error::InvalidStreamPath {
            path: path.to_owned(),
            reason,
        })
}

/// The timeout query value: whole seconds rounded up, plus one, so the
/// client-side timeout fires first (as the official client does).
pub fn timeout_query(timeout: Duration) -> u64 {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    secs + 1
}

/// Builds `{connect_url}{path}?mode=…[&timeout=N+1]`.
///
/// ```
/// use std::time::Duration;
/// use zebrastream::api::{connect_request_url, parse_connect_url, ConnectMode};
///
/// let base = parse_connect_url("https://connect.zebrastream.io/v0/").unwrap();
/// let url = connect_request_url(&base, "/userspace/test", ConnectMode::AwaitReader,
///                               Some(Duration::from_secs(2))).unwrap();
/// assert_eq!(url.as_str(),
///            "https://connect.zebrastream.io/v0/userspace/test?mode=await-reader&timeout=3");
/// ```
pub fn connect_request_url(
    connect_url: &Url,
    stream_path: &str,
    mode: ConnectMode,
    timeout: Option<Duration>,
) -> Result<Url, Error> {
    check_stream_path(stream_path)?;
    let base = connect_url.as_str().trim_end_matches('/');
    // A checked path is plain ASCII, so this fails only for a base URL that
    // cannot take a path (which `parse_connect_url` does not let through).
    let mut url =
        Url::parse(&format!("{base}{stream_path}")).map_err(|e| Error::InvalidConnectUrl {
            url: base.to_owned(),
            reason: format!("appending the stream path gives no valid URL: {e}"),
        })?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("mode", mode.as_query());
        if let Some(timeout) = timeout {
            query.append_pair("timeout", &timeout_query(timeout).to_string());
        }
    }
    Ok(url)
}

/// Reads the data URL out of a Connect answer: surrounding whitespace is
/// ignored and a relative URL is resolved against the connect URL.
pub fn parse_data_url(connect_url: &Url, body: &str) -> Result<Url, Error> {
    let text = body.trim();
    if text.is_empty() {
        return Err(Error::InvalidDataUrl {
            reason: "the answer is empty".into(),
        });
    }
    let url = Url::options()
        .base_url(Some(connect_url))
        .parse(text)
        .map_err(|e| Error::InvalidDataUrl {
            reason: e.to_string(),
        })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidDataUrl {
            reason: format!("unsupported scheme {:?}", url.scheme()),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        parse_connect_url(s).unwrap()
    }

    #[test]
    fn request_url_shapes() {
        let b = base("http://127.0.0.1:8080/v0");
        let u = connect_request_url(&b, "/a/b", ConnectMode::AwaitWriter, None).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/v0/a/b?mode=await-writer");
        let u = connect_request_url(
            &b,
            "/a",
            ConnectMode::AwaitReader,
            Some(Duration::from_millis(1500)),
        )
        .unwrap();
        assert_eq!(u.query(), Some("mode=await-reader&timeout=3"));
    }

    #[test]
    fn timeout_is_sent_as_n_plus_one() {
        assert_eq!(timeout_query(Duration::from_secs(2)), 3);
        assert_eq!(timeout_query(Duration::from_secs(0)), 1);
        assert_eq!(timeout_query(Duration::from_millis(100)), 2);
    }

    #[test]
    fn bad_stream_paths_are_rejected() {
        for bad in [
            "", "a/b", "/", "//x", "/a//b", "/a/../b", "/a?b", "/a#b", "/a b", "/ä", "/a/b/",
        ] {
            assert!(
                matches!(check_stream_path(bad), Err(Error::InvalidStreamPath { .. })),
                "{bad:?} accepted"
            );
        }
        for good in [
            "/userspace/test",
            "/9b09a7ce-024d/my_stream.v1",
            "/a/~fs-offer",
        ] {
            check_stream_path(good).unwrap();
        }
    }

    #[test]
    fn bad_connect_urls_are_rejected() {
        for bad in ["connect.zebrastream.io", "ftp://x/v0", "http://x/v0?a=1"] {
            assert!(matches!(
                parse_connect_url(bad),
                Err(Error::InvalidConnectUrl { .. })
            ));
        }
        let err = parse_connect_url("https://user:hunter2@relay.example/v0").unwrap_err();
        assert!(matches!(err, Error::InvalidConnectUrl { .. }));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn data_url_parsing() {
        let b = base("http://127.0.0.1:9/v0");
        assert_eq!(
            parse_data_url(&b, " http://127.0.0.1:9/data/x\n")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/data/x"
        );
        assert_eq!(
            parse_data_url(&b, "/data/y").unwrap().as_str(),
            "http://127.0.0.1:9/data/y"
        );
        assert!(matches!(
            parse_data_url(&b, "  \n"),
            Err(Error::InvalidDataUrl { .. })
        ));
        assert!(matches!(
            parse_data_url(&b, "file:///etc/passwd"),
            Err(Error::InvalidDataUrl { .. })
        ));
    }
}
