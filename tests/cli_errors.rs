//! Errors name the cause (issue 16, item 6), through the real binary: an
//! unreachable relay is exit 1 with the URL and the OS error (never exit 4,
//! the peer-timeout code), a refusal shows the relay's reason and a hint, and
//! a stream path the relay would refuse is refused before connecting.

mod cli_support;
mod support;

use std::io::{Read, Write};
use std::time::Duration;

use cli_support::{Finished, NotARelay, RelayProcess, Sandbox, TestRelay};
use support::hostile_relay::HostileRelay;

/// A loopback port nobody listens on (bound, then closed).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `zebrastream <cmd> --plain -U <url> -s <path> ARGS…`, writers fed one line.
fn run(sb: &Sandbox, cmd: &str, url: &str, path: &str, args: &[&str]) -> Finished {
    let mut all = vec![cmd, "--plain", "-U", url, "-s", path];
    all.extend_from_slice(args);
    sb.spawn(&all, Some(b"hello\n".to_vec())).finish()
}

/// The one failure line, `zebrastream: …`.
fn failure_line(out: &Finished) -> &str {
    out.stderr
        .lines()
        .find(|l| l.starts_with("zebrastream: "))
        .unwrap_or_else(|| panic!("no failure line in:\n{}", out.stderr))
}

/// Relay down and `-t 5`: the connect timeout runs out while every attempt
/// was refused. That is an unreachable relay (exit 1, the URL without its
/// query, "refused"), not "no reader connected" (exit 4).
#[test]
fn a_relay_that_is_down_is_exit_1_with_the_url_and_refused_not_a_peer_timeout() {
    let sb = Sandbox::new();
    let base = format!("http://127.0.0.1:{}/v0", closed_port());
    for cmd in ["write", "read"] {
        let out = run(&sb, cmd, &base, "/t/x", &["-t", "5"]);
        out.expect_code(1);
        let line = failure_line(&out);
        assert!(line.contains("could not reach the relay"), "{line}");
        assert!(line.contains(&format!("{base}/t/x ")), "{line}");
        assert!(line.contains("Connection refused"), "{line}");
        assert!(!line.contains("mode="), "the query is not shown: {line}");
        assert!(!line.contains("within 5s"), "not a peer timeout: {line}");
    }
}

/// A relay host that drops SYNs (here: a port whose accept queue is full,
/// so the kernel drops further handshakes, as a firewall does) and a `-t`
/// shorter than one TCP connect attempt: the timeout runs out before any
/// transport error. Still an unreachable relay (exit 1, naming the address),
/// never "no reader connected" (exit 4).
#[test]
fn a_relay_host_that_drops_packets_is_exit_1_not_a_peer_timeout() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match std::net::TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
            Ok(stream) => fillers.push(stream),
            Err(_) => break,
        }
    }
    let sb = Sandbox::new();
    let base = format!("http://127.0.0.1:{port}/v0");
    for cmd in ["write", "read"] {
        let out = run(&sb, cmd, &base, "/t/x", &["-t", "2"]);
        out.expect_code(1);
        let line = failure_line(&out);
        assert!(line.contains("could not reach the relay"), "{line}");
        assert!(
            line.contains(&format!("no TCP connection to 127.0.0.1:{port} within 2s")),
            "{line}"
        );
    }
    drop(fillers);
}

/// Without `-t` the CLI retries for its budget, then names the URL and the
/// innermost cause (not reqwest's bare "error sending request").
#[test]
fn without_a_timeout_the_failure_names_the_url_and_the_cause() {
    let sb = Sandbox::new();
    let base = format!("http://127.0.0.1:{}/v0", closed_port());
    let out = run(&sb, "write", &base, "/t/x", &[]);
    out.expect_code(1);
    let line = failure_line(&out);
    assert!(line.contains(&format!("{base}/t/x ")), "{line}");
    assert!(
        line.contains("tcp connect error: Connection refused"),
        "{line}"
    );
    assert!(line.contains("-U/--connect-url"), "the hint: {line}");
}

/// A host that does not resolve: exit 1, naming the DNS failure.
#[test]
fn an_unresolvable_host_is_exit_1_naming_dns() {
    let sb = Sandbox::new();
    let out = run(
        &sb,
        "read",
        "http://nonexistent.invalid:1/v0",
        "/t/x",
        &["-t", "5"],
    );
    out.expect_code(1);
    let line = failure_line(&out);
    assert!(
        line.contains(
            "could not reach the relay: connect request to http://nonexistent.invalid:1/v0/t/x"
        ),
        "{line}"
    );
    assert!(line.contains("dns error"), "{line}");
}

/// TLS spoken to a plain-HTTP port: at once (no retries), named as TLS, with
/// the hint to use http://.
#[test]
fn tls_to_a_plain_http_port_is_named_with_a_hint() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let https = relay.connect_url.replace("http://", "https://");
    let out = run(&sb, "write", &https, "/t/x", &[]);
    out.expect_code(1);
    let line = failure_line(&out);
    assert!(line.contains("after 1 attempt(s): TLS error"), "{line}");
    assert!(line.contains("use an http:// connect URL"), "{line}");
}

