//! `encrypt`/`decrypt` with the built binary: round trips, key sources,
//! interop with `age`/`rage`, and the failure classes (exit 8 and 9, with
//! nothing unauthenticated written).

mod cli_support;
mod support;

use cli_support::{data, Proc, Sandbox};

fn run(
    sb: &Sandbox,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<Vec<u8>>,
) -> cli_support::Finished {
    let mut cmd = sb.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::spawn(cmd, stdin).finish()
}

#[test]
fn passphrase_round_trips_in_both_formats_through_files_and_pipes() {
    let sb = Sandbox::new();
    let plain = data(300_000, 41);
    sb.file("plain.bin", &plain);
    sb.file("pw.txt", b"file passphrase\n");
    for format in ["age-rt", "age"] {
        run(
            &sb,
            &[
                "encrypt",
                "--format",
                format,
                "--passphrase-file",
                "pw.txt",
                "-o",
                "c.age",
                "plain.bin",
            ],
            &[],
            None,
        )
        .expect_code(0);
        let cipher = std::fs::read(sb.home().join("c.age")).unwrap();
        assert_ne!(cipher[..40], plain[..40]);
        // Pipe in, pipe out; the passphrase from --passphrase-env.
        let out = run(
            &sb,
            &["decrypt", "--passphrase-env", "MY_PW"],
            &[("MY_PW", "file passphrase")],
            Some(cipher),
        );
        out.expect_code(0);
        assert_eq!(out.stdout, plain, "{format}");
    }
    // ZEBRASTREAM_PASSPHRASE is used when no key flag is given.
    let env = [("ZEBRASTREAM_PASSPHRASE", "from env")];
    let c = run(&sb, &["encrypt"], &env, Some(plain.clone()));
    c.expect_code(0);
    let p = run(&sb, &["decrypt"], &env, Some(c.stdout));
    p.expect_code(0);
    assert_eq!(p.stdout, plain);
}

#[test]
fn x25519_keys_from_keygen() {
    let sb = Sandbox::new();
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    let recipient = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    sb.file(
        "recipients.txt",
        format!("# partner\n{recipient}").as_bytes(),
    );
    let plain = data(70_000, 42);
    let c = run(
        &sb,
        &["encrypt", "-R", "recipients.txt"],
        &[],
        Some(plain.clone()),
    );
    c.expect_code(0);
    let p = run(
        &sb,
        &["decrypt", "-i", "id.txt"],
        &[],
        Some(c.stdout.clone()),
    );
    p.expect_code(0);
    assert_eq!(p.stdout, plain);
    // Another identity: wrong key, exit 8, nothing written.
    sb.zs()
        .args(["keygen", "-o", "other.txt"])
        .assert()
        .success();
    let wrong = run(
        &sb,
        &["decrypt", "-i", "other.txt", "-o", "out.bin"],
        &[],
        Some(c.stdout),
    );
    wrong.expect_code(8);
    assert!(
        wrong.stderr.contains("wrong passphrase or key"),
        "{}",
        wrong.stderr
    );
    assert!(!sb.home().join("out.bin").exists());
}

#[test]
fn tampered_and_truncated_input_fail_without_unauthenticated_output() {
    let sb = Sandbox::new();
    let plain = data(300_000, 43);
    let env = [("ZEBRASTREAM_PASSPHRASE", "pw")];
    let c = run(&sb, &["encrypt"], &env, Some(plain.clone()));
    c.expect_code(0);
    let cipher = c.stdout;

    let mut flipped = cipher.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x40;
    let out = run(&sb, &["decrypt"], &env, Some(flipped));
    out.expect_code(8);
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.len() < at);
    assert_eq!(
        out.stdout,
        plain[..out.stdout.len()],
        "only authenticated plaintext"
    );

    let cut = cipher[..cipher.len() - 100].to_vec();
    let out = run(&sb, &["decrypt", "-o", "cut.bin"], &env, Some(cut));
    out.expect_code(9);
    assert!(out.stderr.contains("truncated"), "{}", out.stderr);
    assert!(
        !sb.home().join("cut.bin").exists(),
        "partial file left behind"
    );

    let out = run(
        &sb,
        &["decrypt"],
        &env,
        Some(b"not encrypted at all".to_vec()),
    );
    out.expect_code(8);
}

