//! Relay settings: where to listen, who may use it, how long requests wait.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::tap::ForwardTap;

/// Who may use the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayAuth {
    /// No authentication at all: any request is allowed. For local demos and
    /// tests only; binding logs a warning.
    Open,
    /// Bearer tokens listed in a TOML or YAML file (format in `docs/relay.md`
    /// and [`TokenStore`](super::TokenStore)); read once at bind time.
    TokensFile(PathBuf),
}

/// Settings for [`Relay::bind`](super::Relay::bind). Start from
/// [`RelayConfig::default`] or [`RelayConfig::open_loopback`] and adjust with
/// the builder methods.
///
/// ```
/// use std::time::Duration;
/// use zebrastream::relay::{RelayAuth, RelayConfig};
///
/// let config = RelayConfig::default()
///     .listen("0.0.0.0:8443".parse().unwrap())
///     .auth(RelayAuth::TokensFile("/etc/zebrastream/tokens.toml".into()))
///     .public_url("https://relay.example.org")
///     .tls("/etc/zebrastream/cert.pem", "/etc/zebrastream/key.pem")
///     .connect_wait(Duration::from_secs(60), Duration::from_secs(3600))
///     .max_streams(5_000)
///     .stream_quota(50)
///     .trusted_proxy("10.0.0.2".parse().unwrap())
///     .metrics_listen("127.0.0.1:9090".parse().unwrap());
/// assert_eq!(config.listen_addr().port(), 8443);
/// ```
#[derive(Clone)]
pub struct RelayConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) auth: RelayAuth,
    pub(crate) public_url: Option<String>,
    pub(crate) connect_wait_default: Duration,
    pub(crate) connect_wait_max: Duration,
    pub(crate) data_wait: Duration,
    pub(crate) max_streams: usize,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) tap: Option<Arc<dyn ForwardTap>>,
    pub(crate) upload_response: UploadResponse,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    pub(crate) head_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) stream_quota: usize,
    pub(crate) metrics_listen: Option<SocketAddr>,
}

/// When a producer's `PUT` gets its response (the status lines).
///
/// The protocol allows the response to stream while the upload is still
/// arriving (full duplex). Some reverse proxies cannot carry that: **nginx**
/// stops forwarding a request body to the upstream once it has passed the
/// response head on to the client (`proxy_request_buffering off` only covers
/// the time before), so a full-duplex `PUT` stalls a few megabytes in. Behind
/// such a proxy the relay answers only once the transfer has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadResponse {
    /// Full duplex for direct clients; [`UploadResponse::AfterUpload`] for
    /// requests that came through a proxy (they carry `Forwarded`,
    /// `X-Forwarded-For` or `Via`, which the recipe in `deploy/nginx.conf` sets).
    #[default]
    Auto,
    /// Always full duplex: `[STATE:CONNECTED]` as soon as bytes flow, the
    /// final line when the transfer ends.
    Streaming,
    /// Always hold the response until the transfer has ended, then send
    /// `[STATE:CONNECTED]` and the final line at once.
    AfterUpload,
}

impl UploadResponse {
    /// Whether a `PUT` with these request headers is answered only after its upload ended.
    pub fn defers(self, request: &http::HeaderMap) -> bool {
        match self {
            UploadResponse::Streaming => false,
            UploadResponse::AfterUpload => true,
            UploadResponse::Auto => [
                http::header::FORWARDED,
                http::header::VIA,
                http::HeaderName::from_static("x-forwarded-for"),
            ]
            .iter()
            .any(|name| request.contains_key(name)),
        }
    }
}