/// `-U http://host:port` without `/v0` against `zebrastream relay`: the
/// relay's 404 reason and the hint that connect URLs end in /v0.
#[test]
fn a_connect_url_without_v0_gets_the_relays_reason_and_the_hint() {
    let sb = Sandbox::new();
    let relay = RelayProcess::start(&sb);
    let without_prefix = relay.connect_url.trim_end_matches("/v0").to_owned();
    assert_ne!(without_prefix, relay.connect_url);
    let out = run(&sb, "write", &without_prefix, "/t/x", &["-t", "5"]);
    out.expect_code(1);
    let line = failure_line(&out);
    assert!(line.contains("HTTP 404"), "{line}");
    assert!(
        line.contains("the relay says: \"not found: use /v0/<stream path>"),
        "{line}"
    );
    assert!(line.contains("it usually ends in /v0"), "{line}");
}

/// A relay's 400 shows its reason; the reason is the relay's text, so only
/// its first line, bounded, with anything but printable ASCII replaced
/// (a hostile relay cannot drive the terminal through our error message).
#[test]
fn a_relay_refusal_shows_its_reason_sanitized() {
    let sb = Sandbox::new();
    let relay = NotARelay::answering(
        "400 Bad Request",
        b"paths under /t need a tenant id\x1b[2J\x1b]0;pwned\x07\nsecond line\n",
    );
    let out = run(&sb, "write", &relay.url, "/t/x", &["-t", "5"]);
    out.expect_code(1);
    let line = failure_line(&out);
    assert!(line.contains("HTTP 400"), "{line}");
    assert!(
        line.contains("the relay says: \"paths under /t need a tenant id?[2J?]0;pwned?\""),
        "{line}"
    );
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert!(!out.stderr.contains("second line"), "{}", out.stderr);
}

/// `-s /trial/x/`: the relay refuses a trailing '/', so the client refuses it
/// too, before any request (exit 2, naming the trailing '/').
#[test]
fn a_path_the_relay_refuses_is_refused_before_connecting() {
    let sb = Sandbox::new();
    let hostile = HostileRelay::start();
    for (path, cause) in [
        ("/trial/x/", "ends with '/'"),
        ("/trial//x", "empty segment"),
        ("/trial/../x", "'..' segment"),
    ] {
        let out = run(&sb, "write", &hostile.connect_url(), path, &["-t", "5"]);
        out.expect_code(2);
        let line = failure_line(&out);
        assert!(line.contains("invalid stream path"), "{line}");
        assert!(line.contains(cause), "{line}");
    }
    assert!(hostile.seen().is_empty(), "{:?}", hostile.seen());
}

/// The relay's side of the same rule: it answers 400 to the paths the client
/// refuses, and a path the client accepts (side paths included) reaches it.
#[test]
fn the_relay_refuses_exactly_what_the_client_refuses() {
    let relay = TestRelay::open();
    let addr = relay
        .connect_url
        .trim_start_matches("http://")
        .trim_end_matches("/v0")
        .to_owned();
    let status_of = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        // One write: `write!` would send the head in pieces, and the relay
        // answers a bad request line (and closes) before the rest arrives,
        // which made a later piece fail with a broken pipe under load. A
        // failed write still leaves the answer to read.
        let head = format!(
            "GET /v0{path}?mode=await-reader&timeout=1 HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
        );
        let _ = stream.write_all(head.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.split(' ').nth(1).unwrap_or_default().to_owned()
    };
    for path in ["/trial/x/", "/trial//x", "/trial/%2e%2e/x", "/a b"] {
        assert!(zebrastream::api::check_stream_path(path).is_err(), "{path}");
        assert_eq!(status_of(path), "400", "{path}");
    }
    for path in ["/trial/x", "/trial/x/~fs-offer"] {
        zebrastream::api::check_stream_path(path).unwrap();
        assert_ne!(status_of(path), "400", "{path}");
    }
}

/// The library warns when a stream writer is dropped unfinished; the CLI
/// drops one only to abort (a failed producer, a signal) and says so in its
/// own failure line, so the library's warning stays out of its output.
#[test]
fn an_aborted_upload_is_reported_once_without_the_librarys_warning() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    // A producer that fails after some output: exit 6, the reader 9.
    let (w, r) = sb.transfer_failing_producer(
        &relay,
        "/t/failed-producer",
        &["--plain"],
        "echo partial; exit 3",
    );
    w.expect_code(6);
    r.expect_code(9);
    assert!(!w.stderr.contains("abandoned"), "{}", w.stderr);
    // SIGTERM while connected and waiting for the producer's output. The
    // producer starts only once a reader is there: its file says so.
    let started = sb.home().join("producer-started");
    let producer = format!("touch {}; exec sleep 60 2>/dev/null", started.display());
    let common = [
        "-U",
        relay.connect_url.as_str(),
        "-t",
        "30",
        "-s",
        "/t/signal",
    ];
    let reader = sb.spawn(&[&["read", "--plain"][..], &common].concat(), None);
    let writer = sb.spawn(
        &[
            &["write", "--plain"][..],
            &common,
            &["--", "sh", "-c", producer.as_str()],
        ]
        .concat(),
        None,
    );
    let waiting_since = std::time::Instant::now();
    while !started.exists() {
        assert!(
            waiting_since.elapsed() < cli_support::DEADLINE,
            "the producer never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &writer.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let w = writer.finish();
    // The reader's truncation shows the writer was connected when killed.
    reader.finish().expect_code(9);
    assert!(w.stderr.contains("SIGTERM"), "{}", w.stderr);
    assert!(!w.stderr.contains("abandoned"), "{}", w.stderr);
}
