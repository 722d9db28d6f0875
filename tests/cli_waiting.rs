//! Waiting is visible: off a terminal (a cron job's log), `read` and `write`
//! say once on stderr, at the default log level, what they wait for, where,
//! and for how long.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::channel;
use std::time::Duration;

use cli_support::{Sandbox, TestRelay};

#[test]
fn a_reader_without_a_time_limit_says_it_waits_and_where() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let mut cmd = sb.cmd(&["read", "-U", &relay.connect_url, "-s", "/wait/r", "--plain"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a notice on stderr while waiting");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        line,
        format!(
            "/wait/r: waiting for a writer at {} (no time limit; -t sets one)",
            relay.connect_url
        )
    );
}

#[test]
fn a_writer_with_a_time_limit_says_it_once_then_times_out() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let out = sb
        .spawn(
            &[
                "write",
                "-U",
                &relay.connect_url,
                "-s",
                "/wait/w",
                "-t",
                "1",
                "--plain",
            ],
            Some(b"x".to_vec()),
        )
        .finish();
    out.expect_code(4);
    let notice = format!(
        "/wait/w: waiting for a reader at {} (up to 1 s)",
        relay.connect_url
    );
    assert_eq!(out.stderr.matches(&notice).count(), 1, "{}", out.stderr);
}

#[test]
fn quiet_says_nothing_while_waiting() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let out = sb
        .spawn(
            &[
                "-q",
                "write",
                "-U",
                &relay.connect_url,
                "-s",
                "/wait/q",
                "-t",
                "1",
                "--plain",
            ],
            Some(b"x".to_vec()),
        )
        .finish();
    out.expect_code(4);
    assert!(!out.stderr.contains("waiting"), "{}", out.stderr);
}
