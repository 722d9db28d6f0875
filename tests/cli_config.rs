//! Config files and environment variables, resolved by the binary in the
//! documented order: flag > ZEBRASTREAM_* env > -f/-n file > global file.

mod cli_support;

use cli_support::{data, Proc, Sandbox, TestRelay};

/// A connect URL that answers 404: the run fails at once with exit 1 and
/// names the stream path it resolved, which is what these tests look at.
fn dead_url() -> String {
    // Leaked so the server outlives the test body; it is a tiny thread.
    let server = Box::leak(Box::new(cli_support::NotARelay::start()));
    server.url.clone()
}

fn resolved_path(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = sb.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = Proc::spawn(cmd, Some(b"x".to_vec())).finish();
    out.expect_code(1);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("zebrastream: "))
        .unwrap_or_default();
    line.trim_start_matches("zebrastream: ")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn stream_path_precedence_global_named_env_flag() {
    let sb = Sandbox::new();
    sb.write_global_config(&format!(
        "connect_url: {}\nstream_path: /global\nplain: true\n",
        dead_url()
    ));
    sb.write_named_config("trial", "mode: write\nstream_path: /named\n");
    let explicit = sb.file("explicit.yaml", b"mode: write\nstream_path: /explicit\n");
    let explicit = explicit.to_str().unwrap();

    assert_eq!(resolved_path(&sb, &["write"], &[]), "/global");
    assert_eq!(resolved_path(&sb, &["-n", "trial", "write"], &[]), "/named");
    // Global flags also work after the subcommand.
    assert_eq!(resolved_path(&sb, &["write", "-n", "trial"], &[]), "/named");
    // -f beats -n, as in the Python CLI.
    assert_eq!(
        resolved_path(&sb, &["-n", "trial", "-f", explicit, "write"], &[]),
        "/explicit"
    );
    let env = [("ZEBRASTREAM_STREAM_PATH", "/env")];
    assert_eq!(resolved_path(&sb, &["-n", "trial", "write"], &env), "/env");
    assert_eq!(
        resolved_path(&sb, &["-n", "trial", "write", "-s", "/flag"], &env),
        "/flag"
    );
    // An empty variable unsets the key: the named file's value is hidden too.
    let out = {
        let mut cmd = sb.cmd(&["-n", "trial", "write"]);
        cmd.env("ZEBRASTREAM_STREAM_PATH", "");
        Proc::spawn(cmd, None).finish()
    };
    out.expect_code(2);
    assert!(
        out.stderr.contains("no stream path provided"),
        "{}",
        out.stderr
    );
}

#[test]
fn mode_is_required_with_a_selected_config() {
    let sb = Sandbox::new();
    sb.write_named_config(
        "nomode",
        &format!("stream_path: /x\nconnect_url: {}\n", dead_url()),
    );
    let out = sb.spawn(&["-n", "nomode", "read"], None).finish();
    out.expect_code(2);
    assert!(
        out.stderr.contains("Config (--config-name nomode) is missing required 'mode' field. Add 'mode: read' to the config file."),
        "{}",
        out.stderr
    );
    let out = sb.spawn(&["-n", "absent", "read"], None).finish();
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("~/.config/zebrastream/streams/absent.yaml"),
        "{}",
        out.stderr
    );
}

#[test]
fn env_values_are_typed_like_yaml() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    sb.write_global_config("connect_timeout: 600\n");
    // "1" from the environment is the number 1 and beats the global file's 600.
    let mut cmd = sb.cmd(&[
        "read",
        "--plain",
        "-U",
        &relay.connect_url,
        "-s",
        "/t/typed",
    ]);
    cmd.env("ZEBRASTREAM_CONNECT_TIMEOUT", "1");
    let out = Proc::spawn(cmd, None).finish();
    out.expect_code(4);
    assert!(out.stderr.contains("within 1s"), "{}", out.stderr);
}

#[test]
fn a_transfer_configured_entirely_by_files_and_env() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    sb.write_global_config(&format!(
        "connect_url: {}\nconnect_timeout: 30\naccess_token: shared-token\n",
        relay.connect_url
    ));
    sb.write_named_config(
        "trial-w",
        "mode: write\nstream_path: /t/configured\npassphrase: the right one\ncommand: \"sh -c 'seq 1 5000'\"\n",
    );
    sb.write_named_config(
        "trial-r",
        "mode: read\nstream_path: /t/configured\npassphrase: a stale wrong one\n",
    );
    let reader = {
        let mut cmd = sb.cmd(&["-n", "trial-r", "read"]);
        // The environment beats the file's (wrong) passphrase.
        cmd.env("ZEBRASTREAM_PASSPHRASE", "the right one");
        Proc::spawn(cmd, None)
    };
    let writer = sb.spawn(&["-n", "trial-w", "write"], None);
    writer.finish().expect_code(0);
    let r = reader.finish();
    r.expect_code(0);
    let expected: String = (1..=5000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(r.stdout).unwrap(), expected);
}

#[test]
fn cli_command_overrides_the_config_command() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    sb.write_named_config(
        "w",
        "mode: write\ncommand: \"sh -c 'echo from-config'\"\nplain: true\n",
    );
    let payload = data(1000, 11);
    let reader = sb.spawn(
        &[
            "read",
            "--plain",
            "-U",
            &relay.connect_url,
            "-t",
            "30",
            "-s",
            "/t/cmd",
        ],
        None,
    );
    let writer = sb.spawn(
        &[
            "-n",
            "w",
            "write",
            "-U",
            &relay.connect_url,
            "-t",
            "30",
            "-s",
            "/t/cmd",
            "--",
            "sh",
            "-c",
            "echo from-cli",
        ],
        Some(payload),
    );
    writer.finish().expect_code(0);
    let r = reader.finish();
    r.expect_code(0);
    assert_eq!(r.stdout, b"from-cli\n");
}
