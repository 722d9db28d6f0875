//! [`ApiClient`]: the HTTP client for the Connect API and the Data API.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::connect::{connect_request_url, parse_connect_url, parse_data_url};
use super::error::shown_url;
use super::origin::{parse_token_origin, TokenOrigins};
use super::{Download, Error, Operation, RetryPolicy, Upload};
use crate::protocol::ConnectMode;

/// How long establishing a TCP (and TLS) connection may take, per attempt
/// (the official client uses the same 10 s).
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the reachability probe after a connect timeout may take.
const REACHABILITY_PROBE: Duration = Duration::from_secs(1);

/// The `host:port` `url` connects to.
fn address_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Runs `step` until the deadline, if there is one; `Err(limit)` when it
/// ran out.
async fn until<T>(
    deadline: Option<(Duration, tokio::time::Instant)>,
    step: impl std::future::Future<Output = T>,
) -> Result<T, Duration> {
    match deadline {
        Some((limit, at)) => tokio::time::timeout_at(at, step).await.map_err(|_| limit),
        None => Ok(step.await),
    }
}

/// A protocol client bound to one Connect API base URL and one access token.
///
/// Cheap to clone (the connection pool is shared).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use zebrastream::api::ApiClient;
/// use zebrastream::protocol::ConnectMode;
///
/// let api = ApiClient::builder("http://127.0.0.1:8080/v0").build()?;
/// let data_url = api.connect("/demo/stream", ConnectMode::AwaitReader, None).await?;
/// let mut upload = api.upload(&data_url, Some("text/plain"))?;
/// upload.sink.send(bytes::Bytes::from_static(b"hello\n")).await?; // one HTTP chunk
/// upload.sink.finish().await?; // ends the body with its terminator
/// upload.status.await?; // the relay confirmed the transfer
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    connect_url: Url,
    token: Option<SecretString>,
    origins: TokenOrigins,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("connect_url", &self.connect_url.as_str())
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("origins", &self.origins)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Builds an [`ApiClient`].
#[derive(Debug)]
pub struct ApiClientBuilder {
    connect_url: String,
    token: Option<SecretString>,
    token_origins: Vec<String>,
    retry: RetryPolicy,
    root_certificates: Vec<reqwest::Certificate>,
}

impl ApiClientBuilder {
    /// Replaces the Connect API base URL given to [`ApiClient::builder`].
    pub(crate) fn connect_url(mut self, connect_url: String) -> Self {
        self.connect_url = connect_url;
        self
    }

    /// The access token sent as `Authorization: Bearer …` (none when empty).
    pub fn access_token(mut self, token: Option<SecretString>) -> Self {
        self.token = token.filter(|t| !t.expose_secret().is_empty());
        self
    }

