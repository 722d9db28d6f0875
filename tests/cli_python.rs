//! Our CLI and the official Python CLI (zebrastream-io 0.5.4) on the same
//! relay, both directions, plaintext and passphrase, with the same config
//! files under one HOME.

mod cli_support;
mod support;

use cli_support::{data, Finished, Proc, Sandbox, TestRelay};

/// The Python CLI in the sandbox (by its venv path: it shares our name).
fn py(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Option<std::process::Command> {
    let cli = support::py_cli()?;
    let mut cmd = std::process::Command::new(cli);
    sb.apply(&mut cmd);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Some(cmd)
}

fn ours(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = sb.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run_pair(
    writer: std::process::Command,
    reader: std::process::Command,
    payload: &[u8],
) -> (Finished, Finished) {
    let reader = Proc::spawn(reader, None);
    let writer = Proc::spawn(writer, Some(payload.to_vec()));
    (writer.finish(), reader.finish())
}

#[test]
fn ours_to_python_and_python_to_ours_with_a_passphrase() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let url = relay.connect_url.as_str();
    let env = [
        ("ZEBRASTREAM_ACCESS_TOKEN", "any"),
        ("ZEBRASTREAM_PASSPHRASE", "shared secret"),
    ];
    let payload = data(300_000, 21);

    let Some(py_reader) = py(&sb, &["read", "-U", url, "-t", "60", "-s", "/t/py1"], &env) else {
        return;
    };
    let our_writer = ours(&sb, &["write", "-U", url, "-t", "60", "-s", "/t/py1"], &env);
    let (w, r) = run_pair(our_writer, py_reader, &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload, "Python read what we wrote");

    let py_writer = py(&sb, &["write", "-U", url, "-t", "60", "-s", "/t/py2"], &env).unwrap();
    let our_reader = ours(&sb, &["read", "-U", url, "-t", "60", "-s", "/t/py2"], &env);
    let (w, r) = run_pair(py_writer, our_reader, &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload, "we read what Python wrote");
}

#[test]
fn plaintext_both_ways_and_age_v1_from_python() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let url = relay.connect_url.as_str();
    let token = [("ZEBRASTREAM_ACCESS_TOKEN", "any")];
    let payload = data(200_000, 22);

    let Some(py_reader) = py(
        &sb,
        &["read", "-U", url, "-t", "60", "-s", "/t/py3"],
        &token,
    ) else {
        return;
    };
    let our_writer = ours(
        &sb,
        &["write", "--plain", "-U", url, "-t", "60", "-s", "/t/py3"],
        &token,
    );
    let (w, r) = run_pair(our_writer, py_reader, &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);

    let py_writer = py(
        &sb,
        &["write", "-U", url, "-t", "60", "-s", "/t/py4"],
        &token,
    )
    .unwrap();
    // Python's read accepts plaintext silently; ours only with --plain.
    let our_reader = ours(
        &sb,
        &["read", "--plain", "-U", url, "-t", "60", "-s", "/t/py4"],
        &token,
    );
    let (w, r) = run_pair(py_writer, our_reader, &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);

    // Python's standard-age mode, detected by our reader.
    let env = [
        ("ZEBRASTREAM_ACCESS_TOKEN", "any"),
        ("ZEBRASTREAM_PASSPHRASE", "pw"),
    ];
    let py_writer = py(
        &sb,
        &[
            "write",
            "--encryption-mode",
            "age",
            "-U",
            url,
            "-t",
            "60",
            "-s",
            "/t/py5",
        ],
        &env,
    )
    .unwrap();
    let our_reader = ours(&sb, &["read", "-U", url, "-t", "60", "-s", "/t/py5"], &env);
    let (w, r) = run_pair(py_writer, our_reader, &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
}

#[test]
fn the_same_named_configs_drive_both_clis() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    sb.write_global_config(&format!(
        "connect_url: {}\nconnect_timeout: 60\naccess_token: any\n",
        relay.connect_url
    ));
    sb.write_named_config(
        "trial-w",
        "mode: write\nstream_path: /t/shared\npassphrase: from config\n",
    );
    sb.write_named_config(
        "trial-r",
        "mode: read\nstream_path: /t/shared\npassphrase: from config\n",
    );
    let payload = data(100_000, 23);

    // Python writes with its config, we read with ours.
    let Some(py_writer) = py(&sb, &["-n", "trial-w", "write"], &[]) else {
        return;
    };
    let (w, r) = run_pair(
        py_writer,
        ours(&sb, &["-n", "trial-r", "read"], &[]),
        &payload,
    );
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);

    // And the other way round.
    let py_reader = py(&sb, &["-n", "trial-r", "read"], &[]).unwrap();
    let (w, r) = run_pair(
        ours(&sb, &["-n", "trial-w", "write"], &[]),
        py_reader,
        &payload,
    );
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);

    // Both CLIs refuse a config whose mode does not match.
    let py_wrong = py(&sb, &["-n", "trial-w", "read"], &[]).unwrap();
    Proc::spawn(py_wrong, None).finish().expect_code(2);
    Proc::spawn(ours(&sb, &["-n", "trial-w", "read"], &[]), None)
        .finish()
        .expect_code(2);
}
