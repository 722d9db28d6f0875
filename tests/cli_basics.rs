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
