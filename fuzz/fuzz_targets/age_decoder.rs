//! Fuzz target `age_decoder`: see `zebrastream::cipher::fuzzing::age_decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and invariant violations are bugs.
    let _ = zebrastream::cipher::fuzzing::age_decoder(data);
});
