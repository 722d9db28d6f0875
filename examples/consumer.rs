//! A consumer: writes a stream from a relay to its standard output.
//!
//! See `examples/producer.rs` for how to run the pair. The output is complete
//! only when the program exits with status 0; a truncated or tampered stream
//! exits non-zero with the reason on stderr.
//!
//! Environment: `ZEBRASTREAM_CONNECT_URL` (default `http://127.0.0.1:8080/v0`),
//! `ZEBRASTREAM_ACCESS_TOKEN` (optional), `ZEBRASTREAM_PASSPHRASE` (required unless
//! `ZEBRASTREAM_PLAIN=1`: decrypts; age-rt or age v1 is detected from the stream).

use std::process::ExitCode;
use std::time::Duration;

use secrecy::SecretString;
use zebrastream::client::{self, Config, Opening};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(stream_path) = std::env::args().nth(1) else {
        eprintln!("usage: consumer STREAM_PATH > data");
        return ExitCode::from(2);
    };
    let connect_url = std::env::var("ZEBRASTREAM_CONNECT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/v0".to_owned());
    let builder = Config::builder(stream_path)
        .access_token_from_env()
        .connect_url(connect_url)
        .connect_timeout(Duration::from_secs(300));
    // Plaintext only when asked for: an unencrypted stream is never a silent default.
    let opening = match (
        std::env::var("ZEBRASTREAM_PASSPHRASE"),
        std::env::var("ZEBRASTREAM_PLAIN").as_deref(),
    ) {
        (Ok(passphrase), _) => Opening::passphrase(SecretString::from(passphrase)),
        (Err(_), Ok("1")) => Opening::Plain,
        (Err(_), _) => {
            eprintln!(
                "consumer: set ZEBRASTREAM_PASSPHRASE (or ZEBRASTREAM_PLAIN=1 for plaintext)"
            );
            return ExitCode::from(2);
        }
    };
    let config = match builder.build() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("consumer: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "consumer: waiting for a producer on {}",
        config.stream_path()
    );
    match client::pull(&config, &opening, tokio::io::stdout()).await {
        Ok(report) => {
            eprintln!(
                "consumer: received {} bytes in {:.2?}",
                report.bytes, report.duration
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("consumer: {e}");
            ExitCode::FAILURE
        }
    }
}
