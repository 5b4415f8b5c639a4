//! The Azure trace readers of `baton bench replay`: the 2019 trio and the 2021 file, from
//! the input split at NUL bytes into the files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let dir = tempfile::tempdir().unwrap();
    for name in ["invocations.csv", "durations.csv", "memory.csv"] {
        std::fs::write(dir.path().join(name), parts.next().unwrap_or_default()).unwrap();
    }
    let _ = baton_bench::trace::read_2019(dir.path());
    let _ = baton_bench::trace::read_2021(&dir.path().join("invocations.csv"));
});
