//! An HTTP gateway in front of a relay, in plain hyper: the two handlers a
//! service copies.
//!
//! - `PUT /<stream path>` streams the request body into a [`StreamWriter`]
//!   (encrypted before it leaves this process) and answers `201 Created`
//!   only once the relay confirmed that the consumer received every byte;
//!   any failure is a `502` naming the cause, never a silent short stream.
//! - `GET /<stream path>` serves a [`StreamReader`] as the response body
//!   (decrypted and authenticated here). A stream that breaks off or fails
//!   authentication aborts the response, so the HTTP client sees an error,
//!   never a clean end after partial data.
//!
//! Neither handler buffers a whole stream: bytes flow frame by frame, with
//! backpressure in both directions.
//!
//! ```text
//! zebrastream relay --listen 127.0.0.1:8080 --open                   # terminal 1
//! ZEBRASTREAM_PASSPHRASE=secret cargo run --example gateway          # terminal 2: prints its URL
//! curl -sf http://GATEWAY/demo/s > out &                             # a consumer
//! curl -sf -T in.bin http://GATEWAY/demo/s                           # a producer
//! ```
//!
//! Environment: `ZEBRASTREAM_CONNECT_URL` (default
//! `http://127.0.0.1:8080/v0`), `ZEBRASTREAM_ACCESS_TOKEN` (optional),
//! `ZEBRASTREAM_PASSPHRASE` (required: the key of every stream through this
//! gateway), `GATEWAY_LISTEN` (default `127.0.0.1:0`; the bound address is
//! printed as `listening on http://ADDR`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use zebrastream::client::{
    Config, Error, Opening, Sealing, SecretString, StreamReader, StreamWriter,
};

/// What every request shares: the relay settings (built once, so every
/// request shares one HTTP client and its connection pool; each request
/// derives the configuration of its own stream path) and the keys.
pub(crate) struct Gateway {
    pub(crate) relay: Config,
    pub(crate) sealing: Sealing,
    pub(crate) opening: Opening,
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

impl Gateway {
    /// The configuration of the stream a request names.
    fn config(&self, path: &str) -> Result<Config, Error> {
        self.relay.with_stream_path(path)
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let config = match self.config(&path) {
            Ok(config) => config,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("{path}: {e}\n")),
        };
        match *request.method() {
            Method::PUT => match self.upload(&config, request.into_body()).await {
                Ok(bytes) => text(
                    StatusCode::CREATED,
                    format!("{path}: delivered {bytes} bytes\n"),
                ),
                Err(e) => text(StatusCode::BAD_GATEWAY, format!("{path}: {e}\n")),
            },
            Method::GET => match StreamReader::connect(&config, &self.opening).await {
                Ok(reader) => download(reader),
                Err(e) => text(StatusCode::BAD_GATEWAY, format!("{path}: {e}\n")),
            },
            _ => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "PUT or GET a stream path\n".into(),
            ),
        }
    }

    /// The request body, frame by frame, into a writer; `Ok` only once the
    /// relay confirmed delivery. Any failure (the client's body breaking off
    /// included) aborts the upload, so the consumer sees an error too.
    async fn upload(&self, config: &Config, mut body: Incoming) -> Result<u64, Error> {
        let mut writer = StreamWriter::connect(config, &self.sealing).await?;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    writer.abort();
                    return Err(Error::Io(std::io::Error::other(format!(
                        "the request body broke off: {e}"
                    ))));
                }
            };
            if let Ok(data) = frame.into_data() {
                writer.write_all(&data).await?;
            }
        }
        writer.shutdown().await?;
        Ok(writer.bytes_written())
    }
}

/// The reader as a streamed response body. A read error ends the body with
/// an error, which makes hyper abort the response instead of finishing it.
fn download(reader: StreamReader) -> Response<Body> {
    let frames = ReaderStream::new(reader).map_ok(Frame::data);
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(StreamBody::new(frames).boxed_unsync())
        .expect("a valid response")
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from(message))
                .map_err(|never: Infallible| match never {})
                .boxed_unsync(),
        )
        .expect("a valid response")
}

/// Serves the gateway's two routes on `listener`, one task per connection.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
) -> std::io::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle(request).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await
            {
                eprintln!("gateway: connection: {e}");
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(passphrase) = std::env::var("ZEBRASTREAM_PASSPHRASE") else {
        eprintln!(
            "gateway: set ZEBRASTREAM_PASSPHRASE, the key of every stream through this gateway"
        );
        std::process::exit(2);
    };
    let passphrase = || SecretString::from(passphrase.clone());
    let connect_url = std::env::var("ZEBRASTREAM_CONNECT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/v0".to_owned());
    // A configuration needs a stream path; each request replaces it.
    let relay = Config::builder("/gateway")
        .connect_url(connect_url)
        .access_token_from_env()
        .build()?;
    let gateway = Arc::new(Gateway {
        relay,
        sealing: Sealing::passphrase(passphrase()),
        opening: Opening::passphrase(passphrase()),
    });
    let listen = std::env::var("GATEWAY_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, gateway).await?;
    Ok(())
}