/// Default Connect wait when the request has no `timeout` parameter.
pub const DEFAULT_CONNECT_WAIT: Duration = Duration::from_secs(300);
/// Default upper bound on any Connect wait (the official examples use 3600 s).
pub const DEFAULT_CONNECT_WAIT_MAX: Duration = Duration::from_secs(3600);
/// Default time an unpaired Data-API `PUT` or `GET` is held.
pub const DEFAULT_DATA_WAIT: Duration = Duration::from_secs(300);
/// Default maximum number of stream paths with a waiter or a transfer.
pub const DEFAULT_MAX_STREAMS: usize = 10_000;
/// Default maximum number of client connections held at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default maximum number of connections from one client address (an IPv4
/// address or an IPv6 /64).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// Default time from accept to the first complete request head (TLS
/// handshake and h2 preface included).
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a connection with no open request (an idle h2 connection,
/// an idle HTTP/1.1 keep-alive connection) is kept. Longer than the 60 s
/// nginx keeps idle upstream connections, so a balancer closes them first.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default number of streams (waiting or transferring, a transfer's side
/// paths included) one token, or on an open relay one client address, may
/// hold at once.
pub const DEFAULT_STREAM_QUOTA: usize = 100;

impl Default for RelayConfig {
    /// `127.0.0.1:8080`, [`RelayAuth::Open`], plain HTTP, the `DEFAULT_*` limits.
    fn default() -> Self {
        RelayConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            auth: RelayAuth::Open,
            public_url: None,
            connect_wait_default: DEFAULT_CONNECT_WAIT,
            connect_wait_max: DEFAULT_CONNECT_WAIT_MAX,
            data_wait: DEFAULT_DATA_WAIT,
            max_streams: DEFAULT_MAX_STREAMS,
            tls_cert: None,
            tls_key: None,
            tap: None,
            upload_response: UploadResponse::Auto,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            trusted_proxies: Vec::new(),
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            stream_quota: DEFAULT_STREAM_QUOTA,
            metrics_listen: None,
        }
    }
}

