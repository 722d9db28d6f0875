//! A tiny scripted HTTP server for the protocol client's unit tests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type TestBody = BoxBody<Bytes, BoxError>;

/// A fixed response.
pub(crate) fn respond(status: u16, body: &str) -> Response<TestBody> {
    let body = Full::new(Bytes::from(body.to_owned()))
        .map_err(|never| match never {})
        .boxed();
    Response::builder().status(status).body(body).unwrap()
}

/// A streaming response fed by the returned sender (`Err` aborts it).
pub(crate) fn streaming(
    status: u16,
) -> (
    mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    Response<TestBody>,
) {
    let (tx, rx) = mpsc::channel(16);
    let body = BodyExt::boxed(StreamBody::new(ReceiverStream::new(rx)));
    (tx, Response::builder().status(status).body(body).unwrap())
}

/// Serves every connection with `handler` until dropped; returns the base URL.
pub(crate) async fn serve<H, F>(handler: H) -> (String, tokio::task::JoinHandle<()>)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), task)
}
