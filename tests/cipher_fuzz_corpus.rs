//! Runs every committed fuzz seed (`fuzz/corpus/<target>/*`) through the
//! same entry functions the cargo-fuzz targets call
//! (`zebrastream::cipher::fuzzing`). Seeds named `ok-*` must succeed and
//! `bad-*` must fail; any panic (an invariant check) fails the test.

use std::path::Path;

use zebrastream::cipher::fuzzing;

fn run_corpus<T, E: std::fmt::Debug>(target: &str, entry: fn(&[u8]) -> Result<T, E>) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
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
    assert!(run_corpus("header_parser", fuzzing::header_parser) >= 5);
}

#[test]
fn agert_decoder_corpus() {
    assert!(run_corpus("agert_decoder", fuzzing::agert_decoder) >= 7);
}

#[test]
fn age_decoder_corpus() {
    assert!(run_corpus("age_decoder", fuzzing::age_decoder) >= 5);
}
