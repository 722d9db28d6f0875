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
/// The largest scrypt work factor (log2 N) a reader accepts by default:
/// 2^18, what our writer and the official client use. A stream from a relay
/// with a higher factor makes the reader spend up to 1 GiB and seconds per
/// attempt (2^20); raise it with [`ConfigBuilder::max_work_factor`] only for
/// a writer you trust to use more.
pub const DEFAULT_READER_MAX_WORK_FACTOR: u8 = 18;

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
/// use zebrastream::client::Encryption;
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .encryption(Encryption::Plain)
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
    pub(crate) token_origins: Vec<String>,
    pub(crate) max_work_factor: u8,
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
            .field("token_origins", &self.token_origins)
            .field("max_work_factor", &self.max_work_factor)
            .finish()
    }
}

impl Config {
    /// Starts a configuration for the stream at `stream_path` (e.g. `/userspace/demo`).
    ///
    /// Choose the encryption with [`ConfigBuilder::encryption`]: there is no
    /// default, so plaintext is always an explicit [`Encryption::Plain`].
    pub fn builder(stream_path: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            stream_path: stream_path.into(),
            connect_url: DEFAULT_CONNECT_URL.to_owned(),
            access_token: None,
            token_from_env: true,
            content_type: None,
            connect_timeout: None,
            encryption: None,
            auto_flush: AutoFlush::Never,
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
            retry: RetryPolicy::default(),
            root_certificates: Vec::new(),
            token_origins: Vec::new(),
            max_work_factor: DEFAULT_READER_MAX_WORK_FACTOR,
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

    /// The origins trusted with the token besides the connect URL's
    /// (see [`ConfigBuilder::token_origins`]).
    pub fn token_origins(&self) -> &[String] {
        &self.token_origins
    }

    /// The largest scrypt work factor (log2 N) a reader accepts.
    pub fn max_work_factor(&self) -> u8 {
        self.max_work_factor
    }

    /// True when an access token is configured (it is never shown).
    pub fn has_access_token(&self) -> bool {
        self.access_token.is_some()
    }

    /// A protocol client for this configuration.
    pub(crate) fn api_client(&self) -> Result<ApiClient, Error> {
        let mut builder = ApiClient::builder(&self.connect_url)
            .access_token(self.access_token.clone())
            .token_origins(self.token_origins.iter().cloned())
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
    stream_path: String,
    connect_url: String,
    access_token: Option<SecretString>,
    token_from_env: bool,
    content_type: Option<String>,
    connect_timeout: Option<Duration>,
    encryption: Option<Encryption>,
    auto_flush: AutoFlush,
    write_buffer_size: usize,
    retry: RetryPolicy,
    root_certificates: Vec<reqwest::Certificate>,
    token_origins: Vec<String>,
    max_work_factor: u8,
}

impl ConfigBuilder {
    /// The Connect API base URL (default [`DEFAULT_CONNECT_URL`]).
    pub fn connect_url(mut self, url: impl Into<String>) -> Self {
        self.connect_url = url.into();
        self
    }

    /// The access token (default: the [`ACCESS_TOKEN_ENV`] environment variable).
    pub fn access_token(mut self, token: SecretString) -> Self {
        self.access_token = Some(token);
        self.token_from_env = false;
        self
    }

    /// Sends no access token, even if [`ACCESS_TOKEN_ENV`] is set.
    pub fn no_access_token(mut self) -> Self {
        self.access_token = None;
        self.token_from_env = false;
        self
    }

    /// The `Content-Type` a writer sends (default: none, the relay's default).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// How long to wait for the peer to connect (default: no limit).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The encryption (required: [`build`](Self::build) fails without it;
    /// [`Encryption::Plain`] chooses plaintext explicitly).
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = Some(encryption);
        self
    }

    /// Auto-flush policy for writers (default [`AutoFlush::Never`]).
    pub fn auto_flush(mut self, auto_flush: AutoFlush) -> Self {
        self.auto_flush = auto_flush;
        self
    }

    /// The write buffer size, which is also the largest HTTP chunk
    /// (default 64 KiB, at most [`MAX_WRITE_BUFFER_SIZE`]).
    pub fn write_buffer_size(mut self, size: usize) -> Self {
        self.write_buffer_size = size;
        self
    }

    /// Also trusts these origins (`scheme://host[:port]`) with the access
    /// token and the stream, for a relay whose Connect API answers with data
    /// URLs on another origin. By default only the connect URL's origin is
    /// trusted (plus `https://data.zebrastream.io` for
    /// [`DEFAULT_CONNECT_URL`]); a data URL elsewhere fails at connect time,
    /// before anything is sent to it. See [`api::ApiClientBuilder::token_origins`].
    pub fn token_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.token_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// The largest scrypt work factor (log2 N) a reader accepts (default
    /// [`DEFAULT_READER_MAX_WORK_FACTOR`], 2^18). A passphrase stream with a higher
    /// factor fails before any scrypt work is done.
    pub fn max_work_factor(mut self, log_n: u8) -> Self {
        self.max_work_factor = log_n;
        self
    }

    /// How failed Connect calls are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Trusts an extra root certificate (PEM), e.g. a self-hosted relay's.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certificate = reqwest::Certificate::from_pem(pem)
            .map_err(|_| Error::InvalidConfig("the root certificate is not valid PEM".into()))?;
        self.root_certificates.push(certificate);
        Ok(self)
    }

