//! [`Config`]: everything a stream writer or reader needs, built once.

use std::time::Duration;

use secrecy::SecretString;

use super::{Error, Resume};
use crate::api::{self, ApiClient, ApiClientBuilder, RetryPolicy};

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
/// attempt (2^20); raise it in [`Opening::Passphrase`](super::Opening::Passphrase) only for
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

/// The settings of one stream endpoint (a producer or a consumer): where the
/// stream is and how to reach it. The key is not part of it: a writer is
/// given a [`Sealing`](super::Sealing), a reader an
/// [`Opening`](super::Opening), so one configuration can serve both ends.
///
/// Building it checks every setting and builds the HTTP client once; every
/// stream connected with it (and clones of it) shares that client's
/// connection pool.
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
/// assert!(!config.has_access_token()); // none unless given
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) stream_path: String,
    pub(crate) api: ApiClient,
    pub(crate) content_type: Option<String>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) auto_flush: AutoFlush,
    pub(crate) write_buffer_size: usize,
    pub(crate) resume: Option<Resume>,
}

impl Config {
    /// Starts a configuration for the stream at `stream_path` (e.g. `/userspace/demo`).
    pub fn builder(stream_path: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            stream_path: stream_path.into(),
            api: ApiClient::builder(DEFAULT_CONNECT_URL),
            content_type: None,
            connect_timeout: None,
            auto_flush: AutoFlush::Never,
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
            resume: None,
        }
    }

    /// The same settings for the stream at `stream_path` (checked as
    /// [`ConfigBuilder::build`] does), sharing this configuration's HTTP
    /// client and its connection pool: a service that serves many streams
    /// builds one configuration and derives the others.
    ///
    /// ```
    /// use zebrastream::client::Config;
    ///
    /// let base = Config::builder("/exports/monday").build().unwrap();
    /// let tuesday = base.with_stream_path("/exports/tuesday").unwrap();
    /// assert_eq!(tuesday.stream_path(), "/exports/tuesday");
    /// assert!(base.with_stream_path("no-slash").is_err());
    /// ```
    pub fn with_stream_path(&self, stream_path: impl Into<String>) -> Result<Config, Error> {
        let stream_path = stream_path.into();
        api::check_stream_path(&stream_path)?;
        Ok(Config {
            stream_path,
            ..self.clone()
        })
    }

    /// The stream path.
    pub fn stream_path(&self) -> &str {
        &self.stream_path
    }

    /// The Connect API base URL.
    pub fn connect_url(&self) -> &str {
        self.api.connect_url().as_str()
    }

    /// The content type a writer announces.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The connect timeout (None: wait as long as the relay lets us).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The auto-flush policy.
    pub fn auto_flush(&self) -> AutoFlush {
        self.auto_flush
    }

    /// The write buffer size (largest HTTP chunk).
    pub fn write_buffer_size(&self) -> usize {
        self.write_buffer_size
    }

    /// The resume settings, when resume is on.
    pub fn resume(&self) -> Option<&Resume> {
        self.resume.as_ref()
    }

    /// True when an access token is configured (it is never shown).
    pub fn has_access_token(&self) -> bool {
        self.api.has_access_token()
    }

    /// The protocol client of this configuration, shared by every stream
    /// connected with it.
    pub(crate) fn api_client(&self) -> &ApiClient {
        &self.api
    }
}

/// Builds a [`Config`]; see [`Config::builder`].
#[derive(Debug)]
pub struct ConfigBuilder {
    stream_path: String,
    /// The connection settings, passed through to the HTTP client.
    api: ApiClientBuilder,
    content_type: Option<String>,
    connect_timeout: Option<Duration>,
    auto_flush: AutoFlush,
    write_buffer_size: usize,
    resume: Option<Resume>,
}

impl ConfigBuilder {
    /// The Connect API base URL (default [`DEFAULT_CONNECT_URL`]).
    pub fn connect_url(mut self, url: impl Into<String>) -> Self {
        self.api = self.api.connect_url(url.into());
        self
    }

    /// The access token, sent as `Authorization: Bearer …` to the connect
    /// URL's origin only (default: none; an empty token means none, as in
    /// the official client).
    pub fn access_token(mut self, token: SecretString) -> Self {
        self.api = self.api.access_token(Some(token));
        self
    }

