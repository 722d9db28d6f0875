//! [`Config`]: everything a stream writer or reader needs, built once.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{Encryption, Error};
use crate::api::{self, ApiClient, RetryPolicy};

/// The Connect API of the ZebraStream service.
pub const DEFAULT_CONNECT_URL: &str = "https://connect.zebrastream.io/v0";
/// The environment variable the access token is read from by default.
pub const ACCESS_TOKEN_ENV: &str = "ZEBRASTREAM_ACCESS_TOKEN";
/// The default write buffer (and largest HTTP chunk): 64 KiB.
pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 64 * 1024;
/// The largest accepted write buffer: 16 MiB.
pub const MAX_WRITE_BUFFER_SIZE: usize = 16 * 1024 * 1024;

/// When a [`StreamWriter`](super::StreamWriter) pushes buffered bytes out on
/// its own (in addition to explicit `flush()` calls).
///
/// The official client's `auto_flush_delay` maps as `None` → `Never`,
/// `0` → `EveryWrite`, `N` → `After(N s)`:
///
/// ```
/// use std::time::Duration;
/// use zebrastream::client::AutoFlush;
///
/// fn from_official(delay_secs: Option<u64>) -> AutoFlush {
///     match delay_secs {
///         None => AutoFlush::Never,
///         Some(0) => AutoFlush::EveryWrite,
///         Some(n) => AutoFlush::After(Duration::from_secs(n)),
///     }
/// }
/// assert_eq!(from_official(Some(0)), AutoFlush::EveryWrite);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoFlush {
    /// Only on `flush()`, a full write buffer, and `shutdown()` (the official client's `None`).
    #[default]
    Never,
    /// After every write (the official client's `0`).
    EveryWrite,
    /// At most this long after the first write that follows a flush (the official client's `N`).
    After(Duration),
}

/// The settings of one stream endpoint (a producer or a consumer).
///
/// ```
/// use std::time::Duration;
/// use zebrastream::client::{AutoFlush, Config};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .connect_timeout(Duration::from_secs(30))
///     .auto_flush(AutoFlush::After(Duration::from_millis(200)))
///     .build()
///     .unwrap();
/// assert_eq!(config.stream_path(), "/userspace/demo");
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) stream_path: String,
    pub(crate) connect_url: String,
    pub(crate) access_token: Option<SecretString>,
    pub(crate) content_type: Option<String>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) encryption: Encryption,
    pub(crate) auto_flush: AutoFlush,
    pub(crate) write_buffer_size: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) root_certificates: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("stream_path", &self.stream_path)
            .field("connect_url", &self.connect_url)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("content_type", &self.content_type)
            .field("connect_timeout", &self.connect_timeout)
            .field("encryption", &self.encryption)
            .field("auto_flush", &self.auto_flush)
            .field("write_buffer_size", &self.write_buffer_size)
            .finish()
    }
}

impl Config {
    /// Starts a configuration for the stream at `stream_path` (e.g. `/userspace/demo`).
    pub fn builder(stream_path: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                stream_path: stream_path.into(),
                connect_url: DEFAULT_CONNECT_URL.to_owned(),
                access_token: None,
                content_type: None,
                connect_timeout: None,
                encryption: Encryption::Plain,
                auto_flush: AutoFlush::Never,
                write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
                retry: RetryPolicy::default(),
                root_certificates: Vec::new(),
            },
            token_from_env: true,
        }
    }

    /// The stream path.
    pub fn stream_path(&self) -> &str {
        &self.stream_path
    }

    /// The Connect API base URL.
    pub fn connect_url(&self) -> &str {
        &self.connect_url
    }

    /// The content type a writer announces.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The connect timeout (None: wait as long as the relay lets us).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The encryption settings.
    pub fn encryption(&self) -> &Encryption {
        &self.encryption
    }

    /// The auto-flush policy.
    pub fn auto_flush(&self) -> AutoFlush {
        self.auto_flush
    }

    /// The write buffer size (largest HTTP chunk).
    pub fn write_buffer_size(&self) -> usize {
        self.write_buffer_size
    }

    /// True when an access token is configured (it is never shown).
    pub fn has_access_token(&self) -> bool {
        self.access_token.is_some()
    }

    /// A protocol client for this configuration.
    pub(crate) fn api_client(&self) -> Result<ApiClient, Error> {
        let mut builder = ApiClient::builder(&self.connect_url)
            .access_token(self.access_token.clone())
            .retry(self.retry);
        for certificate in &self.root_certificates {
            builder = builder.add_root_certificate(certificate.clone());
        }
        builder.build().map_err(Error::from)
    }
}

