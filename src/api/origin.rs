//! Which origins get the access token (and the stream): the connect URL's
//! own origin, the origins the user lists, and for the hosted service its
//! data origin. A Connect answer that names any other data URL is refused
//! before anything is sent to it, and an `https` connect URL is never
//! followed to a plain-`http` data URL.

use url::{Origin, Url};

use super::Error;

/// The origin of the hosted service's Connect API.
pub(crate) const HOSTED_CONNECT_ORIGIN: &str = "https://connect.zebrastream.io";
/// The hosted service's Data API origin, which takes the same token
/// (`shared/docs/protocol.md`); trusted by default with the hosted connect URL.
pub(crate) const HOSTED_DATA_ORIGIN: &str = "https://data.zebrastream.io";

/// Parses one token origin: `scheme://host[:port]` (an `http` or `https`
/// URL without credentials, path, query or fragment; a lone trailing `/` is
/// fine).
///
/// ```
/// use zebrastream::api::parse_token_origin;
///
/// let origin = parse_token_origin("https://data.example.org").unwrap();
/// assert_eq!(origin.ascii_serialization(), "https://data.example.org");
/// assert!(parse_token_origin("https://data.example.org/data").is_err());
/// ```
pub fn parse_token_origin(text: &str) -> Result<Origin, Error> {
    let invalid = |reason: &'static str| Error::InvalidTokenOrigin {
        // A URL with an `@` may carry credentials: never echo it.
        origin: if text.contains('@') {
            "[REDACTED]".to_owned()
        } else {
            text.to_owned()
        },
        reason,
    };
    let url = Url::parse(text.trim()).map_err(|_| invalid("it is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid("it must be an http:// or https:// URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not contain credentials"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "it must be only scheme://host[:port], without a path, query or fragment",
        ));
    }
    Ok(url.origin())
}

/// The origins a client sends its token and its stream to.
#[derive(Debug, Clone)]
pub(crate) struct TokenOrigins {
    connect: Origin,
    connect_is_https: bool,
    listed: Vec<Origin>,
}

impl TokenOrigins {
    /// The connect URL's origin, plus `listed`, plus the hosted data origin
    /// when `connect_url` is the hosted Connect API.
    pub(crate) fn new(connect_url: &Url, listed: Vec<Origin>) -> TokenOrigins {
        let connect = connect_url.origin();
        let mut listed = listed;
        if connect.ascii_serialization() == HOSTED_CONNECT_ORIGIN {
            let hosted = Url::parse(HOSTED_DATA_ORIGIN).expect("a valid constant URL");
            listed.push(hosted.origin());
        }
        TokenOrigins {
            connect,
            connect_is_https: connect_url.scheme() == "https",
            listed,
        }
    }

    /// Checks that `data_url` may receive the token and the stream.
    pub(crate) fn check(&self, data_url: &Url) -> Result<(), Error> {
        let origin = data_url.origin();
        let refused = |downgrade: bool| {
            let data_origin = origin.ascii_serialization();
            let connect_origin = self.connect.ascii_serialization();
            if downgrade {
                Error::InsecureDataUrl {
                    data_origin,
                    connect_origin,
                }
            } else {
                Error::ForeignDataOrigin {
                    data_origin,
                    connect_origin,
                }
            }
        };
        if self.connect_is_https && data_url.scheme() != "https" {
            return Err(refused(true));
        }
        if origin == self.connect || self.listed.contains(&origin) {
            Ok(())
        } else {
            Err(refused(false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn origins(connect: &str, listed: &[&str]) -> TokenOrigins {
        let listed = listed
            .iter()
            .map(|o| parse_token_origin(o).unwrap())
            .collect();
        TokenOrigins::new(&url(connect), listed)
    }

    #[test]
    fn only_the_connect_origin_by_default() {
        let o = origins("http://127.0.0.1:8080/v0", &[]);
        o.check(&url("http://127.0.0.1:8080/data/a")).unwrap();
        // Another port, host or scheme is another origin.
        for foreign in [
            "http://127.0.0.1:8081/data/a",
            "http://localhost:8080/data/a",
            "https://127.0.0.1:8080/data/a",
        ] {
            let err = o.check(&url(foreign)).unwrap_err();
            assert!(
                matches!(&err, Error::ForeignDataOrigin { connect_origin, .. } if connect_origin == "http://127.0.0.1:8080"),
                "{foreign}: {err:?}"
            );
        }
        // Default ports are part of the origin as URLs define it.
        let o = origins("https://relay.example/v0", &[]);
        o.check(&url("https://relay.example:443/data/a")).unwrap();
    }

    #[test]
    fn listed_origins_are_trusted() {
        let o = origins("http://127.0.0.1:8080/v0", &["http://127.0.0.1:9000/"]);
        o.check(&url("http://127.0.0.1:9000/data/a")).unwrap();
        assert!(o.check(&url("http://127.0.0.1:9001/data/a")).is_err());
    }

    #[test]
    fn https_is_never_followed_to_http() {
        // Not even to an http origin the user listed.
        let o = origins("https://relay.example/v0", &["http://relay.example"]);
        let err = o.check(&url("http://relay.example/data/a")).unwrap_err();
        match &err {
            Error::InsecureDataUrl {
                data_origin,
                connect_origin,
            } => {
                assert_eq!(data_origin, "http://relay.example");
                assert_eq!(connect_origin, "https://relay.example");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("http://relay.example"), "{err}");
    }

    #[test]
    fn the_hosted_service_adds_its_data_origin() {
        let o = origins("https://connect.zebrastream.io/v0", &[]);
        o.check(&url("https://data.zebrastream.io/s/x")).unwrap();
        assert!(o.check(&url("https://evil.example/s/x")).is_err());
        assert!(o.check(&url("http://data.zebrastream.io/s/x")).is_err());
        // Only for the hosted connect URL.
        let o = origins("https://relay.example/v0", &[]);
        assert!(o.check(&url("https://data.zebrastream.io/s/x")).is_err());
    }

    #[test]
    fn bad_origins_are_refused_with_the_reason() {
        for (bad, why) in [
            ("data.example", "not a URL"),
            ("ftp://data.example", "http:// or https://"),
            ("https://data.example/path", "without a path"),
            ("https://data.example?x=1", "without a path"),
        ] {
            let err = parse_token_origin(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        let err = parse_token_origin("https://u:hunter2@data.example").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