    /// Checks the settings and builds the configuration.
    pub fn build(self) -> Result<Config, Error> {
        api::check_stream_path(&self.stream_path)?;
        api::parse_connect_url(&self.connect_url)?;
        for origin in &self.token_origins {
            api::parse_token_origin(origin)?;
        }
        let encryption = self.encryption.ok_or_else(|| {
            Error::InvalidConfig(
                "no encryption chosen: call .encryption(...) with a key, or Encryption::Plain to send and accept plaintext".into(),
            )
        })?;
        let access_token = if self.token_from_env {
            std::env::var(ACCESS_TOKEN_ENV).ok().map(SecretString::from)
        } else {
            self.access_token
        };
        // An empty token means "no token", as in the official client.
        let access_token = access_token.filter(|t| !t.expose_secret().is_empty());
        if let Some(content_type) = &self.content_type {
            reqwest::header::HeaderValue::from_str(content_type).map_err(|_| {
                Error::InvalidConfig(format!("invalid content type {content_type:?}"))
            })?;
        }
        if self.write_buffer_size == 0 || self.write_buffer_size > MAX_WRITE_BUFFER_SIZE {
            return Err(Error::InvalidConfig(format!(
                "the write buffer size must be between 1 and {MAX_WRITE_BUFFER_SIZE} bytes"
            )));
        }
        Ok(Config {
            stream_path: self.stream_path,
            connect_url: self.connect_url,
            access_token,
            content_type: self.content_type,
            connect_timeout: self.connect_timeout,
            encryption,
            auto_flush: self.auto_flush,
            write_buffer_size: self.write_buffer_size,
            retry: self.retry,
            root_certificates: self.root_certificates,
            token_origins: self.token_origins,
            max_work_factor: self.max_work_factor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = Config::builder("/a/b")
            .no_access_token()
            .encryption(Encryption::Plain)
            .build()
            .unwrap();
        assert_eq!(c.connect_url(), DEFAULT_CONNECT_URL);
        assert_eq!(c.max_work_factor(), DEFAULT_READER_MAX_WORK_FACTOR);
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
        let err = Config::builder("/a")
            .encryption(Encryption::Plain)
            .token_origins(["https://data.example/path"])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("token origin"), "{err}");
    }

    /// Plaintext is never a silent default: a reader or writer config
    /// without a chosen encryption does not build, and says what to call.
    #[test]
    fn encryption_must_be_chosen() {
        let err = Config::builder("/a/b")
            .no_access_token()
            .build()
            .unwrap_err();
        match &err {
            Error::InvalidConfig(why) => {
                assert!(why.contains(".encryption("), "{why}");
                assert!(why.contains("Encryption::Plain"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let c = Config::builder("/a/b")
            .no_access_token()
            .encryption(Encryption::Plain)
            .build()
            .unwrap();
        assert!(!c.encryption().is_encrypted());
    }

    #[test]
    fn token_is_redacted_and_empty_means_none() {
        let c = Config::builder("/a")
            .access_token(SecretString::from("s3cr3t-token"))
            .encryption(Encryption::Plain)
            .build()
            .unwrap();
        assert!(c.has_access_token());
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let c = Config::builder("/a")
            .access_token(SecretString::from(""))
            .encryption(Encryption::Plain)
            .build()
            .unwrap();
        assert!(!c.has_access_token());
    }
}