/// Builds a [`Config`]; see [`Config::builder`].
#[derive(Debug)]
pub struct ConfigBuilder {
    config: Config,
    token_from_env: bool,
}

impl ConfigBuilder {
    /// The Connect API base URL (default [`DEFAULT_CONNECT_URL`]).
    pub fn connect_url(mut self, url: impl Into<String>) -> Self {
        self.config.connect_url = url.into();
        self
    }

    /// The access token (default: the [`ACCESS_TOKEN_ENV`] environment variable).
    pub fn access_token(mut self, token: SecretString) -> Self {
        self.config.access_token = Some(token);
        self.token_from_env = false;
        self
    }

    /// Sends no access token, even if [`ACCESS_TOKEN_ENV`] is set.
    pub fn no_access_token(mut self) -> Self {
        self.config.access_token = None;
        self.token_from_env = false;
        self
    }

    /// The `Content-Type` a writer sends (default: none, the relay's default).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.config.content_type = Some(content_type.into());
        self
    }

    /// How long to wait for the peer to connect (default: no limit).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = Some(timeout);
        self
    }

    /// Encryption (default [`Encryption::Plain`]).
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.config.encryption = encryption;
        self
    }

    /// Auto-flush policy for writers (default [`AutoFlush::Never`]).
    pub fn auto_flush(mut self, auto_flush: AutoFlush) -> Self {
        self.config.auto_flush = auto_flush;
        self
    }

    /// The write buffer size, which is also the largest HTTP chunk
    /// (default 64 KiB, at most [`MAX_WRITE_BUFFER_SIZE`]).
    pub fn write_buffer_size(mut self, size: usize) -> Self {
        self.config.write_buffer_size = size;
        self
    }

    /// How failed Connect calls are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }

    /// Trusts an extra root certificate (PEM), e.g. a self-hosted relay's.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certificate = reqwest::Certificate::from_pem(pem)
            .map_err(|_| Error::InvalidConfig("the root certificate is not valid PEM".into()))?;
        self.config.root_certificates.push(certificate);
        Ok(self)
    }

    /// Checks the settings and builds the configuration.
    pub fn build(mut self) -> Result<Config, Error> {
        let config = &mut self.config;
        api::check_stream_path(&config.stream_path)?;
        api::parse_connect_url(&config.connect_url)?;
        if self.token_from_env {
            config.access_token = std::env::var(ACCESS_TOKEN_ENV).ok().map(SecretString::from);
        }
        // An empty token means "no token", as in the official client.
        if config
            .access_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().is_empty())
        {
            config.access_token = None;
        }
        if let Some(content_type) = &config.content_type {
            reqwest::header::HeaderValue::from_str(content_type).map_err(|_| {
                Error::InvalidConfig(format!("invalid content type {content_type:?}"))
            })?;
        }
        if config.write_buffer_size == 0 || config.write_buffer_size > MAX_WRITE_BUFFER_SIZE {
            return Err(Error::InvalidConfig(format!(
                "the write buffer size must be between 1 and {MAX_WRITE_BUFFER_SIZE} bytes"
            )));
        }
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = Config::builder("/a/b").no_access_token().build().unwrap();
        assert_eq!(c.connect_url(), DEFAULT_CONNECT_URL);
        assert_eq!(c.write_buffer_size(), DEFAULT_WRITE_BUFFER_SIZE);
        assert_eq!(c.auto_flush(), AutoFlush::Never);
        assert!(!c.has_access_token());
        assert!(matches!(
            Config::builder("no-slash").build(),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Config::builder("/a").connect_url("ftp://x").build(),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Config::builder("/a").content_type("a\nb").build(),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Config::builder("/a").write_buffer_size(0).build(),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn token_is_redacted_and_empty_means_none() {
        let c = Config::builder("/a")
            .access_token(SecretString::from("s3cr3t-token"))
            .build()
            .unwrap();
        assert!(c.has_access_token());
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let c = Config::builder("/a")
            .access_token(SecretString::from(""))
            .build()
            .unwrap();
        assert!(!c.has_access_token());
    }
}
