//! A hostile relay for attack tests: it speaks just enough of the Connect and
//! Data APIs for our clients to talk to it, and does what an attacker who runs
//! a relay can do.
//!
//! - **Records** every request (method, URI, `Authorization`, `Host`) and every
//!   `PUT` body in full, by stream path.
//! - **Serves** a `GET` on a data path with, in this order: a body chosen for
//!   that path ([`HostileRelay::serve`]), or the last body recorded for that
//!   path (a store-and-forward relay: the `GET` waits until a `PUT` to the
//!   same path has finished). A `GET` therefore sees exactly what a replay or
//!   an injection would put on the wire.
//! - **Truncates**: [`HostileRelay::truncate_at`] ends every served body after
//!   that many bytes by dropping the connection (no chunked terminator).
//! - **Redirects** Connect answers: [`HostileRelay::answer_connect_with`] makes
//!   every Connect call answer with a data URL of the attacker's choosing
//!   (another host or port, `http` instead of `https`, …); by default the
//!   answer is this relay's own `/data<path>`.
//!
//! It runs on its own thread and runtime, so sync tests (the CLI) and async
//! tests (the library) use it alike. Every `PUT` is answered with
//! `[STATE:TRANSFER_SUCCESSFUL]` once its body ended, as a real relay would
//! after a consumer took it all.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

/// How long a `GET` waits for a body to serve before answering 404.
const GET_WAIT: Duration = Duration::from_secs(60);

/// One request the relay saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The request target (path and query).
    pub uri: String,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    /// The `Host` header, as sent.
    pub host: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Finished `PUT` bodies by stream path (without `/data`), oldest first.
    recorded: HashMap<String, Vec<Vec<u8>>>,
    /// Bodies chosen by the test, by stream path.
    chosen: HashMap<String, Vec<u8>>,
    truncate_at: Option<usize>,
    connect_answer: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    addr: SocketAddr,
}

/// A running hostile relay on a free loopback port; stops when dropped.
pub struct HostileRelay {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileRelay {
    /// Starts a hostile relay on `127.0.0.1`, port chosen by the OS.
    pub fn start() -> HostileRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            addr,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task_shared = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    while let Ok((socket, _)) = listener.accept().await {
                        let shared = task_shared.clone();
                        tokio::spawn(async move {
                            let service =
                                hyper::service::service_fn(move |req| handle(shared.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        HostileRelay {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/v0`: the Connect API base URL clients are given.
    pub fn connect_url(&self) -> String {
        format!("http://{}/v0", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// The bodies of every finished `PUT` to `path` (a stream path such as
    /// `/a/b`), oldest first.
    pub fn recorded(&self, path: &str) -> Vec<Vec<u8>> {
        self.lock().recorded.get(path).cloned().unwrap_or_default()
    }

    /// Every finished `PUT` body, by stream path.
    pub fn all_recorded(&self) -> HashMap<String, Vec<Vec<u8>>> {
        self.lock().recorded.clone()
    }

    /// Waits (up to 60 s) until a `PUT` to `path` has finished; returns its body.
    pub fn wait_recorded(&self, path: &str) -> Vec<u8> {
        let state = self.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, GET_WAIT, |s| !s.recorded.contains_key(path))
            .unwrap();
        state
            .recorded
            .get(path)
            .and_then(|b| b.last().cloned())
            .unwrap_or_else(|| panic!("no PUT to {path} within {GET_WAIT:?}"))
    }

    /// From now on, a `GET` of `path` gets `body` (whatever was `PUT` there).
    pub fn serve(&self, path: &str, body: Vec<u8>) {
        self.lock().chosen.insert(path.to_owned(), body);
        self.shared.changed.notify_all();
    }

    /// Forgets what was recorded and chosen (the requests seen stay).
    pub fn forget_bodies(&self) {
        let mut state = self.lock();
        state.recorded.clear();
        state.chosen.clear();
    }

    /// Every served body ends after `bytes` bytes, with the connection
    /// dropped instead of a clean end (`None`: serve whole bodies).
    pub fn truncate_at(&self, bytes: Option<usize>) {
        self.lock().truncate_at = bytes;
    }

    /// Every Connect call answers with `data_url` (`None`: this relay's own
    /// `/data<path>`).
    pub fn answer_connect_with(&self, data_url: Option<String>) {
        self.lock().connect_answer = data_url;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }
}

impl Drop for HostileRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(status: u16, text: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(
            Full::new(text.into())
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap()
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let seen = Seen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        authorization: header(hyper::header::AUTHORIZATION),
        host: header(hyper::header::HOST),
    };
    shared.state.lock().unwrap().seen.push(seen);

    let path = req.uri().path().to_owned();
    if let Some(stream_path) = path.strip_prefix("/v0") {
        let answer = shared.state.lock().unwrap().connect_answer.clone();
        let data_url =
            answer.unwrap_or_else(|| format!("http://{}/data{stream_path}", shared.addr));
        return Ok(full(200, format!("{data_url}\n")));
    }
    let Some(stream_path) = path.strip_prefix("/data").map(str::to_owned) else {
        return Ok(full(404, "not found\n"));
    };
    match *req.method() {
        hyper::Method::PUT => {
            let body = match req.into_body().collect().await {
                Ok(collected) => collected.to_bytes().to_vec(),
                // An aborted upload is not recorded (as a relay would drop it).
                Err(_) => return Ok(full(400, "aborted\n")),
            };
            let mut state = shared.state.lock().unwrap();
            state.recorded.entry(stream_path).or_default().push(body);
            drop(state);
            shared.changed.notify_all();
            Ok(full(
                200,
                "[STATE:CONNECTED]\n[STATE:TRANSFER_SUCCESSFUL]\n",
            ))
        }
        hyper::Method::GET => {
            let waiting = shared.clone();
            let found = tokio::task::spawn_blocking(move || {
                let state = waiting.state.lock().unwrap();
                let (state, _) = waiting
                    .changed
                    .wait_timeout_while(state, GET_WAIT, |s| {
                        !s.chosen.contains_key(&stream_path)
                            && !s.recorded.contains_key(&stream_path)
                    })
                    .unwrap();
                let body = state.chosen.get(&stream_path).cloned().or_else(|| {
                    state
                        .recorded
                        .get(&stream_path)
                        .and_then(|b| b.last().cloned())
                });
                body.map(|b| (b, state.truncate_at))
            })
            .await
            .unwrap();
            let Some((body, truncate_at)) = found else {
                return Ok(full(404, "nothing to serve\n"));
            };
            Ok(serve_body(body, truncate_at))
        }
        _ => Ok(full(405, "method not allowed\n")),
    }
}

/// A chunked body of `body`, cut after `truncate_at` bytes with an error frame
/// (hyper then drops the connection without the chunked terminator).
fn serve_body(body: Vec<u8>, truncate_at: Option<usize>) -> Response<Body> {
    let mut frames: Vec<Result<Frame<Bytes>, std::io::Error>> = Vec::new();
    let keep = truncate_at.unwrap_or(body.len()).min(body.len());
    for piece in body[..keep].chunks(16 * 1024) {
        frames.push(Ok(Frame::data(Bytes::copy_from_slice(piece))));
    }
    if truncate_at.is_some_and(|t| t < body.len()) {
        frames.push(Err(std::io::Error::other("hostile relay: truncated")));
    }
    let stream = futures_util::stream::iter(frames);
    Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}