    /// Also trusts these origins (`scheme://host[:port]`) with the token and
    /// the stream, for relays whose Connect API names data URLs on another
    /// origin than its own (checked by [`build`](Self::build)). By default
    /// only the connect URL's origin is trusted, plus
    /// `https://data.zebrastream.io` for the hosted connect URL. An `https`
    /// connect URL is never followed to an `http` data URL, listed or not.
    pub fn token_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.token_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// How failed Connect calls are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Trusts an extra root certificate (e.g. a relay's self-signed one).
    pub fn add_root_certificate(mut self, certificate: reqwest::Certificate) -> Self {
        self.root_certificates.push(certificate);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<ApiClient, Error> {
        let connect_url = parse_connect_url(&self.connect_url)?;
        let listed = self
            .token_origins
            .iter()
            .map(|o| parse_token_origin(o))
            .collect::<Result<_, _>>()?;
        let origins = TokenOrigins::new(&connect_url, listed);
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("zebrastream-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(TCP_CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            // Never follow a redirect: a 3xx to the data URL would make us
            // read the stream itself as the URL (see docs/protocol.md §2.2).
            .redirect(reqwest::redirect::Policy::none());
        for certificate in self.root_certificates {
            http = http.add_root_certificate(certificate);
        }
        Ok(ApiClient {
            http: http.build().map_err(Error::ClientSetup)?,
            connect_url,
            token: self.token,
            origins,
            retry: self.retry,
        })
    }
}

impl ApiClient {
    /// Starts building a client for the Connect API at `connect_url`
    /// (e.g. `https://connect.zebrastream.io/v0`).
    pub fn builder(connect_url: &str) -> ApiClientBuilder {
        ApiClientBuilder {
            connect_url: connect_url.to_owned(),
            token: None,
            token_origins: Vec::new(),
            retry: RetryPolicy::default(),
            root_certificates: Vec::new(),
        }
    }

    /// The Connect API base URL.
    pub fn connect_url(&self) -> &Url {
        &self.connect_url
    }

    /// True when an access token is sent.
    pub(crate) fn has_access_token(&self) -> bool {
        self.token.is_some()
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => {
                let value = format!("Bearer {}", token.expose_secret());
                match HeaderValue::from_str(&value) {
                    Ok(mut value) => {
                        // Keeps the token out of HTTP/2 header tables and debug output.
                        value.set_sensitive(true);
                        request.header(AUTHORIZATION, value)
                    }
                    // A token with bytes a header cannot carry cannot be valid;
                    // sending none makes the relay answer 401, which names the problem.
                    Err(_) => request,
                }
            }
            None => request,
        }
    }

    /// Calls the Connect API and returns the data URL once the peer is there.
    ///
    /// `timeout` bounds the whole call (retries included) and is sent to the
    /// relay as `timeout=N+1` seconds so that the client side fires first.
    /// Connection errors, 408 and 5xx answers are retried under the
    /// [`RetryPolicy`]; 401/403 give [`Error::Auth`] at once.
    ///
    /// When `timeout` runs out, the result is [`Error::ConnectTimeout`] (no
    /// peer came) unless the relay itself was not reached: if no attempt got
    /// an HTTP answer, or the timeout fell in the pause after an attempt that
    /// failed to reach it, the last [`Error::Network`] is returned instead,
    /// so an unreachable relay is never reported as a missing peer.
    pub async fn connect(
        &self,
        stream_path: &str,
        mode: ConnectMode,
        timeout: Option<Duration>,
    ) -> Result<Url, Error> {
        let url = connect_request_url(&self.connect_url, stream_path, mode, timeout)?;
        let deadline = timeout.map(|limit| (limit, tokio::time::Instant::now() + limit));
        let mut run = self.retry.start();
        let mut attempts = 0;
        // Did any attempt get an HTTP answer? The last transport error.
        let mut reached = false;
        let mut network_error: Option<Error> = None;
        loop {
            attempts += 1;
            let started = Instant::now();
            let outcome = match until(deadline, self.connect_once(&url)).await {
                Ok(outcome) => outcome,
                Err(limit) => {
                    if let Some(error) = network_error.filter(|_| !reached) {
                        return Err(error);
                    }
                    // No answer and no transport error yet: the attempt may
                    // still be in its TCP handshake with a host that drops
                    // packets. A missing peer needs a reachable relay.
                    if !reached && !self.relay_accepts_connections().await {
                        return Err(Error::NoConnection {
                            operation: Operation::Connect,
                            url: shown_url(&self.connect_url),
                            address: address_of(&self.connect_url),
                            after: limit,
                        });
                    }
                    return Err(Error::ConnectTimeout(limit));
                }
            };
            let error = match outcome {
                Ok(data_url) => return Ok(data_url),
                Err(Error::Network {
                    operation,
                    url,
                    source,
                    ..
                }) => Error::Network {
                    operation,
                    url,
                    attempts,
                    source,
                },
                Err(e) => e,
            };
            // A relay whose waiter expired (408) is re-asked like a 5xx.
            let waiter_expired = matches!(error, Error::Status { status: 408, .. });
            if !(error.is_retryable() || waiter_expired) {
                return Err(error);
            }
            let Some(delay) = run.next_delay(started.elapsed(), &mut rand::thread_rng()) else {
                return Err(error);
            };
            tracing::debug!(%error, ?delay, "connect failed, retrying");
            let unreachable = matches!(error, Error::Network { .. });
            reached |= !unreachable;
            network_error = unreachable.then_some(error);
            if let Err(limit) = until(deadline, tokio::time::sleep(delay)).await {
                // The last attempt says what the relay is doing right now.
                return Err(network_error.unwrap_or(Error::ConnectTimeout(limit)));
            }
        }
    }

    /// Whether a TCP connection to the relay completes within
    /// [`REACHABILITY_PROBE`]. Asked only when a connect timeout ran out
    /// before any answer. Through an HTTP proxy (`*_PROXY` set) the relay's
    /// own address says nothing, so it is assumed reachable.
    async fn relay_accepts_connections(&self) -> bool {
        let proxied = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some() || std::env::var_os(v.to_lowercase()).is_some());
        if proxied {
            return true;
        }
        let Ok(addresses) = self.connect_url.socket_addrs(|| None) else {
            return true;
        };
        let probe = tokio::net::TcpStream::connect(&addresses[..]);
        matches!(
            tokio::time::timeout(REACHABILITY_PROBE, probe).await,
            Ok(Ok(_))
        )
    }

