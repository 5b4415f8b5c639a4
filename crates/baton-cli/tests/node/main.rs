//! Integration tests: the real `baton` binary on ephemeral loopback ports.

mod harness;

mod admin;
mod attacks;
mod bench;
mod cli;
mod cluster;
mod durability;
mod faas_cli;
mod failures;
mod federation;
mod invoke;
mod jetstream;
mod objects;
mod polyglot;
mod socialnet;
mod state;
mod tls;
