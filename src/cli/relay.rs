//! `zebrastream relay`: run a Connect + Data API relay until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use zebrastream::relay::{self, Relay, RelayAuth, RelayConfig};

use super::{CmdResult, ExitKind, Failure};

/// Serve the ZebraStream Connect and Data APIs (a self-hosted relay).
///
/// Clients use `<base>/v0` as their connect URL; data flows through
/// `<base>/data/<stream path>`. Stop with Ctrl-C or SIGTERM: running
/// transfers finish first; a second signal stops at once.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address and port to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "ZEBRASTREAM_RELAY_LISTEN"
    )]
    listen: SocketAddr,
    /// Tokens file (TOML, or YAML when it ends in .yaml/.yml) listing who may read and write which paths.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "open",
        env = "ZEBRASTREAM_RELAY_TOKENS"
    )]
    tokens: Option<PathBuf>,
    /// No authentication at all: anyone who reaches the port may read and write every stream (demos, tests).
    #[arg(long)]
    open: bool,
    /// Base URL clients reach this relay at (behind a proxy); data URLs are built from it.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// PEM certificate chain: serve HTTPS (HTTP/1.1 and h2).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Connect-API wait, in seconds, when a request has no `timeout` parameter.
    #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_CONNECT_WAIT.as_secs())]
    connect_wait: u64,
    /// Cap, in seconds, on any Connect-API wait a client asks for.
    #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_CONNECT_WAIT_MAX.as_secs())]
    max_connect_wait: u64,
    /// How long, in seconds, an unpaired Data-API PUT or GET is held.
    #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_DATA_WAIT.as_secs())]
    data_wait: u64,
    /// Maximum number of stream paths with a waiter or a transfer at once.
    #[arg(long, value_name = "N", default_value_t = relay::DEFAULT_MAX_STREAMS)]
    max_streams: usize,
    /// Streams (waiting or transferring) one token may hold at once, unless its tokens-file entry
    /// sets max_streams; on an open relay, one client address. Over it: 429.
    #[arg(long, value_name = "N", default_value_t = relay::DEFAULT_STREAM_QUOTA)]
    stream_quota: usize,
    /// Maximum number of client connections held at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = relay::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Maximum number of connections from one client address (IPv4 address or IPv6 /64); raise
    /// it for load tests that run many clients from one address.
    #[arg(long, value_name = "N", default_value_t = relay::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
    /// Address of a balancer in front of the relay (repeatable): exempt from
    /// --max-connections-per-ip; its X-Forwarded-For names the client.
    #[arg(long, value_name = "ADDR")]
    trusted_proxy: Vec<IpAddr>,
    /// Seconds from accept to the first complete request head (TLS handshake and h2 included).
    #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_HEAD_TIMEOUT.as_secs())]
    head_timeout: u64,
    /// Seconds a connection with no open request (idle h2, idle keep-alive) is kept.
    #[arg(long, value_name = "SECS", default_value_t = relay::DEFAULT_IDLE_TIMEOUT.as_secs())]
    idle_timeout: u64,
    /// Serve GET /metrics on this separate address (never on the public one), e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// When a producer's PUT is answered: `streaming` (full duplex), `after-upload` (once the
    /// transfer ended; needed behind nginx), or `auto` (after-upload for requests that came
    /// through a proxy, i.e. carry Forwarded, X-Forwarded-For or Via).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = UploadResponseArg::Auto)]
    upload_response: UploadResponseArg,
}

/// `--upload-response` values (see [`relay::UploadResponse`]).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum UploadResponseArg {
    Auto,
    Streaming,
    AfterUpload,
}

impl From<UploadResponseArg> for relay::UploadResponse {
    fn from(arg: UploadResponseArg) -> Self {
        match arg {
            UploadResponseArg::Auto => relay::UploadResponse::Auto,
            UploadResponseArg::Streaming => relay::UploadResponse::Streaming,
            UploadResponseArg::AfterUpload => relay::UploadResponse::AfterUpload,
        }
    }
}

impl RelayArgs {
    fn config(&self) -> Result<RelayConfig, Failure> {
        let auth =
            match (&self.tokens, self.open) {
                (Some(file), false) => RelayAuth::TokensFile(file.clone()),
                (None, true) => RelayAuth::Open,
                _ => return Err(Failure::usage(
                    "choose who may use the relay: --tokens FILE, or --open for no authentication",
                )),
            };
        let mut config = RelayConfig::default()
            .listen(self.listen)
            .auth(auth)
            .connect_wait(
                Duration::from_secs(self.connect_wait),
                Duration::from_secs(self.max_connect_wait),
            )
            .data_wait(Duration::from_secs(self.data_wait))
            .max_streams(self.max_streams)
            .stream_quota(self.stream_quota)
            .max_connections(self.max_connections)
            .max_connections_per_ip(self.max_connections_per_ip)
            .head_timeout(Duration::from_secs(self.head_timeout))
            .idle_timeout(Duration::from_secs(self.idle_timeout))
            .upload_response(self.upload_response.into());
        for proxy in &self.trusted_proxy {
            config = config.trusted_proxy(*proxy);
        }
        if let Some(addr) = self.metrics_listen {
            config = config.metrics_listen(addr);
        }
        if let Some(url) = &self.public_url {
            config = config.public_url(url.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config = config.tls(cert.clone(), key.clone());
        }
        Ok(config)
    }
}

/// Runs the relay until a signal arrives.
pub fn run(args: RelayArgs) -> CmdResult {
    // An open relay is announced once, by the library's warning (in the log
    // format, so `-q` silences it like every other warning).
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(ExitKind::Other, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: RelayConfig) -> CmdResult {
    let handle = Relay::bind(config).await.map_err(|e| {
        let kind = match e {
            relay::Error::Bind { .. } => ExitKind::Other,
            _ => ExitKind::Usage,
        };
        Failure::new(kind, e.to_string())
    })?;
    eprintln!(
        "zebrastream: relay listening on {} (connect URL {})",
        handle.local_addr(),
        handle.connect_url()
    );
    if let Some(addr) = handle.metrics_addr() {
        eprintln!(
            "zebrastream: metrics on http://{addr}{}",
            relay::METRICS_PATH
        );
    }
    stop_signal().await;
    eprintln!(
        "zebrastream: shutting down: running transfers finish first (signal again to stop now)"
    );
    tokio::select! {
        _ = handle.shutdown() => {}
        _ = stop_signal() => eprintln!("zebrastream: stopped at once"),
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