#[test]
fn usage_errors() {
    let sb = Sandbox::new();
    // No key and no terminal.
    let out = run(&sb, &["encrypt"], &[], Some(b"x".to_vec()));
    out.expect_code(2);
    assert!(out.stderr.contains("no key given"), "{}", out.stderr);
    // A passphrase and a recipient at once.
    run(
        &sb,
        &["encrypt", "--passphrase-env", "X", "-r", "age1xyz"],
        &[("X", "pw")],
        None,
    )
    .expect_code(2);
    // A malformed recipient names the problem.
    let out = run(
        &sb,
        &["encrypt", "-r", "age1notakey"],
        &[],
        Some(b"x".to_vec()),
    );
    out.expect_code(2);
    assert!(out.stderr.contains("recipient"), "{}", out.stderr);
    run(
        &sb,
        &["encrypt", "--format", "rot13", "-r", "age1x"],
        &[],
        None,
    )
    .expect_code(2);
}

#[test]
fn age_and_rage_read_ours_and_we_read_theirs() {
    let sb = Sandbox::new();
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    let recipient = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let recipient = recipient.trim();
    let plain = data(200_000, 44);
    sb.file("plain.bin", &plain);
    run(
        &sb,
        &[
            "encrypt",
            "--format",
            "age",
            "-r",
            recipient,
            "-o",
            "ours.age",
            "plain.bin",
        ],
        &[],
        None,
    )
    .expect_code(0);
    for tool in ["age", "rage"] {
        let Some(path) = support::tool(tool) else {
            continue;
        };
        // They decrypt our age v1 output with our keygen's identity file.
        let mut cmd = std::process::Command::new(&path);
        sb.apply(&mut cmd);
        cmd.args(["-d", "-i", "id.txt", "ours.age"]);
        let out = Proc::spawn(cmd, None).finish();
        out.expect_code(0);
        assert_eq!(out.stdout, plain, "{tool} -d");
        // We decrypt theirs.
        let mut cmd = std::process::Command::new(&path);
        sb.apply(&mut cmd);
        cmd.args(["-r", recipient, "-o", "theirs.age", "plain.bin"]);
        Proc::spawn(cmd, None).finish().expect_code(0);
        let out = run(&sb, &["decrypt", "-i", "id.txt", "theirs.age"], &[], None);
        out.expect_code(0);
        assert_eq!(out.stdout, plain, "decrypt {tool} output");
    }
}

/// The README's file lines as a shell runs them, with every default (no
/// `--format`, output to a file with `-o` or through a redirection): `keygen
/// -o partner.key` prints the `age1…` the user copies, `encrypt -r age1… -o
/// data.age data.csv` writes age-rt, `encrypt -a` writes age's armor, and
/// `decrypt -i partner.key data.age > data.csv` gives both back.
#[test]
fn the_readme_file_lines_through_a_shell() {
    let sb = Sandbox::new();
    let csv = data(150_000, 41);
    let notes = data(5_000, 42);
    sb.file("data.csv", &csv);
    sb.file("notes.txt", &notes);
    let keygen = sb.shell("zebrastream keygen -o partner.key").finish();
    keygen.expect_code(0);
    // With -o the key goes to the file and the recipient to stdout.
    let recipient = String::from_utf8(keygen.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    for line in [
        format!("zebrastream encrypt -r {recipient} -o data.age data.csv"),
        format!("zebrastream encrypt -a -r {recipient} -o notes.age notes.txt"),
    ] {
        sb.shell(&line).finish().expect_code(0);
    }
    let sealed = std::fs::read(sb.home().join("data.age")).unwrap();
    assert!(sealed.starts_with(b"github.com/parsimonit/age-rt-encryption/v0.2\n"));
    let armored = std::fs::read(sb.home().join("notes.age")).unwrap();
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
    // The README decrypts into a file by redirection; `| cat >` is the same
    // through a pipe (stdout is not a file zebrastream could inspect).
    sb.shell("zebrastream decrypt -i partner.key data.age > data.out")
        .finish()
        .expect_code(0);
    sb.shell("zebrastream decrypt -i partner.key notes.age | cat > notes.out")
        .finish()
        .expect_code(0);
    assert!(std::fs::read(sb.home().join("data.out")).unwrap() == csv);
    assert!(std::fs::read(sb.home().join("notes.out")).unwrap() == notes);
}
