//! age plugins and tag recipients with the built binary and real plugin
//! programs: the test plugin `age-plugin-zstest` (tests/plugin/, a software
//! P-256 key behind the age plugin protocol, built here once into
//! `${XDG_CACHE_HOME:-$HOME/.cache}/zebrastream-test/plugin-target`, which
//! scripts/setup.sh fills too) is put on `PATH`, as a YubiKey's plugin
//! would be.
//!
//! - `encrypt -r age1zstest1…` / `-R` and `decrypt -i` with the plugin's
//!   identity file, byte-exact in both formats; the plugin's message reaches
//!   stderr;
//! - a plugin not on `PATH`, a refused PIN without a terminal and a wrong
//!   identity each fail with the exit code of docs/cli.md, naming the plugin;
//! - plugin labels join age 1.3's mixing rules;
//! - interop: Debian `age` 1.1.1 and rage decrypt our plugin files with the
//!   plugin on `PATH`, and we decrypt theirs;
//! - age 1.3's tag recipients (`age1tag1…`, stanza `p256tag`, and
//!   `age1tagpq1…`, stanza `mlkem768p256tag`): we encrypt, and the plugin
//!   (whose keys the tag recipients are) opens the file; typage and rage
//!   encrypt to them, and we decrypt with the plugin.

mod cli_support;
mod support;
mod typage;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cli_support::{data, Finished, Proc, Sandbox};

/// Builds the test plugin (once per test binary) and returns its folder.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugin/age-plugin-zstest/Cargo.toml");
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
        let target = cache.join("zebrastream-test/plugin-target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run cargo to build the test plugin");
        assert!(
            out.status.success(),
            "building age-plugin-zstest failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug")
    })
}

/// PATH with the test plugin first (or without it: `with_plugin = false`).
fn path(with_plugin: bool) -> OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&rest).filter(|d| !d.join("age-plugin-zstest").exists());
    let first = with_plugin.then(|| plugin_dir().to_owned());
    std::env::join_paths(first.into_iter().chain(dirs)).unwrap()
}

/// Runs `program ARGS` in the sandbox with the plugin on PATH, `env` added.
fn run_tool(
    sb: &Sandbox,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Vec<u8>,
) -> Finished {
    let mut cmd = Command::new(program);
    sb.apply(&mut cmd);
    cmd.env("PATH", path(true))
        .args(args)
        .envs(env.iter().copied());
    Proc::spawn(cmd, Some(stdin)).finish()
}

/// Our binary with the plugin on PATH.
fn zs(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], stdin: Vec<u8>) -> Finished {
    run_tool(sb, &cli_support::bin(), args, env, stdin)
}

/// Our binary without the plugin on PATH.
fn zs_without_plugin(sb: &Sandbox, args: &[&str], stdin: Vec<u8>) -> Finished {
    let mut cmd = sb.cmd(args);
    cmd.env("PATH", path(false));
    Proc::spawn(cmd, Some(stdin)).finish()
}

/// The public keys of one test plugin key.
struct PluginKey {
    /// `age1zstest1…`.
    recipient: String,
    /// `age1tag1…`: the same P-256 key as an age 1.3 tag recipient.
    tag: String,
    /// `age1tagpq1…`: the hybrid tag key from the same 32 bytes.
    tagpq: String,
}

/// A plugin key as the plugin prints it into `file`.
fn plugin_keygen(sb: &Sandbox, file: &str) -> PluginKey {
    let out = Command::new(plugin_dir().join("age-plugin-zstest"))
        .output()
        .expect("run age-plugin-zstest");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    sb.file(file, text.as_bytes());
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
            .to_owned()
    };
    assert!(text.contains("\nAGE-PLUGIN-ZSTEST-1"), "{text}");
    PluginKey {
        recipient: field("# recipient: "),
        tag: field("# tag recipient: "),
        tagpq: field("# tagpq recipient: "),
    }
}

