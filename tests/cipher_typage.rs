//! Interop with typage (npm `age-encryption` 0.3.1, the TypeScript age by
//! age's author), both ways, with the machine's Node.js: typage encrypts and
//! our binary decrypts, our binary encrypts and typage decrypts, for X25519,
//! hybrid post-quantum (`age1pq1…`), passphrase (scrypt) and ASCII armor.
//! typage speaks age v1 only, so our side uses `--format age`.
//!
//! `scripts/setup.sh` installs the package into a cache folder;
//! `tests/typage/` runs it (see there). Without node or the package the
//! tests skip with a message, under `CI=true` they fail.

mod cli_support;
mod support;
mod typage;

use cli_support::{data, Finished, Proc, Sandbox};
use typage::{typage, Typage};

/// Payload size of every round trip: more than one 64 KiB age chunk.
const PAYLOAD: usize = 100_000;
/// The passphrase both sides use.
const PASSPHRASE: &str = "correct horse battery staple";

/// Our binary with `args` and `env`, `stdin` fed.
fn zs(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], stdin: Vec<u8>) -> Finished {
    let mut cmd = sb.cmd(args);
    cmd.envs(env.iter().copied());
    Proc::spawn(cmd, Some(stdin)).finish()
}

/// Our `keygen [--pq] -o FILE`: the recipient.
fn our_keygen(sb: &Sandbox, pq: bool, file: &str) -> String {
    let mut args = vec!["keygen", "-o", file];
    if pq {
        args.push("--pq");
    }
    let out = zs(sb, &args, &[], Vec::new());
    out.expect_code(0);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----\n";

/// typage encrypts with `encrypt_args` (`armor`: through its armor
/// encoder); our `decrypt DECRYPT_ARGS` must give the payload back.
fn typage_to_us(
    t: &Typage,
    sb: &Sandbox,
    encrypt_args: &[&str],
    decrypt_args: &[&str],
    env: &[(&str, &str)],
    seed: u64,
) {
    let plain = data(PAYLOAD, seed);
    let c = t.run(
        sb,
        &[&["encrypt"], encrypt_args].concat(),
        env,
        plain.clone(),
    );
    c.expect_code(0);
    let armored = encrypt_args.contains(&"--armor");
    assert_eq!(
        c.stdout.starts_with(BEGIN),
        armored,
        "typage {encrypt_args:?}"
    );
    assert_eq!(
        c.stdout.starts_with(b"age-encryption.org/v1\n"),
        !armored,
        "typage {encrypt_args:?}"
    );
    let p = zs(sb, &[&["decrypt"], decrypt_args].concat(), env, c.stdout);
    p.expect_code(0);
    assert!(
        p.stdout == plain,
        "our decrypt of typage {encrypt_args:?} differs"
    );
}

/// Our `encrypt --format age ENCRYPT_ARGS`; typage's `decrypt DECRYPT_ARGS`
/// must give the payload back.
fn us_to_typage(
    t: &Typage,
    sb: &Sandbox,
    encrypt_args: &[&str],
    decrypt_args: &[&str],
    env: &[(&str, &str)],
    seed: u64,
) {
    let plain = data(PAYLOAD, seed);
    let args = [&["encrypt", "--format", "age"], encrypt_args].concat();
    let c = zs(sb, &args, env, plain.clone());
    c.expect_code(0);
    let armored = encrypt_args.contains(&"-a");
    assert_eq!(
        c.stdout.starts_with(BEGIN),
        armored,
        "ours {encrypt_args:?}"
    );
    let p = t.run(sb, &[&["decrypt"], decrypt_args].concat(), env, c.stdout);
    p.expect_code(0);
    assert!(
        p.stdout == plain,
        "typage's decrypt of ours {encrypt_args:?} differs"
    );
}

/// Both directions for one key kind: the reader's identity comes from the
/// reader's own keygen, the writer only sees the recipient.
fn both_ways_with_keys(pq: bool, armor: bool) {
    let Some(t) = typage() else { return };
    let sb = Sandbox::new();
    let (their_armor, our_armor): (&[&str], &[&str]) = if armor {
        (&["--armor"], &["-a"])
    } else {
        (&[], &[])
    };

    let ours = our_keygen(&sb, pq, "ours.txt");
    assert_eq!(ours.starts_with("age1pq1"), pq, "{ours}");
    let encrypt = [&["--recipient", ours.as_str()], their_armor].concat();
    typage_to_us(&t, &sb, &encrypt, &["-i", "ours.txt"], &[], 1);

    let theirs = t.keygen(&sb, pq, "theirs.txt");
    assert_eq!(theirs.starts_with("age1pq1"), pq, "{theirs}");
    let encrypt = [&["-r", theirs.as_str()], our_armor].concat();
    let decrypt = [&["--identity-file", "theirs.txt"], their_armor].concat();
    us_to_typage(&t, &sb, &encrypt, &decrypt, &[], 2);
}

#[test]
fn x25519_both_ways() {
    both_ways_with_keys(false, false);
}

#[test]
fn hybrid_post_quantum_both_ways() {
    both_ways_with_keys(true, false);
}

#[test]
fn armor_both_ways_with_x25519_and_hybrid_keys() {
    both_ways_with_keys(false, true);
    both_ways_with_keys(true, true);
}

#[test]
fn passphrase_both_ways() {
    let Some(t) = typage() else { return };
    let sb = Sandbox::new();
    let env = [("PW", PASSPHRASE)];
    let ours = ["--passphrase-env", "PW"];
    let theirs = ["--passphrase-env", "PW"];
    typage_to_us(&t, &sb, &theirs, &ours, &env, 3);
    us_to_typage(&t, &sb, &ours, &theirs, &env, 4);
    // Armored too, each side with its own encoder.
    typage_to_us(
        &t,
        &sb,
        &[&theirs[..], &["--armor"]].concat(),
        &ours,
        &env,
        5,
    );
    us_to_typage(
        &t,
        &sb,
        &[&ours[..], &["-a"]].concat(),
        &[&theirs[..], &["--armor"]].concat(),
        &env,
        6,
    );
}

#[test]
fn our_decrypt_of_a_typage_file_with_the_wrong_identity_exits_8() {
    let Some(t) = typage() else { return };
    let sb = Sandbox::new();
    for pq in [false, true] {
        let (right, wrong) = if pq {
            ("right-pq.txt", "wrong-pq.txt")
        } else {
            ("right.txt", "wrong.txt")
        };
        let recipient = our_keygen(&sb, pq, right);
        our_keygen(&sb, pq, wrong);
        let c = t.run(
            &sb,
            &["encrypt", "--recipient", &recipient],
            &[],
            data(PAYLOAD, 7),
        );
        c.expect_code(0);
        let out = zs(
            &sb,
            &["decrypt", "-i", wrong, "-o", "out.bin"],
            &[],
            c.stdout,
        );
        out.expect_code(8);
        assert!(
            out.stderr.contains("wrong passphrase or key"),
            "{}",
            out.stderr
        );
        assert!(
            !sb.home().join("out.bin").exists(),
            "pq={pq}: output written"
        );
    }
}
