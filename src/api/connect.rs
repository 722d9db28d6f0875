//! The Connect API request as the client sends it: the connect URL, the
//! request URL, and the data URL in the answer. The wire forms themselves
//! (modes, query, URL checks) are [`crate::protocol`]'s.

use std::time::Duration;

use url::Url;

use super::Error;
use crate::protocol::{parse_base_url, ConnectMode, ConnectQuery, StreamPath};

/// Parses and checks a Connect API base URL with
/// [`protocol::parse_base_url`](crate::protocol::parse_base_url): absolute
/// `http` or `https`, without credentials (the access token is the only
/// secret sent) and without query or fragment. The error never shows a URL
/// that may carry credentials.
pub fn parse_connect_url(url: &str) -> Result<Url, Error> {
    parse_base_url(url).map_err(|reason| Error::InvalidConnectUrl {
        // A URL with an `@` may carry credentials: never echo it.
        url: if url.contains('@') {
            "[REDACTED]".to_owned()
        } else {
            url.to_owned()
        },
        reason,
    })
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

/// Builds `{connect_url}{path}?mode=…[&timeout=N+1]`: the timeout is sent
/// one second longer (in whole seconds, rounded up), so the client's own
/// timeout fires first, as the official client does.
pub(crate) fn connect_request_url(
    connect_url: &Url,
    stream_path: &str,
    mode: ConnectMode,
    timeout: Option<Duration>,
) -> Result<Url, Error> {
    check_stream_path(stream_path)?;
    let mut query = ConnectQuery::new(mode);
    query.timeout = timeout.map(|t| t.saturating_add(Duration::from_secs(1)));
    let mut url = connect_url.clone();
    // A checked path is plain ASCII that needs no escaping.
    url.set_path(&format!(
        "{}{stream_path}",
        connect_url.path().trim_end_matches('/')
    ));
    url.set_query(Some(&query.encode()));
    Ok(url)
}

/// Reads the data URL out of a Connect answer: surrounding whitespace is
/// ignored and a relative URL is resolved against the connect URL.
pub(crate) fn parse_data_url(connect_url: &Url, body: &str) -> Result<Url, Error> {
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
    use crate::protocol::BaseUrlError;

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
        let b = base("https://connect.zebrastream.io/v0/");
        for (timeout, sent) in [(2000, "3"), (0, "1"), (100, "2")] {
            let u = connect_request_url(
                &b,
                "/userspace/test",
                ConnectMode::AwaitReader,
                Some(Duration::from_millis(timeout)),
            )
            .unwrap();
            assert_eq!(
                u.as_str(),
                format!(
                    "https://connect.zebrastream.io/v0/userspace/test?mode=await-reader&timeout={sent}"
                )
            );
        }
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
        let err = parse_connect_url("ftp://x/v0").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConnectUrl { url, reason: BaseUrlError::Scheme(_) } if url == "ftp://x/v0"),
            "{err:?}"
        );
        let err = parse_connect_url("https://user:hunter2@relay.example/v0").unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidConnectUrl {
                reason: BaseUrlError::Credentials,
                ..
            }
        ));
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