/// `keygen [--pq]` into `file`; the recipient.
fn our_keygen(sb: &Sandbox, extra: &[&str], file: &str) -> String {
    let args = [&["keygen", "-o", file][..], extra].concat();
    let c = zs(sb, &args, &[], Vec::new());
    c.expect_code(0);
    String::from_utf8(c.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// `wire` (made by `whose`) has one `stanza`, and our `decrypt -i ID`
/// gives `plain` back; returns the decrypt's stderr.
fn we_decrypt(
    sb: &Sandbox,
    wire: &[u8],
    stanza: &str,
    id: &str,
    plain: &[u8],
    whose: &str,
) -> String {
    let line = format!("\n-> {stanza} ");
    assert_eq!(count(wire, line.as_bytes()), 1, "{whose}");
    let d = zs(sb, &["decrypt", "-i", id], &[], wire.to_vec());
    d.expect_code(0);
    assert!(d.stdout == plain, "ours decrypting {whose}: bytes differ");
    d.stderr
}

/// `encrypt --format FORMAT -r RECIPIENT` of `plain`, then [`we_decrypt`].
fn round_trip(
    sb: &Sandbox,
    format: &str,
    recipient: &str,
    stanza: &str,
    id: &str,
    plain: &[u8],
) -> String {
    let args = ["encrypt", "--format", format, "-r", recipient];
    let c = zs(sb, &args, &[], plain.to_vec());
    c.expect_code(0);
    we_decrypt(sb, &c.stdout, stanza, id, plain, format)
}

#[test]
fn plugin_recipients_encrypt_and_its_identity_file_decrypts_byte_exact_in_both_formats() {
    let sb = Sandbox::new();
    let first = plugin_keygen(&sb, "first.txt").recipient;
    let second = plugin_keygen(&sb, "second.txt").recipient;
    sb.file(
        "recipients.txt",
        format!("# two keys of the plugin\n{first}\n{second}\n").as_bytes(),
    );
    let plain = data(150_000, 19);
    for format in ["age-rt", "age"] {
        let stderr = round_trip(&sb, format, &first, "zstest", "first.txt", &plain);
        // The plugin's message to the user reaches stderr.
        assert!(stderr.contains("touch your zstest key"), "{stderr}");
        // A recipients file: one plugin run wraps for both keys.
        let c = zs(
            &sb,
            &["encrypt", "--format", format, "-R", "recipients.txt"],
            &[],
            plain.clone(),
        );
        c.expect_code(0);
        assert_eq!(count(&c.stdout, b"\n-> zstest "), 2, "{format}");
        for id in ["first.txt", "second.txt"] {
            let d = zs(&sb, &["decrypt", "-i", id], &[], c.stdout.clone());
            d.expect_code(0);
            assert!(d.stdout == plain, "{format} {id}: decrypted bytes differ");
        }
    }
}

#[test]
fn a_plugin_not_on_path_is_a_usage_error_that_names_it() {
    let sb = Sandbox::new();
    let recipient = plugin_keygen(&sb, "id.txt").recipient;
    let c = zs_without_plugin(&sb, &["encrypt", "-r", &recipient], b"x".to_vec());
    c.expect_code(2);
    assert!(
        c.stderr.contains("age-plugin-zstest was not found on PATH"),
        "{}",
        c.stderr
    );
    assert!(c.stdout.is_empty());
    let wire = zs(&sb, &["encrypt", "-r", &recipient], &[], b"x".to_vec());
    wire.expect_code(0);
    let d = zs_without_plugin(&sb, &["decrypt", "-i", "id.txt"], wire.stdout.clone());
    d.expect_code(2);
    assert!(
        d.stderr.contains("age-plugin-zstest was not found on PATH"),
        "{}",
        d.stderr
    );
}

#[test]
fn a_refused_pin_and_a_wrong_identity_fail_with_exit_8() {
    let sb = Sandbox::new();
    let recipient = plugin_keygen(&sb, "id.txt").recipient;
    plugin_keygen(&sb, "other.txt");
    let wire = zs(&sb, &["encrypt", "-r", &recipient], &[], b"secret".to_vec())
        .stdout
        .clone();
    // The plugin asks for a PIN; without a terminal the request is refused
    // and the plugin's error names it.
    let d = zs(
        &sb,
        &["decrypt", "-i", "id.txt"],
        &[("ZSTEST_PIN", "1234")],
        wire.clone(),
    );
    d.expect_code(8);
    assert!(
        d.stderr
            .contains("an age plugin asks: Enter the zstest PIN; refused: no terminal"),
        "{}",
        d.stderr
    );
    assert!(
        d.stderr.contains(
            "age-plugin-zstest could not decrypt with its identity: a PIN is required and none was given"
        ),
        "{}",
        d.stderr
    );
    assert!(d.stdout.is_empty());
    // Another key of the same plugin: no stanza for it.
    let d = zs(&sb, &["decrypt", "-i", "other.txt"], &[], wire);
    d.expect_code(8);
    assert!(d.stderr.contains("no identity matched"), "{}", d.stderr);
}

#[test]
fn plugin_labels_follow_age_mixing_rules() {
    let sb = Sandbox::new();
    let plugin = plugin_keygen(&sb, "plugin.txt").recipient;
    let pq = our_keygen(&sb, &["--pq"], "pq.txt");
    let classic = our_keygen(&sb, &[], "classic.txt");
    let args = ["encrypt", "-r", &plugin, "-r", &pq];
    // A plugin without labels is classic: not next to a hybrid recipient.
    let c = zs(&sb, &args, &[], b"x".to_vec());
    c.expect_code(2);
    assert!(c.stderr.contains("can't mix post-quantum"), "{}", c.stderr);
    // A plugin with the postquantum label joins it, and not a classic one.
    let pq_plugin = [("ZSTEST_LABELS", "postquantum")];
    let c = zs(&sb, &args, &pq_plugin, b"mixed".to_vec());
    c.expect_code(0);
    for id in ["plugin.txt", "pq.txt"] {
        let d = zs(&sb, &["decrypt", "-i", id], &[], c.stdout.clone());
        d.expect_code(0);
        assert_eq!(d.stdout, b"mixed");
    }
    let c = zs(
        &sb,
        &["encrypt", "-r", &plugin, "-r", &classic],
        &pq_plugin,
        b"x".to_vec(),
    );
    c.expect_code(2);
    assert!(c.stderr.contains("can't mix post-quantum"), "{}", c.stderr);
    // Other labels are named.
    let c = zs(
        &sb,
        &args,
        &[("ZSTEST_LABELS", "hardware-only")],
        b"x".to_vec(),
    );
    c.expect_code(2);
    assert!(
        c.stderr
            .contains("one has the labels [hardware-only], another [postquantum]"),
        "{}",
        c.stderr
    );
}

/// `age` (Debian 1.1.1, Go) and rage, each with the plugin on PATH.
fn age_tools() -> Vec<PathBuf> {
    ["age", "rage"]
        .into_iter()
        .filter_map(support::tool)
        .collect()
}

#[test]
fn age_and_rage_decrypt_our_plugin_files_and_we_decrypt_theirs() {
    let sb = Sandbox::new();
    let recipient = plugin_keygen(&sb, "id.txt").recipient;
    let plain = data(70_000, 5);
    for tool in age_tools() {
        let ours = zs(
            &sb,
            &["encrypt", "--format", "age", "-r", &recipient],
            &[],
            plain.clone(),
        );
        ours.expect_code(0);
        let d = run_tool(
            &sb,
            &tool,
            &["-d", "-i", "id.txt"],
            &[],
            ours.stdout.clone(),
        );
        d.expect_code(0);
        assert!(d.stdout == plain, "{} decrypting ours", tool.display());
        let theirs = run_tool(&sb, &tool, &["-r", &recipient], &[], plain.clone());
        theirs.expect_code(0);
        let d = zs(
            &sb,
            &["decrypt", "-i", "id.txt"],
            &[],
            theirs.stdout.clone(),
        );
        d.expect_code(0);
        assert!(d.stdout == plain, "ours decrypting {}", tool.display());
    }
}

#[test]
fn tag_recipients_encrypt_for_the_hardware_key_behind_the_plugin() {
    let sb = Sandbox::new();
    let tag = plugin_keygen(&sb, "id.txt").tag;
    assert!(tag.starts_with("age1tag1"), "{tag}");
    let plain = data(90_000, 77);
    for format in ["age-rt", "age"] {
        round_trip(&sb, format, &tag, "p256tag", "id.txt", &plain);
    }
    // A tag recipient is classic (no label): it combines with X25519, and
    // not with a hybrid recipient.
    let classic = our_keygen(&sb, &[], "classic.txt");
    let c = zs(
        &sb,
        &["encrypt", "-r", &tag, "-r", &classic],
        &[],
        plain.clone(),
    );
    c.expect_code(0);
    for id in ["id.txt", "classic.txt"] {
        let d = zs(&sb, &["decrypt", "-i", id], &[], c.stdout.clone());
        d.expect_code(0);
        assert!(d.stdout == plain, "{id}");
    }
    let pq = our_keygen(&sb, &["--pq"], "pq.txt");
    let c = zs(&sb, &["encrypt", "-r", &tag, "-r", &pq], &[], plain.clone());
    c.expect_code(2);
    assert!(c.stderr.contains("can't mix post-quantum"), "{}", c.stderr);
    // rage 0.12 encrypts to tag recipients too; we decrypt with the plugin.
    if let Some(rage) = support::tool("rage") {
        let theirs = run_tool(&sb, &rage, &["-r", &tag], &[], plain.clone());
        theirs.expect_code(0);
        we_decrypt(&sb, &theirs.stdout, "p256tag", "id.txt", &plain, "rage");
    }
}

/// typage (an independent implementation, by age's author) encrypts to the
/// tag recipient; the plugin opens its `p256tag` stanza through our
/// decrypt. With the test above (ours → the plugin), our `p256tag`
/// stanzas are the ones typage writes.
#[test]
fn typage_encrypts_to_a_tag_recipient_and_we_decrypt_with_the_plugin() {
    let Some(t) = typage::typage() else { return };
    let sb = Sandbox::new();
    let tag = plugin_keygen(&sb, "id.txt").tag;
    let plain = data(100_000, 3);
    let theirs = t.run(&sb, &["encrypt", "--recipient", &tag], &[], plain.clone());
    theirs.expect_code(0);
    we_decrypt(&sb, &theirs.stdout, "p256tag", "id.txt", &plain, "typage");
}

/// The decoded lengths of the first `-> TAG …` stanza's arguments.
fn stanza_args(file: &[u8], tag: &str) -> Vec<usize> {
    use base64::Engine;
    let text = String::from_utf8_lossy(file);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("-> {tag} ")))
        .unwrap_or_else(|| panic!("no {tag} stanza"));
    line.split(' ')
        .map(|a| {
            base64::prelude::BASE64_STANDARD_NO_PAD
                .decode(a)
                .unwrap()
                .len()
        })
        .collect()
}

