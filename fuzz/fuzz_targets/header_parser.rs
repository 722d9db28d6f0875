//! Fuzz target `header_parser`: see `zebrastream::cipher::fuzzing::header_parser`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and invariant violations are bugs.
    let _ = zebrastream::cipher::fuzzing::header_parser(data);
});
