//! The wasm components Baton ships and tests with, built by this crate's `build.rs`.
//!
//! `HELLO`, `ECHO`, `JSON_TRANSFORM`, `COUNTER` and `ALLREDUCE` are the examples in
//! `examples/`, deployed by `baton up --examples`; `MISBEHAVE` is the test guest in `tests/guests/` whose routes trap,
//! spin, exhaust memory and overflow the stack; `BUSY` (also in `tests/guests/`) is trace
//! replay's synthetic function; `CONFIG_READER` reads `wasi:config/store` as a Spin 3 component
//! does; `KV_SPIN` and `KV_WASMCLOUD` keep data through `wasi:keyvalue` as Spin 3 and wasmCloud
//! components do; `BLOBSTORE_WASMCLOUD` keeps files through `wasi:blobstore` as a wasmCloud
//! component does, `OBJECTS_SDK` through `baton_sdk::objects`. Each has a `_PATH` twin naming
//! the file. `SOCIALNET` is the social network's component (`apps/socialnet/functions`),
//! every function of the application in one.
#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The Python example functions, embedded so the binary can deploy them from anywhere.
pub mod python {
    /// `examples/python-classic/handler.py`: a classic-watchdog function.
    pub const CLASSIC_HANDLER: &str = include_str!("../../../examples/python-classic/handler.py");
    /// `examples/python-http/server.py`: an http-mode function.
    pub const HTTP_SERVER: &str = include_str!("../../../examples/python-http/server.py");
}
