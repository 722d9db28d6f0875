//! The `zebrastream relay` subcommand: flags, a transfer through the
//! spawned binary, and a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_zebrastream");

#[test]
fn auth_choice_is_required() {
    let out = Command::new(BIN)
        .args(["relay", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tokens FILE") && err.contains("--open"),
        "{err}"
    );
}

#[test]
fn bad_tokens_file_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.toml");
    std::fs::write(
        &file,
        "[[tokens]]\ntoken = \"s3cret\"\nmode = \"write\"\npath = \"no-slash\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["relay", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tokens.toml") && err.contains("entry 1"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "the token never appears: {err}");
}

#[tokio::test]
async fn open_relay_serves_a_transfer_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["relay", "--open", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut warned = false;
    let connect_url = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "relay exited early"
        );
        warned |= line.contains("WARNING") && line.contains("no authentication");
        if let Some(rest) = line.split("connect URL ").nth(1) {
            break rest.trim().trim_end_matches(')').to_owned();
        }
    };
    assert!(warned, "--open prints a warning");
    let base = connect_url.trim_end_matches("/v0").to_owned();
    let client = reqwest::Client::new();
    let get = tokio::spawn({
        let (client, url) = (client.clone(), format!("{base}/data/cli/run"));
        async move { client.get(url).send().await.unwrap().bytes().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = client
        .put(format!("{base}/data/cli/run"))
        .body("through the binary")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(&get.await.unwrap()[..], b"through the binary");
    assert!(status.ends_with("[STATE:TRANSFER_SUCCESSFUL]\n"));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..200 {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "graceful stop exits 0, got {code:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("relay did not stop within 10 s of SIGTERM");
}

/// A token in the wrong type or place must not be echoed in the error:
/// stderr names the file, the line and field, and the problem only.
#[test]
fn tokens_file_errors_never_echo_a_value() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, line, field) in [
        (
            "tokens.toml",
            "[[tokens]]\ntoken = 987654321987\nmode = \"read\"\npath = \"/a\"\n",
            "line 2",
            "token",
        ),
        (
            "swapped.toml",
            "[[tokens]]\ntoken = \"a\"\nmode = \"987654321987\"\npath = \"/a\"\n",
            "line 3",
            "mode",
        ),
        (
            "tokens.yaml",
            "tokens:\n  - token: a\n    path: /a\n    mode: 987654321987\n",
            "line 4",
            "mode",
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        // `timeout`: a file that loads starts a relay, which would run for ever.
        let out = Command::new("timeout")
            .args(["20", BIN, "relay", "--listen", "127.0.0.1:0", "--tokens"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && err.contains(line) && err.contains(field),
            "{name}: {err}"
        );
        assert!(
            !err.contains("987654321987"),
            "{name} echoes the value: {err}"
        );
    }
}

/// The hardening flags reach the relay: `--metrics-listen` serves the
/// counters on its own address (and the public port answers 404), and the
/// connection and quota flags are accepted.
#[tokio::test]
async fn metrics_listen_and_limit_flags() {
    let mut child = Command::new(BIN)
        .args(["relay", "--open", "--listen", "127.0.0.1:0"])
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--trusted-proxy",
            "127.0.0.9",
        ])
        .args(["--stream-quota", "5", "--max-connections", "100"])
        .args(["--max-connections-per-ip", "50", "--head-timeout", "5"])
        .args(["--idle-timeout", "9"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut public, mut metrics) = (None, None);
    while metrics.is_none() {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "relay exited early"
        );
        if let Some(rest) = line.split("relay listening on ").nth(1) {
            public = rest.split(' ').next().map(str::to_owned);
        }
        if let Some(rest) = line.split("metrics on ").nth(1) {
            metrics = Some(rest.trim().to_owned());
        }
    }
    let public = format!("http://{}/metrics", public.expect("public address first"));
    let status = reqwest::get(&public).await.unwrap().status();
    let served = reqwest::get(metrics.unwrap()).await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 404, "no metrics on the public port");
    assert_eq!(served.status(), 200);
    assert!(served
        .text()
        .await
        .unwrap()
        .contains("zebrastream_open_connections"));
}

/// `relay --open` warns once that it has no authentication, not twice in two
/// formats.
#[test]
fn an_open_relay_warns_once() {
    let mut cmd = Command::new(BIN);
    cmd.args(["relay", "--open", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut relay = cmd.spawn().unwrap();
    let mut before_ready = Vec::new();
    for line in BufReader::new(relay.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let ready = line.contains("relay listening on");
        before_ready.push(line);
        if ready {
            break;
        }
    }
    let _ = relay.kill();
    let _ = relay.wait();
    let warnings = before_ready
        .iter()
        .filter(|l| l.contains("no authentication"))
        .count();
    assert_eq!(warnings, 1, "{before_ready:#?}");
}
