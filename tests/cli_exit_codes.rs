//! Every exit code of `write`/`read`, each reached by a real failure:
//! 1 other, 2 usage, 3 auth, 4 connect timeout, 5 peer disconnected,
//! 6 producer failed, 7 consumer failed, 8 decryption, 9 truncated.

mod cli_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use cli_support::{data, Sandbox, TestRelay};
use zebrastream::relay::{ForwardTap, RelayAuth, RelayConfig, TapVerdict};

/// A relay that misbehaves at byte `at` of the forwarded stream: flips one
/// bit there, or ends the consumer's response cleanly there.
struct Saboteur {
    at: u64,
    cut: bool,
    seen: AtomicU64,
}

impl ForwardTap for Saboteur {
    fn forward(&self, _path: &str, chunk: &mut BytesMut) -> TapVerdict {
        let start = self.seen.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        let end = start + chunk.len() as u64;
        if (start..end).contains(&self.at) {
            let i = (self.at - start) as usize;
            if self.cut {
                chunk.truncate(i);
                return TapVerdict::EndStream;
            }
            chunk[i] ^= 0x01;
        }
        if self.cut && start >= self.at {
            return TapVerdict::EndStream;
        }
        TapVerdict::Forward
    }
}

fn saboteur_relay(at: u64, cut: bool) -> TestRelay {
    TestRelay::with(RelayConfig::open_loopback().tap(Arc::new(Saboteur {
        at,
        cut,
        seen: AtomicU64::new(0),
    })))
}

#[test]
fn exit_1_when_the_connect_url_is_not_a_relay() {
    let sb = Sandbox::new();
    let server = cli_support::NotARelay::start();
    let out = sb
        .spawn(
            &["write", "--plain", "-U", &server.url, "-s", "/t/x"],
            Some(b"x".to_vec()),
        )
        .finish();
    out.expect_code(1);
    assert!(out.stderr.contains("zebrastream: /t/x: "), "{}", out.stderr);
    assert!(out.stderr.contains("404"), "{}", out.stderr);
}

