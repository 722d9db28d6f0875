//! [`ApiClient`]: the HTTP client for the Connect API and the Data API.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::connect::{connect_request_url, parse_connect_url, parse_data_url};
use super::{ConnectMode, Download, Error, Operation, RetryPolicy, Upload};

/// How long establishing a TCP (and TLS) connection may take, per attempt
/// (the official client uses the same 10 s).
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A protocol client bound to one Connect API base URL and one access token.
///
/// Cheap to clone (the connection pool is shared).
///
/// ```no_run
/// # async fn demo() -> Result<(), zebrastream::api::Error> {
/// use tokio::io::AsyncWriteExt;
/// use zebrastream::api::{ApiClient, ConnectMode};
///
/// let api = ApiClient::builder("http://127.0.0.1:8080/v0").build()?;
/// let data_url = api.connect("/demo/stream", ConnectMode::AwaitReader, None).await?;
/// let mut upload = api.upload(&data_url, Some("text/plain"), 64 * 1024)?;
/// upload.sink.write_all(b"hello\n").await.map_err(|_| zebrastream::api::Error::UploadClosed)?;
/// upload.sink.shutdown().await.map_err(|_| zebrastream::api::Error::UploadClosed)?;
/// upload.status.await?; // the relay confirmed the transfer
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    connect_url: Url,
    token: Option<SecretString>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("connect_url", &self.connect_url.as_str())
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("retry", &self.retry)
            .finish()
    }
}

/// Builds an [`ApiClient`].
#[derive(Debug)]
pub struct ApiClientBuilder {
    connect_url: String,
    token: Option<SecretString>,
    retry: RetryPolicy,
    root_certificates: Vec<reqwest::Certificate>,
}

impl ApiClientBuilder {
    /// The access token sent as `Authorization: Bearer …` (none when empty).
    pub fn access_token(mut self, token: Option<SecretString>) -> Self {
        self.token = token.filter(|t| !t.expose_secret().is_empty());
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
            retry: RetryPolicy::default(),
            root_certificates: Vec::new(),
        }
    }

    /// The Connect API base URL.
    pub fn connect_url(&self) -> &Url {
        &self.connect_url
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
    pub async fn connect(
        &self,
        stream_path: &str,
        mode: ConnectMode,
        timeout: Option<Duration>,
    ) -> Result<Url, Error> {
        let url = connect_request_url(&self.connect_url, stream_path, mode, timeout)?;
        let attempts = self.connect_with_retries(&url);
        match timeout {
            Some(limit) => tokio::time::timeout(limit, attempts)
                .await
                .map_err(|_| Error::ConnectTimeout(limit))?,
            None => attempts.await,
        }
    }

    async fn connect_with_retries(&self, url: &Url) -> Result<Url, Error> {
        let mut run = self.retry.start();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let started = Instant::now();
            let error = match self.connect_once(url).await {
                Ok(data_url) => return Ok(data_url),
                Err(Error::Network {
                    operation, source, ..
                }) => Error::Network {
                    operation,
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
            let delay = run.next_delay(started.elapsed(), &mut rand::thread_rng());
            match delay {
                Some(delay) => {
                    tracing::debug!(%error, ?delay, "connect failed, retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(error),
            }
        }
    }

    async fn connect_once(&self, url: &Url) -> Result<Url, Error> {
        let op = Operation::Connect;
        let response = self
            .authorized(self.http.get(url.clone()))
            .send()
            .await
            .map_err(|e| Error::network(op, 1, e))?;
        if !response.status().is_success() {
            return Err(Error::from_status(op, response.status()));
        }
        let body = response
            .text()
            .await
            .map_err(|e| Error::network(op, 1, e))?;
        parse_data_url(&self.connect_url, &body)
    }

    /// Starts the Data API `PUT` to `data_url` in a background task and
    /// returns its body sink and status at once. Must run inside a Tokio
    /// runtime. The upload is never retried.
    ///
    /// `buffer_size` is the largest HTTP chunk; `0` sends every write as its
    /// own chunk.
    pub fn upload(
        &self,
        data_url: &Url,
        content_type: Option<&str>,
        buffer_size: usize,
    ) -> Result<Upload, Error> {
        let mut request = self.authorized(self.http.put(data_url.clone()));
        if let Some(content_type) = content_type {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| Error::InvalidContentType(content_type.to_owned()))?;
            request = request.header(CONTENT_TYPE, value);
        }
        Ok(Upload::start(request, buffer_size))
    }

    /// Sends the Data API `GET` to `data_url` and returns the body once the
    /// response head arrived. The download is never retried.
    pub async fn download(&self, data_url: &Url) -> Result<Download, Error> {
        let op = Operation::Download;
        let response = self
            .authorized(self.http.get(data_url.clone()))
            .send()
            .await
            .map_err(|e| Error::network(op, 1, e))?;
        if !response.status().is_success() {
            return Err(Error::from_status(op, response.status()));
        }
        Ok(Download::new(response))
    }
}
