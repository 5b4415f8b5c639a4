//! The control plane: owns which functions exist, and in cluster mode where they run.
//!
//! A deployment is checked in full (name, spec, component compiled by the host) before
//! anything is written; then the registration is committed durably to the [`Store`] and only
//! then activated, so an acknowledged deployment survives `kill -9` and a refused one leaves
//! no trace. Changes are serialized, so concurrent deploys, updates and deletes of one name
//! leave the store, the in-memory registry and the host agreeing.
//!
//! The policies the cluster manager is built from are pure and chosen by configuration:
//! the [`autoscaler`] (Knative's KPA) and [`placement`].
#![deny(missing_docs)]

pub mod autoscaler;
pub mod cluster;
mod control;
pub mod keep_alive;
pub mod placement;
mod registration;
mod secrets;
mod store;

pub use control::ControlPlane;
pub use registration::Registration;
pub use secrets::{Secrets, SecretsKey};
pub use store::{RedbStore, RedisStore, Store, Table, open_store};
