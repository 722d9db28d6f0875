//! `zebrastream demo`: works with no configuration, verifies the data and
//! reports that the relay saw only ciphertext.

mod cli_support;

use cli_support::{Proc, Sandbox};

#[test]
fn demo_transfers_verifies_and_proves_the_relay_saw_only_ciphertext() {
    let sb = Sandbox::new();
    for format in ["age-rt", "age"] {
        let out = sb
            .spawn(&["demo", "--size", "3MiB", "--format", format], None)
            .finish();
        out.expect_code(0);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("sent      3145728 bytes"), "{text}");
        assert!(text.contains("received  3145728 bytes"), "{text}");
        assert!(
            text.contains("plaintext block marker seen: never"),
            "{text}"
        );
        assert!(text.contains("the relay saw only ciphertext"), "{text}");
        assert!(text.contains("MiB/s"), "{text}");
        assert_eq!(out.stderr, "", "no warnings in the demo");
    }
    // A size it cannot parse is a usage error.
    Proc::spawn(sb.cmd(&["demo", "--size", "lots"]), None)
        .finish()
        .expect_code(2);
}
