//! What a state peer's bytes go through: frames, updates, merges, reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    baton_state::fuzzing::peer_bytes(data);
});
