//! The social network's pure logic, shared by its wasm component (`apps/socialnet/functions`)
//! and tested on the host with `cargo test --workspace`: the classic-watchdog reply format,
//! field checks, ids, passwords, post text parsing, timeline pages and HTML escaping. Nothing
//! here does I/O; randomness comes in as bytes.
#![deny(missing_docs)]

pub mod classic;
pub mod fields;
pub mod form;
pub mod html;
pub mod ids;
pub mod password;
pub mod text;
pub mod timeline;
