//! Fuzz target `agert_decoder`: see `zebrastream::cipher::fuzzing::agert_decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and invariant violations are bugs.
    let _ = zebrastream::cipher::fuzzing::agert_decoder(data);
});
