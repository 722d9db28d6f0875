//! The first request head of a plain connection, read before hyper sees the
//! connection.
//!
//! hyper gives every HTTP/1.1 connection an 8 KiB read buffer (16 KiB once
//! the head arrived in pieces, as it does after hyper-util's protocol
//! sniffing) and an 8 KiB write buffer as soon as it serves it. A request that waits for its peer needs none of that
//! while it waits, so the relay reads the first head itself into a buffer
//! of about the head's size and parks the request ([`super::parking`]);
//! hyper gets the connection, with those bytes replayed
//! ([`super::replay::Replay`]), only once there is something to answer.
//!
//! Only a head that hyper would take as the very same request is returned;
//! anything else (the h2 prior-knowledge preface, a malformed, unusual or
//! over-long head, an early end) goes to hyper untouched, which answers it
//! exactly as before.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt};

/// First buffer size: enough for a typical head (curl's is ~100 bytes,
/// one with a bearer token a few hundred).
pub(crate) const FIRST_READ: usize = 1024;
/// Longest head read here; a longer one is left to hyper (which allows up
/// to [`super::server::HTTP1_MAX_BUF`]).
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most header lines (hyper's default limit too).
const MAX_HEADERS: usize = 100;

/// What the bytes read so far hold.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A complete head that hyper would read as this same request.
    Complete(Box<Request<()>>),
    /// The head is not complete yet.
    Partial,
    /// Not one for us: hyper decides (h2 preface, errors, odd framing).
    NotOurs,
}

/// Reads from `io` into `buf` until `buf` starts with a complete request
/// head (returned; `buf` keeps the head and any bytes after it), or until it
/// is clear that hyper must handle the connection (`None`: `buf` holds all
/// bytes read so far). No timeout: the caller sets one.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
) -> Option<Box<Request<()>>> {
    loop {
        match parse(buf) {
            Parsed::Complete(req) => return Some(req),
            Parsed::NotOurs => return None,
            Parsed::Partial if buf.len() >= MAX_HEAD => return None,
            Parsed::Partial => {}
        }
        if buf.len() == buf.capacity() {
            let grown = (buf.capacity() * 2).clamp(FIRST_READ, MAX_HEAD);
            buf.reserve_exact(grown - buf.len());
        }
        match io.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Parses the start of `bytes` as a request head.
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    match head.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => match to_request(&head) {
            Some(req) if plain_framing(&req) => Parsed::Complete(req),
            _ => Parsed::NotOurs,
        },
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::NotOurs,
    }
}

fn to_request(head: &httparse::Request<'_, '_>) -> Option<Box<Request<()>>> {
    let method = Method::from_bytes(head.method?.as_bytes()).ok()?;
    let uri: Uri = head.path?.parse().ok()?;
    let version = match head.version? {
        0 => Version::HTTP_10,
        1 => Version::HTTP_11,
        _ => return None,
    };
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for h in head.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    Some(Box::new(req))
}

/// The body framing is one hyper accepts without a second thought: none, a
/// single numeric `Content-Length`, or (HTTP/1.1 only) `Transfer-Encoding:
/// chunked` alone. Anything else is left to hyper's own checks.
fn plain_framing(req: &Request<()>) -> bool {
    let headers = req.headers();
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    match (lengths.next(), codings.next()) {
        (None, None) => true,
        (Some(length), None) => {
            lengths.next().is_none()
                && !length.is_empty()
                && length.as_bytes().iter().all(u8::is_ascii_digit)
                && length.to_str().is_ok_and(|l| l.parse::<u64>().is_ok())
        }
        (None, Some(coding)) => {
            codings.next().is_none()
                && req.version() == Version::HTTP_11
                && coding.as_bytes().eq_ignore_ascii_case(b"chunked")
        }
        (Some(_), Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn complete(bytes: &[u8]) -> Box<Request<()>> {
        match parse(bytes) {
            Parsed::Complete(req) => req,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_head_is_read_as_hyper_would() {
        let req = complete(
            b"PUT /data/a/b?x=1 HTTP/1.1\r\nHost: relay:8080\r\nTransfer-Encoding: chunked\r\n\
              Authorization: Bearer t\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n5\r\nhello",
        );
        assert_eq!(req.method(), Method::PUT);
        assert_eq!(req.uri().path(), "/data/a/b");
        assert_eq!(req.uri().query(), Some("x=1"));
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "relay:8080");
        assert_eq!(req.headers().get_all("x-twice").iter().count(), 2);
        let req = complete(b"GET /data/s HTTP/1.0\r\n\r\n");
        assert_eq!(req.version(), Version::HTTP_10);
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(matches!(parse(b""), Parsed::Partial));
        assert!(matches!(parse(b"GET /data/s HT"), Parsed::Partial));
        assert!(matches!(
            parse(b"GET /data/s HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        ));
    }

    #[test]
    fn everything_unusual_is_left_to_hyper() {
        for bytes in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            b"PRI * HTTP/2",
            b"GET /data/s HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET\x01 / HTTP/1.1\r\n\r\n",
            b"PUT /data/s HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"PUT /data/s HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"PUT /data/s HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PUT /data/s HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"PUT /data/s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bytes), Parsed::NotOurs),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let head = format!("GET /data/s HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse(head.as_bytes()), Parsed::NotOurs));
    }

    #[tokio::test]
    async fn read_collects_a_head_sent_in_pieces_and_keeps_what_follows() {
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        let sender = tokio::spawn(async move {
            for piece in [
                &b"PUT /data/s HTTP/1.1\r\nHost: x\r\n"[..],
                b"Content-Length: 3\r\n",
                b"\r\nabc",
            ] {
                theirs.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            theirs
        });
        let mut buf = Vec::new();
        let req = read(&mut ours, &mut buf).await.expect("a complete head");
        assert_eq!(req.method(), Method::PUT);
        let _theirs = sender.await.unwrap();
        // Everything read is kept for hyper, the body start included.
        assert!(buf.starts_with(b"PUT /data/s HTTP/1.1\r\n"));
        assert!(buf.capacity() <= FIRST_READ, "a short head stays small");
    }

    #[tokio::test]
    async fn read_gives_up_on_a_long_head_an_end_or_h2() {
        let (mut ours, mut theirs) = tokio::io::duplex(MAX_HEAD * 2);
        let long = format!("GET /data/s HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        theirs.write_all(long.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        assert!(read(&mut ours, &mut buf).await.is_none());
        assert_eq!(buf.len(), MAX_HEAD, "stops at the limit, all bytes kept");

        let (mut ours, mut theirs) = tokio::io::duplex(64);
        theirs.write_all(b"GET /data/s HT").await.unwrap();
        drop(theirs);
        let mut buf = Vec::new();
        assert!(read(&mut ours, &mut buf).await.is_none());
        assert_eq!(buf, b"GET /data/s HT");

        let (mut ours, mut theirs) = tokio::io::duplex(64);
        theirs
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        assert!(read(&mut ours, &mut buf).await.is_none());
        assert!(buf.starts_with(b"PRI * HTTP/2.0"));
    }
}