/// `age1tagpq1…` (stanza `mlkem768p256tag`: a 4-byte tag and a 1153-byte
/// `enc`, ML-KEM-768's 1088 and P-256's 65): our files in both formats,
/// typage's and rage's open with the plugin, whose hybrid KEM and HPKE are
/// written from the spec (tests/plugin/age-plugin-zstest/src/tagpq.rs). It
/// carries the postquantum label: next to `age1pq1…` (both identities then
/// open the file), not next to X25519.
#[test]
fn hybrid_tag_recipients_open_with_the_plugin_and_are_post_quantum() {
    let sb = Sandbox::new();
    let tagpq = plugin_keygen(&sb, "id.txt").tagpq;
    assert!(tagpq.starts_with("age1tagpq1"), "{tagpq}");
    let plain = data(100_000, 41);
    for format in ["age-rt", "age"] {
        round_trip(&sb, format, &tagpq, "mlkem768p256tag", "id.txt", &plain);
    }
    let pq = our_keygen(&sb, &["--pq"], "pq.txt");
    let both = zs(
        &sb,
        &["encrypt", "-r", &tagpq, "-r", &pq],
        &[],
        plain.clone(),
    );
    both.expect_code(0);
    assert_eq!(stanza_args(&both.stdout, "mlkem768p256tag"), [4, 1153]);
    for id in ["id.txt", "pq.txt"] {
        let d = zs(&sb, &["decrypt", "-i", id], &[], both.stdout.clone());
        d.expect_code(0);
        assert!(d.stdout == plain, "{id}");
    }
    let classic = our_keygen(&sb, &[], "classic.txt");
    let c = zs(
        &sb,
        &["encrypt", "-r", &tagpq, "-r", &classic],
        &[],
        b"x".to_vec(),
    );
    c.expect_code(2);
    assert!(c.stderr.contains("can't mix post-quantum"), "{}", c.stderr);
    if let Some(t) = typage::typage() {
        let theirs = t.run(&sb, &["encrypt", "--recipient", &tagpq], &[], plain.clone());
        theirs.expect_code(0);
        we_decrypt(
            &sb,
            &theirs.stdout,
            "mlkem768p256tag",
            "id.txt",
            &plain,
            "typage",
        );
    }
    if let Some(rage) = support::tool("rage") {
        let theirs = run_tool(&sb, &rage, &["-r", &tagpq], &[], plain.clone());
        theirs.expect_code(0);
        we_decrypt(
            &sb,
            &theirs.stdout,
            "mlkem768p256tag",
            "id.txt",
            &plain,
            "rage",
        );
    }
}

