//! The commands that need no relay: keygen, completions, help, usage errors.

mod cli_support;

use cli_support::Sandbox;

#[test]
fn keygen_writes_a_private_identity_file_and_prints_its_recipient() {
    let sb = Sandbox::new();
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    let recipient = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let recipient = recipient.trim();
    assert!(recipient.starts_with("age1"), "{recipient}");

    let path = sb.home().join("id.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# created: 20"), "{text}");
    assert_eq!(lines[1], format!("# public key: {recipient}"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    // The file's secret key really belongs to the printed recipient.
    let identity: age::x25519::Identity = lines[2].parse().unwrap();
    assert_eq!(identity.to_public().to_string(), recipient);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Never overwritten.
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn keygen_to_stdout_puts_the_recipient_on_stderr() {
    let sb = Sandbox::new();
    let out = sb.zs().arg("keygen").assert().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stdout.contains("\nAGE-SECRET-KEY-1"));
    let recipient = stderr.trim().strip_prefix("Public key: ").unwrap();
    assert!(stdout.contains(&format!("# public key: {recipient}\n")));
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.zs().args(["completions", shell]).assert().success();
        let script = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        for word in ["keygen", "completions", "--config-name"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    sb.zs().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn help_has_examples_and_exit_codes_and_usage_errors_exit_2() {
    let sb = Sandbox::new();
    let out = sb.zs().arg("--help").assert().success();
    let help = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(help.contains("Examples:"));
    assert!(help.contains("8 decryption failed"));
    let out = sb.zs().arg("frobnicate").assert().code(2);
    assert!(!out.get_output().stderr.is_empty());
    sb.zs().args(["keygen", "--bogus"]).assert().code(2);
}

/// Log lines carry no ANSI colour codes when stderr is a file or pipe (a
/// `2> log` stays readable); `--color always` forces them, `--color never`
/// and `NO_COLOR` keep them off (NO_COLOR's terminal case is a unit test).
#[test]
fn no_colour_codes_off_a_terminal_unless_forced() {
    let sb = cli_support::Sandbox::new();
    // -vv logs "connect failed, retrying" with an `error` field: the field
    // name is what the formatter colours.
    let run = |extra: &[&str], no_color: bool| {
        let mut args = vec!["-vv"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "write",
            "-U",
            "http://127.0.0.1:1/v0",
            "-s",
            "/c",
            "--plain",
            "-t",
            "1",
        ]);
        let mut cmd = sb.cmd(&args);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cli_support::Proc::spawn(cmd, Some(Vec::new())).finish();
        assert!(out.stderr.contains("error"), "{}", out.stderr);
        out.stderr
    };
    assert!(!run(&[], false).contains('\u{1b}'), "auto, stderr a pipe");
    assert!(!run(&["--color", "never"], false).contains('\u{1b}'));
    assert!(!run(&[], true).contains('\u{1b}'), "NO_COLOR");
    assert!(
        run(&["--color", "always"], false).contains("\u{1b}["),
        "forced"
    );
}
