//! Entry points shared by the `fuzz/` targets and the corpus replay below.
//! Built only with `--cfg fuzzing` (cargo-fuzz sets it) and for this
//! crate's unit tests: not part of the API.

use std::str::FromStr;

use super::{format, Decryptor, Error, Format};

/// The X25519 identity the fuzz seeds are encrypted to (the CCTV test key;
/// public, never use it for real data).
pub const FUZZ_IDENTITY: &str =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

/// Parses `data` as a complete header; must never panic.
pub fn header_parser(data: &[u8]) -> Result<(), Error> {
    format::parse_header(data)?;
    Ok(())
}

/// Decrypts `data` as an age-rt stream with [`FUZZ_IDENTITY`].
pub fn agert_decoder(data: &[u8]) -> Result<Vec<u8>, Error> {
    decode(data, Format::AgeRt)
}

/// Decrypts `data` as an age v1 stream with [`FUZZ_IDENTITY`].
pub fn age_decoder(data: &[u8]) -> Result<Vec<u8>, Error> {
    decode(data, Format::AgeV1)
}

/// Feeds `data` in pieces (sizes taken from the data itself, so the fuzzer
/// explores split points) and checks the decryptor's invariants: plaintext
/// never exceeds the input, a success has the expected format and is done,
/// and how the input is split never changes a success (or its plaintext)
/// into anything else: the same bytes fed in one piece agree.
fn decode(data: &[u8], expected: Format) -> Result<Vec<u8>, Error> {
    let step = 1 + usize::from(data.last().copied().unwrap_or(0)) * 17;
    let split = decode_in_pieces(data, step, expected);
    let whole = decode_in_pieces(data, data.len().max(1), expected);
    assert_eq!(
        split.as_ref().ok(),
        whole.as_ref().ok(),
        "{step}-byte pieces and one piece disagree"
    );
    split
}

fn decode_in_pieces(data: &[u8], step: usize, expected: Format) -> Result<Vec<u8>, Error> {
    let identity = age::x25519::Identity::from_str(FUZZ_IDENTITY).expect("valid test identity");
    let mut dec = Decryptor::with_identities(vec![Box::new(identity)]);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let piece = &rest[..rest.len().min(step)];
        let n = dec.feed(piece)?;
        rest = &rest[n..];
        out.extend_from_slice(dec.plaintext());
        dec.consume_plaintext(dec.plaintext().len());
    }
    loop {
        dec.finish()?;
        if dec.plaintext().is_empty() {
            break;
        }
        out.extend_from_slice(dec.plaintext());
        dec.consume_plaintext(dec.plaintext().len());
    }
    assert!(out.len() <= data.len(), "more plaintext than ciphertext");
    assert!(dec.is_done(), "success without the final chunk");
    if dec.format() != Some(expected) {
        return Err(Error::Header(super::HeaderError::UnknownIdentifier(
            "a different format than this target expects".into(),
        )));
    }
    Ok(out)
}

/// Every committed fuzz seed (`fuzz/corpus/<target>/*`) through the entry
/// point its cargo-fuzz target calls. Seeds named `ok-*` must succeed and
/// `bad-*` must fail; any panic (an invariant check) fails the test.
#[cfg(test)]
mod corpus {
    use std::path::Path;

    fn run_corpus<T, E: std::fmt::Debug>(target: &str, entry: fn(&[u8]) -> Result<T, E>) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut count = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&path).unwrap();
            let result = entry(&data);
            if name.starts_with("ok-") {
                assert!(result.is_ok(), "{target}/{name}: {:?}", result.err());
            } else if name.starts_with("bad-") {
                assert!(result.is_err(), "{target}/{name} was accepted");
            }
            count += 1;
        }
        count
    }

    #[test]
    fn header_parser_corpus() {
        assert!(run_corpus("header_parser", super::header_parser) >= 5);
    }

    #[test]
    fn agert_decoder_corpus() {
        assert!(run_corpus("agert_decoder", super::agert_decoder) >= 7);
    }

    #[test]
    fn age_decoder_corpus() {
        assert!(run_corpus("age_decoder", super::age_decoder) >= 5);
    }
}