/// On a terminal the plugin's PIN request is asked like our passphrase
/// (no echo), the answer goes back to the plugin, and its message shows;
/// a wrong PIN is the plugin's refusal, exit 8, naming it.
#[test]
fn a_plugin_pin_is_asked_on_the_terminal() {
    use expectrl::{Eof, Session, WaitStatus};
    let sb = Sandbox::new();
    let recipient = plugin_keygen(&sb, "id.txt").recipient;
    let plain = data(20_000, 8);
    let wire = zs(
        &sb,
        &["encrypt", "-r", &recipient, "-o", "in.age"],
        &[],
        plain.clone(),
    );
    wire.expect_code(0);
    for (pin, code) in [("1234", 0), ("9999", 8)] {
        let mut cmd = sb.cmd(&["decrypt", "-i", "id.txt", "-o", "out.bin", "in.age"]);
        cmd.env("PATH", path(true))
            .env("ZSTEST_PIN", "1234")
            .env("TERM", "xterm");
        let mut s = Session::spawn(cmd).expect("spawn on a pty");
        s.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
        s.expect("Enter the zstest PIN: ").expect("the PIN prompt");
        s.send_line(pin).unwrap();
        // expectrl hands the rest over as the EOF match.
        let found = s.expect(Eof).expect("EOF");
        let tail: Vec<u8> = found.matches().flat_map(|m| m.to_vec()).collect();
        let rest = String::from_utf8_lossy(&[found.before(), &tail].concat()).into_owned();
        assert!(!rest.contains(pin), "the PIN was echoed: {rest}");
        let status = s.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, c) if c == code),
            "{status:?} {rest}"
        );
        if code == 0 {
            assert!(rest.contains("touch your zstest key"), "{rest}");
            assert!(std::fs::read(sb.home().join("out.bin")).unwrap() == plain);
        } else {
            assert!(
                rest.contains("age-plugin-zstest could not decrypt with its identity: wrong PIN"),
                "{rest}"
            );
        }
    }
}
