//! A producer: streams its standard input to a consumer through a relay.
//!
//! ```text
//! zebrastream relay --listen 127.0.0.1:8080 --open        # terminal 1
//! cargo run --example consumer -- /demo/stream > out.bin   # terminal 2
//! cargo run --example producer -- /demo/stream < in.bin    # terminal 3
//! ```
//!
//! Environment: `ZEBRASTREAM_CONNECT_URL` (default `http://127.0.0.1:8080/v0`),
//! `ZEBRASTREAM_ACCESS_TOKEN` (optional), `ZEBRASTREAM_PASSPHRASE` (required unless
//! `ZEBRASTREAM_PLAIN=1`: encrypts end to end with age-rt; the consumer needs the same passphrase).

use std::process::ExitCode;
use std::time::Duration;

use secrecy::SecretString;
use zebrastream::client::{self, AutoFlush, Config, Sealing};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(stream_path) = std::env::args().nth(1) else {
        eprintln!("usage: producer STREAM_PATH < data");
        return ExitCode::from(2);
    };
    let connect_url = std::env::var("ZEBRASTREAM_CONNECT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/v0".to_owned());
    let builder = Config::builder(stream_path)
        .access_token_from_env()
        .connect_url(connect_url)
        .connect_timeout(Duration::from_secs(300))
        // Interactive input (a terminal, a log tail) reaches the consumer within 200 ms.
        .auto_flush(AutoFlush::After(Duration::from_millis(200)));
    // Plaintext only when asked for: an unencrypted stream is never a silent default.
    let sealing = match (
        std::env::var("ZEBRASTREAM_PASSPHRASE"),
        std::env::var("ZEBRASTREAM_PLAIN").as_deref(),
    ) {
        (Ok(passphrase), _) => Sealing::passphrase(SecretString::from(passphrase)),
        (Err(_), Ok("1")) => Sealing::Plain,
        (Err(_), _) => {
            eprintln!(
                "producer: set ZEBRASTREAM_PASSPHRASE (or ZEBRASTREAM_PLAIN=1 for plaintext)"
            );
            return ExitCode::from(2);
        }
    };
    let config = match builder.build() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("producer: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "producer: waiting for a consumer on {}",
        config.stream_path()
    );
    match client::push(&config, &sealing, tokio::io::stdin()).await {
        Ok(report) => {
            eprintln!(
                "producer: sent {} bytes in {:.2?}, confirmed by the relay",
                report.bytes, report.duration
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("producer: {e}");
            ExitCode::FAILURE
        }
    }
}