#[test]
fn exit_2_for_usage_errors_without_contacting_anyone() {
    let sb = Sandbox::new();
    // No key, no terminal: refuses to send plaintext (and never connects: port 9 would give 1).
    let out = sb
        .spawn(
            &["write", "-U", "http://127.0.0.1:9/v0", "-s", "/t/x"],
            Some(b"secret".to_vec()),
        )
        .finish();
    out.expect_code(2);
    assert!(
        out.stderr.contains("refusing to send plaintext"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--plain"), "{}", out.stderr);
    // --plain contradicts a key flag.
    sb.spawn(&["write", "--plain", "-p", "pw", "-s", "/t/x"], None)
        .finish()
        .expect_code(2);
    // Bad flag value.
    sb.spawn(&["read", "-t", "soon", "-s", "/t/x"], None)
        .finish()
        .expect_code(2);
    // Config mode mismatch, with the Python CLI's message.
    sb.write_named_config("w", "mode: write\nstream_path: /t/x\n");
    let out = sb.spawn(&["-n", "w", "read"], None).finish();
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("Subcommand 'read' conflicts with config mode 'write'"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_3_when_the_relay_refuses_the_token() {
    let sb = Sandbox::new();
    let tokens = sb.file(
        "tokens.toml",
        b"[[tokens]]\ntoken = \"right-token\"\nmode = \"write\"\npath = \"/t/auth\"\n",
    );
    let relay = TestRelay::with(RelayConfig::open_loopback().auth(RelayAuth::TokensFile(tokens)));
    let url = relay.connect_url.as_str();
    let mut cmd = sb.cmd(&["write", "--plain", "-U", url, "-t", "5", "-s", "/t/auth"]);
    cmd.env("ZEBRASTREAM_ACCESS_TOKEN", "wrong-token");
    let out = cli_support::Proc::spawn(cmd, Some(b"x".to_vec())).finish();
    out.expect_code(3);
    // The relay's reason is shown, beside what to check.
    assert!(
        out.stderr.contains("HTTP 401: unknown access token")
            && out.stderr.contains("ZEBRASTREAM_ACCESS_TOKEN"),
        "{}",
        out.stderr
    );
    // No token at all: also 3, from the relay's 401.
    let out = sb
        .spawn(
            &["write", "--plain", "-U", url, "-t", "5", "-s", "/t/auth"],
            Some(b"x".to_vec()),
        )
        .finish();
    out.expect_code(3);
    assert!(
        out.stderr.contains("HTTP 401: missing access token"),
        "{}",
        out.stderr
    );
    // A write token used to read: 403, and the relay says why.
    let mut cmd = sb.cmd(&["read", "--plain", "-U", url, "-t", "5", "-s", "/t/auth"]);
    cmd.env("ZEBRASTREAM_ACCESS_TOKEN", "right-token");
    let out = cli_support::Proc::spawn(cmd, None).finish();
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("HTTP 403: access token does not grant Read access to this path"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_4_when_no_peer_connects_in_time() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let out = sb
        .spawn(
            &[
                "read",
                "--plain",
                "-U",
                &relay.connect_url,
                "-t",
                "1",
                "-s",
                "/t/lonely",
            ],
            None,
        )
        .finish();
    out.expect_code(4);
    assert!(
        out.stderr
            .contains("/t/lonely: no writer connected within 1s"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_5_when_the_reader_goes_away() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    // The consumer takes 1000 bytes and stops; the writer still has ~64 MB to send.
    let (w, r) = sb.transfer(
        &relay,
        "/t/gone",
        &["--plain", "--", "sh", "-c", "head -c 64000000 /dev/zero"],
        &["--plain", "--", "head", "-c", "1000"],
        b"",
    );
    r.expect_code(0);
    assert_eq!(r.stdout.len(), 1000);
    w.expect_code(5);
    assert!(w.stderr.contains("the reader disconnected"), "{}", w.stderr);
}

#[test]
fn exit_6_when_the_producer_fails_and_the_reader_never_sees_a_clean_end() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    for (i, key) in [["--plain"], ["-p=pw"]].iter().enumerate() {
        let path = format!("/t/producer/{i}");
        let (w, r) =
            sb.transfer_failing_producer(&relay, &path, key, "head -c 200000 /dev/zero; exit 3");
        w.expect_code(6);
        assert!(w.stderr.contains("exited with status 3"), "{}", w.stderr);
        r.expect_code(9);
    }
}

#[test]
fn exit_7_when_the_consumer_fails() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let (w, r) = sb.transfer(
        &relay,
        "/t/consumer",
        &["--plain"],
        &["--plain", "--", "sh", "-c", "cat >/dev/null; exit 4"],
        &data(10_000, 7),
    );
    r.expect_code(7);
    assert!(r.stderr.contains("exited with status 4"), "{}", r.stderr);
    w.expect_code(0);
}

#[test]
fn exit_8_for_wrong_key_tampering_and_key_mismatches() {
    let sb = Sandbox::new();
    let payload = data(400_000, 8);
    // Wrong passphrase: nothing is output.
    let relay = TestRelay::open();
    let (_, r) = sb.transfer(&relay, "/t/wrong", &["-p=right"], &["-p=wrong"], &payload);
    r.expect_code(8);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("wrong passphrase or key"), "{}", r.stderr);
    // A bit flipped by the relay in the middle: only authenticated data before it is output.
    let relay = saboteur_relay(250_000, false);
    let (_, r) = sb.transfer(&relay, "/t/flip", &["-p=pw"], &["-p=pw"], &payload);
    r.expect_code(8);
    assert!(r.stdout.len() < 250_000);
    assert_eq!(r.stdout, payload[..r.stdout.len()]);
    // Encrypted stream but no key on read (no terminal to ask on).
    let relay = TestRelay::open();
    let (_, r) = sb.transfer(&relay, "/t/nokey", &["-p=pw"], &[], &payload);
    r.expect_code(8);
    assert!(
        r.stderr
            .contains("the stream is encrypted (age-rt) but no key was given"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // Plaintext stream read with a passphrase.
    let (_, r) = sb.transfer(&relay, "/t/notenc", &["--plain"], &["-p=pw"], &payload);
    r.expect_code(8);
}

#[test]
fn exit_9_when_a_malicious_relay_cuts_the_stream_cleanly() {
    let sb = Sandbox::new();
    let payload = data(400_000, 9);
    let relay = saboteur_relay(300_000, true);
    let out = sb.home().join("out.bin");
    let (_, r) = sb.transfer(
        &relay,
        "/t/cut",
        &["-p=pw"],
        &["-p=pw", "-o", out.to_str().unwrap()],
        &payload,
    );
    r.expect_code(9);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert!(!out.exists(), "a partial output file was left behind");
}

#[test]
fn sigterm_aborts_cleanly_and_leaves_no_partial_file() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let url = relay.connect_url.as_str();
    let common = ["-U", url, "-t", "30", "-s", "/t/signal", "--plain"];
    let reader = sb.spawn(&[&["read"][..], &common, &["-o", "out.bin"]].concat(), None);
    let writer = sb.spawn(
        &[
            &["write"][..],
            &common,
            &["--", "sh", "-c", "head -c 1000000 /dev/zero; exec sleep 60"],
        ]
        .concat(),
        None,
    );
    // Wait until the reader has written part of the stream to its temp file
    // (the writer hands data on in 256 KiB pieces without auto-flush).
    let started = std::time::Instant::now();
    loop {
        let partial = std::fs::read_dir(sb.home()).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with(".zebrastream-")
                && e.metadata().unwrap().len() > 0
        });
        if partial {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "the reader never received data"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let term = |pid: u32| {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    term(reader.id());
    let r = reader.finish();
    r.expect_code(143);
    assert!(r.stderr.contains("interrupted by SIGTERM"), "{}", r.stderr);
    let leftovers: Vec<_> = std::fs::read_dir(sb.home())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".zebrastream-") || n == "out.bin")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    term(writer.id());
    let w = writer.finish();
    w.expect_code(143);
    assert!(w.stderr.contains("interrupted by SIGTERM"), "{}", w.stderr);
}

/// Ctrl-C (SIGINT) exits 130 after the cleanup, so a shell `for` loop or
/// `make` stops instead of going on with the next transfer.
#[test]
fn sigint_exits_130_after_the_cleanup() {
    use std::io::{BufRead, BufReader};
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let mut cmd = sb.cmd(&[
        "read",
        "-U",
        &relay.connect_url,
        "-s",
        "/t/sigint",
        "--plain",
        "-o",
        "out.bin",
    ]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut reader = cmd.spawn().unwrap();
    // Once it says it is waiting, it is inside the transfer: interrupt it.
    let mut stderr = BufReader::new(reader.stderr.take().unwrap()).lines();
    let notice = stderr.next().unwrap().unwrap();
    assert!(notice.contains("waiting for a writer"), "{notice}");
    let status = std::process::Command::new("kill")
        .args(["-INT", &reader.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = stderr.map_while(Result::ok).collect();
    let code = reader.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted by Ctrl-C")),
        "{rest:?}"
    );
    assert!(!sb.home().join("out.bin").exists());
}
