//! Delta-state CRDTs (Almeida, Shoker, Baquero, "Delta State Replicated Data Types", 2018) as
//! pure data types, with no I/O: Baton's state agent replicates them between nodes.
//!
//! Every type is a [`Lattice`]: `join` is commutative, associative and idempotent, so replicas
//! that have seen the same updates in any order, any number of times, hold the same value.
//! Each mutator returns a **delta**, itself a value of the type, much smaller than the state;
//! joining the deltas gives the same state as joining full states (property-tested in
//! `tests/laws.rs`).
//!
//! - Counters: [`GCounter`], [`PNCounter`].
//! - Registers: [`LwwRegister`] (last writer wins), [`MvRegister`] (keeps concurrent values).
//! - [`EwFlag`]: enable-wins flag.
//! - Sets: [`GSet`] (grow-only), [`AwSet`] (add-wins observed-remove, no tombstones).
//! - [`OrMap`]: observed-remove map whose values are causal CRDTs (flags, registers, sets,
//!   maps).
//! - [`AddVector`]: a numeric vector whose elements add (allreduce), shipped by block.
//!
//! Replica identity is per node with an epoch ([`ReplicaId`]), so a node that lost its state
//! and restarts with a new epoch never reuses an event id.
#![deny(missing_docs)]

mod causal;
mod counter;
mod flag;
mod lattice;
mod map;
mod register;
mod set;
mod vector;

pub use causal::{Causal, CausalContext, Dot, DotFun, DotMap, DotSet, DotStore};
pub use counter::{GCounter, PNCounter};
pub use flag::EwFlag;
pub use lattice::{DecodeError, Lattice, ReplicaId, decode, encode};
pub use map::{CausalValue, OrMap};
pub use register::{LwwRegister, MvRegister};
pub use set::{AwSet, GSet};
pub use vector::{AddVector, BLOCK, VectorError};