impl RelayConfig {
    /// `127.0.0.1` on a free port chosen by the OS, no authentication: what
    /// tests and the demo use. Read the port back with
    /// [`RelayHandle::local_addr`](super::RelayHandle::local_addr).
    pub fn open_loopback() -> Self {
        RelayConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..RelayConfig::default()
        }
    }

    /// The address to listen on (port 0 = any free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Who may use the relay.
    pub fn auth(mut self, auth: RelayAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The base URL clients reach this relay at (e.g. behind a proxy:
    /// `https://relay.example.org/zs`). Data URLs handed out by the Connect
    /// API are `<public url>/data/<stream path>`. Without it, they are built
    /// from the request's `Host`. It must be an absolute `http(s)` URL
    /// without credentials, query or fragment
    /// ([`protocol::parse_base_url`](crate::protocol::parse_base_url)).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Connect-API waits: `default` when the request has no `timeout`
    /// parameter, and `max`, the cap on any requested `timeout`.
    pub fn connect_wait(mut self, default: Duration, max: Duration) -> Self {
        self.connect_wait_default = default;
        self.connect_wait_max = max;
        self
    }

    /// How long a Data-API `PUT` or `GET` waits for its peer before it is
    /// answered `504 Gateway Timeout`.
    pub fn data_wait(mut self, wait: Duration) -> Self {
        self.data_wait = wait;
        self
    }

    /// The maximum number of stream paths with a waiter or a transfer at
    /// once; requests for further paths get `503 Service Unavailable`.
    pub fn max_streams(mut self, max: usize) -> Self {
        self.max_streams = max;
        self
    }

    /// The maximum number of client connections held at once; further
    /// connections are closed at once.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The maximum number of connections from one client address (an IPv4
    /// address or an IPv6 /64); further ones are closed at once. Trusted
    /// proxies are exempt. Raise it for load tests that run hundreds of
    /// clients from one address.
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.max_connections_per_ip = max;
        self
    }

    /// A balancer in front of the relay: exempt from the per-address
    /// connection limit, and its last `X-Forwarded-For` entry is taken as the
    /// client address (for the stream quota of an open relay). Repeatable.
    pub fn trusted_proxy(mut self, addr: IpAddr) -> Self {
        self.trusted_proxies.push(addr);
        self
    }

    /// Time from accept to the first complete request head, for every
    /// protocol (TLS handshake, h2 preface and settings included); a
    /// connection that has not sent one by then is closed.
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// A connection with no open request (an idle h2 connection, an idle
    /// HTTP/1.1 keep-alive connection) is closed after this long.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How many streams (waiting or transferring; a transfer's side paths
    /// count with it) one token may hold at once unless its tokens-file
    /// entry says `max_streams`; on an open relay, one client address.
    /// Requests over it get `429 Too Many Requests`.
    pub fn stream_quota(mut self, max: usize) -> Self {
        self.stream_quota = max;
        self
    }

    /// Serve `GET /metrics` (and `/healthz`) on this separate address. The
    /// public listener never serves metrics.
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// When producers get their response; see [`UploadResponse`] (default
    /// [`UploadResponse::Auto`]).
    pub fn upload_response(mut self, when: UploadResponse) -> Self {
        self.upload_response = when;
        self
    }

    /// Serve HTTPS (HTTP/1.1 and h2 via ALPN) with this PEM certificate chain and private key.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(cert.into());
        self.tls_key = Some(key.into());
        self
    }

    /// Sets the TLS certificate file alone (see [`RelayConfig::tls`]); binding
    /// fails unless a key is set too.
    pub fn tls_cert(mut self, cert: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(cert.into());
        self
    }

    /// Sets the TLS private key file alone (see [`RelayConfig::tls`]).
    pub fn tls_key(mut self, key: impl Into<PathBuf>) -> Self {
        self.tls_key = Some(key.into());
        self
    }

    /// Calls `tap` on every chunk forwarded from a producer to a consumer.
    pub fn tap(mut self, tap: Arc<dyn ForwardTap>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// The configured listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Checks that the settings fit together.
    pub(crate) fn validate(&self) -> Result<(), super::Error> {
        if self.connect_wait_default > self.connect_wait_max {
            return Err(super::Error::Config(format!(
                "default connect wait {:?} is above the maximum {:?}",
                self.connect_wait_default, self.connect_wait_max
            )));
        }
        for (value, what) in [
            (self.max_streams, "max streams"),
            (self.max_connections, "max connections"),
            (self.max_connections_per_ip, "max connections per IP"),
            (self.stream_quota, "stream quota"),
        ] {
            if value == 0 {
                return Err(super::Error::Config(format!("{what} must be at least 1")));
            }
        }
        for (value, what) in [
            (self.head_timeout, "head timeout"),
            (self.idle_timeout, "idle timeout"),
        ] {
            if value.is_zero() {
                return Err(super::Error::Config(format!("{what} must be above zero")));
            }
        }
        if let Some(url) = &self.public_url {
            // The clients' connect URL is this plus /v0: the same check.
            // (Not echoed: it may hold credentials.)
            crate::protocol::parse_base_url(url)
                .map_err(|reason| super::Error::Config(format!("public URL refused: {reason}")))?;
        }
        Ok(())
    }
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("auth", &self.auth)
            .field("public_url", &self.public_url)
            .field("connect_wait_default", &self.connect_wait_default)
            .field("connect_wait_max", &self.connect_wait_max)
            .field("data_wait", &self.data_wait)
            .field("max_streams", &self.max_streams)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tap", &self.tap.as_ref().map(|_| "<tap>"))
            .field("upload_response", &self.upload_response)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("head_timeout", &self.head_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("stream_quota", &self.stream_quota)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loopback_is_local_and_open() {
        let c = RelayConfig::open_loopback();
        assert_eq!(c.listen_addr(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.auth, RelayAuth::Open);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validate_names_the_problem() {
        let c =
            RelayConfig::default().connect_wait(Duration::from_secs(10), Duration::from_secs(5));
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("above the maximum"));
        let c = RelayConfig::default().public_url("relay.example.org");
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        for (bad, reason) in [
            ("https://relay.example.org/zs?x=1", "query"),
            ("https://user:pw@relay.example.org", "credentials"),
        ] {
            let message = RelayConfig::default()
                .public_url(bad)
                .validate()
                .unwrap_err()
                .to_string();
            assert!(message.contains(reason), "{message}");
            assert!(!message.contains("pw@"), "{message}");
        }
        RelayConfig::default()
            .public_url("https://relay.example.org/zs/")
            .validate()
            .unwrap();
        let c = RelayConfig::default().max_connections_per_ip(0);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max connections per IP must be at least 1"));
        let c = RelayConfig::default().head_timeout(Duration::ZERO);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("head timeout"));
    }

    #[test]
    fn auto_defers_only_proxied_uploads() {
        let direct = http::HeaderMap::new();
        let mut proxied = http::HeaderMap::new();
        proxied.insert("x-forwarded-for", "10.0.0.7".parse().unwrap());
        let mut via = http::HeaderMap::new();
        via.insert(http::header::VIA, "1.1 balancer".parse().unwrap());
        assert!(!UploadResponse::Auto.defers(&direct));
        assert!(UploadResponse::Auto.defers(&proxied));
        assert!(UploadResponse::Auto.defers(&via));
        assert!(!UploadResponse::Streaming.defers(&proxied));
        assert!(UploadResponse::AfterUpload.defers(&direct));
    }
}