    /// The access token from the [`ACCESS_TOKEN_ENV`] environment variable,
    /// if it is set (what the official client does by default; here it is
    /// a choice, so a service never sends a token it did not mean to).
    pub fn access_token_from_env(mut self) -> Self {
        let token = std::env::var(ACCESS_TOKEN_ENV).ok().map(SecretString::from);
        self.api = self.api.access_token(token);
        self
    }

    /// Sends no access token (the default; clears one given before).
    pub fn no_access_token(mut self) -> Self {
        self.api = self.api.access_token(None);
        self
    }

    /// The `Content-Type` a writer sends (default: none, the relay's default).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// How long to wait for the peer to connect (default: no limit). It also
    /// bounds each step of a forward-secrecy exchange.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
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

    /// Turns resume on with these settings (default: off). Both the writer
    /// and the reader must turn it on; it needs an encrypted stream. See
    /// [`Resume`] and the [`resume`](super::resume) module.
    pub fn resume(mut self, resume: Resume) -> Self {
        self.resume = Some(resume);
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
        self.api = self.api.token_origins(origins);
        self
    }

    /// How failed Connect calls are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.api = self.api.retry(retry);
        self
    }

    /// Trusts an extra root certificate (PEM), e.g. a self-hosted relay's.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certificate = reqwest::Certificate::from_pem(pem)
            .map_err(|_| Error::InvalidConfig("the root certificate is not valid PEM".into()))?;
        self.api = self.api.add_root_certificate(certificate);
        Ok(self)
    }

    /// Checks the settings and builds the configuration with its HTTP client.
    pub fn build(self) -> Result<Config, Error> {
        api::check_stream_path(&self.stream_path)?;
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
        if let Some(resume) = &self.resume {
            resume.check().map_err(Error::InvalidConfig)?;
        }
        // The connect URL and the token origins are parsed here, once.
        let api = self.api.build()?;
        Ok(Config {
            stream_path: self.stream_path,
            api,
            content_type: self.content_type,
            connect_timeout: self.connect_timeout,
            auto_flush: self.auto_flush,
            write_buffer_size: self.write_buffer_size,
            resume: self.resume,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = Config::builder("/a/b").build().unwrap();
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
        let err = Config::builder("/a")
            .token_origins(["https://data.example/path"])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("token origin"), "{err}");
    }

    /// Resume settings that could not work are refused when the
    /// configuration is built, naming the setting.
    #[test]
    fn resume_settings_are_checked() {
        use crate::client::resume::MIN_RESUME_BUFFER;
        let build = |resume: Resume| Config::builder("/a").resume(resume).build();
        assert_eq!(
            build(Resume::default()).unwrap().resume(),
            Some(&Resume::default())
        );
        assert!(build(Resume::default().with_buffer(MIN_RESUME_BUFFER)).is_ok());
        let err = build(Resume::default().with_buffer(MIN_RESUME_BUFFER - 1)).unwrap_err();
        assert!(err.to_string().contains("resume buffer"), "{err}");
        let err = build(Resume::default().with_stall_timeout(Duration::ZERO)).unwrap_err();
        assert!(err.to_string().contains("stall timeout"), "{err}");
        let err = build(Resume::default().with_resume_timeout(Duration::ZERO)).unwrap_err();
        assert!(err.to_string().contains("resume timeout"), "{err}");
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

    /// The environment's token is used only when asked for: a service that
    /// happens to run with ZEBRASTREAM_ACCESS_TOKEN set (a CLI user's shell)
    /// does not send it to a relay it was not meant for.
    #[test]
    fn the_environment_token_is_opt_in() {
        // The variable is process-wide: this is the only test that sets it.
        std::env::set_var(ACCESS_TOKEN_ENV, "env-token");
        let plain = Config::builder("/a").build().unwrap();
        let from_env = Config::builder("/a")
            .access_token_from_env()
            .build()
            .unwrap();
        std::env::remove_var(ACCESS_TOKEN_ENV);
        assert!(!plain.has_access_token());
        assert!(from_env.has_access_token());
    }
}