    async fn connect_once(&self, url: &Url) -> Result<Url, Error> {
        let op = Operation::Connect;
        let response = self
            .authorized(self.http.get(url.clone()))
            .send()
            .await
            .map_err(|e| Error::network(op, 1, e))?;
        if !response.status().is_success() {
            return Err(Error::from_response(op, response).await);
        }
        let body = response
            .text()
            .await
            .map_err(|e| Error::network(op, 1, e))?;
        let data_url = parse_data_url(&self.connect_url, &body)?;
        self.origins.check(&data_url)?;
        Ok(data_url)
    }

    /// Starts the Data API `PUT` to `data_url` in a background task and
    /// returns its body sink and status at once. Must run inside a Tokio
    /// runtime. The upload is never retried. A `data_url` on an origin the
    /// token is not for is refused, as in [`connect`](Self::connect).
    pub fn upload(&self, data_url: &Url, content_type: Option<&str>) -> Result<Upload, Error> {
        self.origins.check(data_url)?;
        let mut request = self.authorized(self.http.put(data_url.clone()));
        if let Some(content_type) = content_type {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| Error::InvalidContentType(content_type.to_owned()))?;
            request = request.header(CONTENT_TYPE, value);
        }
        Ok(Upload::start(request))
    }

    /// Sends the Data API `GET` to `data_url` and returns the body once the
    /// response head arrived. The download is never retried. A `data_url` on
    /// an origin the token is not for is refused, as in [`connect`](Self::connect).
    pub async fn download(&self, data_url: &Url) -> Result<Download, Error> {
        self.origins.check(data_url)?;
        let op = Operation::Download;
        let response = self
            .authorized(self.http.get(data_url.clone()))
            .send()
            .await
            .map_err(|e| Error::network(op, 1, e))?;
        if !response.status().is_success() {
            return Err(Error::from_response(op, response).await);
        }
        Ok(Download::new(response))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::BodyExt;
    use hyper::body::Frame;
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::api::test_server::{respond, serve, streaming};

    fn fast_retry() -> RetryPolicy {
        RetryPolicy::default()
            .initial_delay(Duration::from_millis(5))
            .max_delay(Duration::from_millis(20))
            .budget(Duration::from_millis(300))
    }

    fn client(base: &str, token: Option<&str>) -> ApiClient {
        ApiClient::builder(&format!("{base}/v0"))
            .access_token(token.map(SecretString::from))
            .retry(fast_retry())
            .build()
            .unwrap()
    }

    /// A port whose accept queue is full: the kernel drops further SYNs,
    /// as a firewall or a host that is down does. Returns the port and what
    /// must stay alive.
    async fn dropping_syns() -> (u16, Vec<tokio::net::TcpStream>, tokio::net::TcpListener) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut fillers = Vec::new();
        // Fill the queue (never accepted) until a handshake no longer completes.
        for _ in 0..8 {
            let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
            match tokio::time::timeout(Duration::from_millis(300), connect).await {
                Ok(Ok(stream)) => fillers.push(stream),
                _ => break,
            }
        }
        (port, fillers, listener)
    }

    /// A relay that never completes the TCP handshake is not a missing peer,
    /// even when the connect timeout runs out during the first attempt
    /// (before any transport error could be seen).
    #[tokio::test]
    async fn a_relay_that_drops_syns_is_unreachable_not_a_missing_peer() {
        let (port, _fillers, _listener) = dropping_syns().await;
        let api = client(&format!("http://127.0.0.1:{port}"), None);
        let err = api
            .connect("/s", ConnectMode::AwaitReader, Some(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }

    #[tokio::test]
    async fn connect_returns_data_url_and_sends_bearer_and_timeout() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let (base, _server) = serve(move |req| {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            seen2.lock().unwrap().push((req.uri().to_string(), auth));
            async { respond(200, "/data/s\n") }
        })
        .await;
        let api = client(&base, Some("tok"));
        let url = api
            .connect("/s", ConnectMode::AwaitReader, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(url.as_str(), format!("{base}/data/s"));
        let api = client(&base, None);
        api.connect("/s", ConnectMode::AwaitWriter, None)
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "/v0/s?mode=await-reader&timeout=6");
        assert_eq!(seen[0].1.as_deref(), Some("Bearer tok"));
        assert_eq!(seen[1].0, "/v0/s?mode=await-writer");
        assert_eq!(seen[1].1, None);
    }

    #[tokio::test]
    async fn auth_errors_are_not_retried() {
        for status in [401u16, 403] {
            let hits = Arc::new(AtomicUsize::new(0));
            let hits2 = hits.clone();
            let (base, _server) = serve(move |_| {
                hits2.fetch_add(1, Ordering::SeqCst);
                async move { respond(status, "no") }
            })
            .await;
            let err = client(&base, Some("bad"))
                .connect("/s", ConnectMode::AwaitReader, None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Auth { status: s, .. } if s == status),
                "{err:?}"
            );
            assert_eq!(hits.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_success() {
        let hits = Arc::new(AtomicUsize::new(0));
        let hits2 = hits.clone();
        let (base, _server) = serve(move |_| {
            let n = hits2.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    respond(503, "busy")
                } else {
                    respond(200, "/data\n")
                }
            }
        })
        .await;
        client(&base, None)
            .connect("/s", ConnectMode::AwaitReader, None)
            .await
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_stop_at_the_budget() {
        let hits = Arc::new(AtomicUsize::new(0));
        let hits2 = hits.clone();
        let (base, _server) = serve(move |_| {
            hits2.fetch_add(1, Ordering::SeqCst);
            async { respond(500, "down") }
        })
        .await;
        let err = client(&base, None)
            .connect("/s", ConnectMode::AwaitReader, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Status { status: 500, .. }), "{err:?}");
        let hits = hits.load(Ordering::SeqCst);
        assert!(hits > 2, "only {hits} attempts");
    }

    #[tokio::test]
    async fn client_errors_and_bad_answers_fail_at_once() {
        let (base, _server) = serve(|req| async move {
            if req.uri().path().ends_with("/busy") {
                respond(409, "busy")
            } else {
                respond(200, "  ")
            }
        })
        .await;
        let api = client(&base, None);
        let err = api
            .connect("/busy", ConnectMode::AwaitReader, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Busy { .. }), "{err:?}");
        let err = api
            .connect("/empty", ConnectMode::AwaitReader, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidDataUrl { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn unreachable_relay_is_retried_then_reported() {
        // A port with no listener: bind, then close.
        let port = closed_port();
        let err = client(&format!("http://127.0.0.1:{port}"), None)
            .connect("/s", ConnectMode::AwaitReader, None)
            .await
            .unwrap_err();
        match err {
            Error::Network { attempts, .. } => assert!(attempts > 1, "{attempts}"),
            other => panic!("{other:?}"),
        }
    }

    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A relay that is down is reported as unreachable, with its URL (no
    /// query: it may carry a token) and the OS error, even when the connect
    /// timeout runs out first: never as a peer that did not come.
    #[tokio::test]
    async fn an_unreachable_relay_is_not_a_peer_timeout() {
        let base = format!("http://127.0.0.1:{}", closed_port());
        let err = client(&base, None)
            .connect(
                "/s",
                ConnectMode::AwaitReader,
                Some(Duration::from_millis(150)),
            )
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains(&format!("{base}/v0/s failed")), "{shown}");
        assert!(!shown.contains("mode="), "{shown}");
        assert!(shown.contains("Connection refused"), "{shown}");
    }

    #[tokio::test]
    async fn an_unresolvable_host_names_dns() {
        let err = client("http://nonexistent.invalid:1", None)
            .connect("/s", ConnectMode::AwaitReader, Some(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("http://nonexistent.invalid:1/v0/s"),
            "{shown}"
        );
        assert!(shown.contains("dns error"), "{shown}");
    }

    /// TLS spoken to a plain-HTTP port: named as a TLS failure, at once.
    #[tokio::test]
    async fn tls_to_a_plain_http_port_names_tls() {
        let (base, _server) = serve(|_| async { respond(200, "/data/s") }).await;
        let base = base.replace("http://", "https://");
        let err = client(&base, None)
            .connect("/s", ConnectMode::AwaitReader, Some(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        assert!(matches!(err, Error::Network { attempts: 1, .. }), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("TLS error: received corrupt message of type InvalidContentType"),
            "{shown}"
        );
    }

    /// A refusal shows the relay's reason, read from the first line of its body.
    #[tokio::test]
    async fn a_refusal_carries_the_relays_reason() {
        let (base, _server) =
            serve(|_| async { respond(400, "stream path ends with '/'\nmore") }).await;
        let err = client(&base, None)
            .connect("/s", ConnectMode::AwaitReader, None)
            .await
            .unwrap_err();
        match &err {
            Error::Status {
                status: 400,
                reason: Some(reason),
                ..
            } => assert_eq!(reason, "stream path ends with '/'"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn connect_timeout_fires_on_the_client_side() {
        let (base, _server) = serve(|_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            respond(200, "/x")
        })
        .await;
        let err = client(&base, None)
            .connect(
                "/s",
                ConnectMode::AwaitWriter,
                Some(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectTimeout(_)), "{err:?}");
    }

    /// A data endpoint: collects the PUT body, then answers with `lines`
    /// (or with the error line as soon as the head arrives).
    async fn upload_server(
        lines: &'static str,
        error_at_once: bool,
    ) -> (String, Arc<Mutex<Option<Result<Vec<u8>, String>>>>) {
        let received = Arc::new(Mutex::new(None));
        let received2 = received.clone();
        let (base, _server) = serve(move |req| {
            let received = received2.clone();
            async move {
                let (tx, response) = streaming(200);
                tokio::spawn(async move {
                    if error_at_once {
                        let line = "[ERROR:RECEIVER_PREMATURE_DISCONNECT]\n";
                        let _ = tx.send(Ok(Frame::data(Bytes::from(line)))).await;
                        return;
                    }
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from("[STATE:CONNECTED]\n"))))
                        .await;
                    let body = req.into_body().collect().await;
                    let ok = body.is_ok();
                    *received.lock().unwrap() = Some(
                        body.map(|b| b.to_bytes().to_vec())
                            .map_err(|e| e.to_string()),
                    );
                    if ok {
                        let _ = tx.send(Ok(Frame::data(Bytes::from(lines)))).await;
                    }
                });
                response
            }
        })
        .await;
        std::mem::forget(_server);
        (base, received)
    }

    #[tokio::test]
    async fn upload_confirmed_after_clean_end() {
        let (base, received) = upload_server("[STATE:TRANSFER_SUCCESSFUL]\n", false).await;
        let api = client(&base, None);
        let url = Url::parse(&format!("{base}/data/s")).unwrap();
        let mut upload = api.upload(&url, Some("text/plain")).unwrap();
        for piece in ["hell", "o wo", "rld"] {
            upload.sink.send(Bytes::from(piece)).await.unwrap();
        }
        upload.sink.flush().await.unwrap();
        upload.sink.finish().await.unwrap();
        upload.status.await.unwrap();
        let got = received.lock().unwrap().take().unwrap().unwrap();
        assert_eq!(got, b"hello world");
    }

    #[tokio::test]
    async fn upload_without_confirmation_is_an_error() {
        let (base, _received) = upload_server("[STATE:SOMETHING_ELSE]\n", false).await;
        let url = Url::parse(&format!("{base}/data/s")).unwrap();
        let mut upload = client(&base, None).upload(&url, None).unwrap();
        upload.sink.send(Bytes::from("x")).await.unwrap();
        upload.sink.finish().await.unwrap();
        let err = upload.status.await.unwrap_err();
        assert!(
            matches!(&err, Error::Unconfirmed { last_line: Some(l) } if l == "[STATE:SOMETHING_ELSE]"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn error_line_is_reported_as_peer_disconnected() {
        let (base, _received) = upload_server("", true).await;
        let url = Url::parse(&format!("{base}/data/s")).unwrap();
        let upload = client(&base, None).upload(&url, None).unwrap();
        let err = upload.status.await.unwrap_err();
        assert!(matches!(err, Error::PeerDisconnected), "{err:?}");
    }

    #[tokio::test]
    async fn dropped_sink_aborts_the_body() {
        let (base, received) = upload_server("[STATE:TRANSFER_SUCCESSFUL]\n", false).await;
        let url = Url::parse(&format!("{base}/data/s")).unwrap();
        let mut upload = client(&base, None).upload(&url, None).unwrap();
        upload.sink.send(Bytes::from("partial")).await.unwrap();
        upload.sink.flush().await.unwrap();
        drop(upload.sink);
        // The request fails as a whole (or its response ends unconfirmed).
        let err = upload.status.await.unwrap_err();
        assert!(
            matches!(err, Error::Network { .. } | Error::Unconfirmed { .. }),
            "{err:?}"
        );
        let got = loop {
            if let Some(got) = received.lock().unwrap().take() {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(got.is_err(), "the server saw a clean body: {got:?}");
    }

    /// A relay that answers Connect with a data URL on another origin: the
    /// error names both origins, and the other origin gets no request.
    #[tokio::test]
    async fn a_foreign_data_url_is_refused_before_any_request_goes_there() {
        let foreign_hits = Arc::new(AtomicUsize::new(0));
        let hits = foreign_hits.clone();
        let (foreign, _foreign_server) = serve(move |_| {
            hits.fetch_add(1, Ordering::SeqCst);
            async { respond(200, "stolen") }
        })
        .await;
        let answer = format!("{foreign}/data/s\n");
        let (base, _server) = serve(move |_| {
            let answer = answer.clone();
            async move { respond(200, &answer) }
        })
        .await;
        let err = client(&base, Some("tok"))
            .connect("/s", ConnectMode::AwaitReader, None)
            .await
            .unwrap_err();
        match &err {
            Error::ForeignDataOrigin {
                data_origin,
                connect_origin,
            } => {
                assert_eq!(data_origin, &foreign);
                assert_eq!(connect_origin, &base);
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_retryable());
        // Listed, the same answer is followed.
        let listed = ApiClient::builder(&format!("{base}/v0"))
            .token_origins([foreign.clone()])
            .build()
            .unwrap();
        let url = listed
            .connect("/s", ConnectMode::AwaitReader, None)
            .await
            .unwrap();
        assert_eq!(url.as_str(), format!("{foreign}/data/s"));
        assert_eq!(foreign_hits.load(Ordering::SeqCst), 0);
        // upload/download apply the rule to URLs passed in directly.
        let elsewhere = Url::parse("http://127.0.0.1:9/data/s").unwrap();
        let api = client(&base, Some("tok"));
        assert!(matches!(
            api.download(&elsewhere).await,
            Err(Error::ForeignDataOrigin { .. })
        ));
        assert!(matches!(
            api.upload(&elsewhere, None),
            Err(Error::ForeignDataOrigin { .. })
        ));
    }

    /// An https connect URL is never followed to http: refused in
    /// `download`/`upload` before any connection (no TLS server needed).
    #[tokio::test]
    async fn https_connect_url_never_goes_to_http() {
        let api = ApiClient::builder("https://relay.example/v0")
            .token_origins(["http://relay.example"])
            .build()
            .unwrap();
        let downgraded = Url::parse("http://relay.example/data/s").unwrap();
        let err = api.download(&downgraded).await.unwrap_err();
        assert!(matches!(err, Error::InsecureDataUrl { .. }), "{err:?}");
        assert!(err.to_string().contains("http://relay.example"), "{err}");
        assert!(matches!(
            api.upload(&downgraded, None),
            Err(Error::InsecureDataUrl { .. })
        ));
    }

    /// The download's contract, on the runtime the test runs on (the body is
    /// read ahead by a task of its own on a multi-thread runtime).
    async fn download_reads_to_clean_end_and_reports_abort() {
        let (base, _server) = serve(|req| async move {
            let (tx, response) = streaming(200);
            let abort = req.uri().path().ends_with("/abort");
            tokio::spawn(async move {
                for piece in ["abc", "def", "ghi"] {
                    let _ = tx.send(Ok(Frame::data(Bytes::from(piece)))).await;
                }
                if abort {
                    let _ = tx.send(Err("producer died".into())).await;
                }
            });
            response
        })
        .await;
        let api = client(&base, None);
        let url = Url::parse(&format!("{base}/data/ok")).unwrap();
        let mut download = api.download(&url).await.unwrap();
        let mut got = Vec::new();
        download.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abcdefghi");

        let url = Url::parse(&format!("{base}/data/abort")).unwrap();
        let mut download = api.download(&url).await.unwrap();
        let mut got = Vec::new();
        let err = download.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        let inner = err.get_ref().unwrap().downcast_ref::<Error>().unwrap();
        assert!(matches!(inner, Error::BodyAborted { .. }), "{inner:?}");
        // Reading again still fails: never a late clean EOF.
        assert!(download.read(&mut [0u8; 8]).await.is_err());
    }

    #[tokio::test]
    async fn download_on_a_current_thread_runtime() {
        download_reads_to_clean_end_and_reports_abort().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn download_read_ahead_on_a_multi_thread_runtime() {
        download_reads_to_clean_end_and_reports_abort().await;
    }
}
