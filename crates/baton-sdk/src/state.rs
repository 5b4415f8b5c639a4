//! Replicated state objects (`baton:platform/state`): shared by every instance of the
//! function (or of its application, with the `baton.namespace` label) on every node. Each
//! operation applies at once on the local node and converges everywhere.
//!
//! ```text
//! let hits = baton_sdk::state::Counter::new("hits");
//! let version = hits.add(1)?;
//! let total = hits.value()?;
//! ```

mod bindings {
    #![allow(
        missing_docs,
        reason = "generated from wit/state.wit, which documents it"
    )]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "baton:platform/function",
    });
}

pub use bindings::baton::platform::state::{
    Change, Error, MapEntry, Op, Page, Query, Reading, VectorSlice, apply, apply_all, delete, read,
    read_page,
};

/// Reads `object`, picking the expected kind of reading; an absent object reads as `absent`.
fn read_as<T>(
    object: &str,
    query: &Query,
    absent: T,
    pick: fn(Reading) -> Result<T, Reading>,
) -> Result<T, Error> {
    match read(object, query) {
        Ok(reading) => {
            pick(reading).map_err(|r| Error::TypeMismatch(format!("unexpected reading {r:?}")))
        }
        Err(Error::NotFound(_)) => Ok(absent),
        Err(e) => Err(e),
    }
}

fn strings(reading: Reading) -> Result<Vec<String>, Reading> {
    match reading {
        Reading::Strings(s) => Ok(s),
        other => Err(other),
    }
}

/// A counter that goes up and down.
pub struct Counter(String);

impl Counter {
    /// The counter named `name` (created by its first `add`).
    pub fn new(name: impl Into<String>) -> Self {
        Counter(name.into())
    }

    /// Adds `amount` (negative subtracts); returns the object's new version.
    pub fn add(&self, amount: i64) -> Result<u64, Error> {
        apply(&self.0, &Op::CounterAdd(amount))
    }

    /// The current value on this node (0 if never added to).
    pub fn value(&self) -> Result<i64, Error> {
        read_as(&self.0, &Query::Whole, 0, |r| match r {
            Reading::Int(n) => Ok(n),
            other => Err(other),
        })
    }
}

/// An add-wins set of strings.
pub struct Set(String);

impl Set {
    /// The set named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Set(name.into())
    }

    /// Adds `member`.
    pub fn add(&self, member: &str) -> Result<u64, Error> {
        apply(&self.0, &Op::SetAdd(member.to_string()))
    }

    /// Removes `member` (an add concurrent with the removal wins).
    pub fn remove(&self, member: &str) -> Result<u64, Error> {
        apply(&self.0, &Op::SetRemove(member.to_string()))
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &str) -> Result<bool, Error> {
        let query = Query::Contains(member.to_string());
        read_as(&self.0, &query, false, |r| match r {
            Reading::Boolean(b) => Ok(b),
            other => Err(other),
        })
    }

    /// Every member, sorted.
    pub fn members(&self) -> Result<Vec<String>, Error> {
        read_as(&self.0, &Query::Whole, Vec::new(), strings)
    }
}

/// A multi-value register: after concurrent writes it holds each of them until the next
/// write.
pub struct Register(String);

impl Register {
    /// The register named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Register(name.into())
    }

    /// Replaces every value seen with `value`.
    pub fn set(&self, value: &str) -> Result<u64, Error> {
        apply(&self.0, &Op::RegisterSet(value.to_string()))
    }

    /// The current values: none, one, or several written concurrently.
    pub fn get(&self) -> Result<Vec<String>, Error> {
        read_as(&self.0, &Query::Whole, Vec::new(), strings)
    }
}

/// A vector of numbers that every replica adds into (for aggregations such as allreduce).
pub struct Vector(String);

impl Vector {
    /// The vector named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Vector(name.into())
    }

    /// Adds `values` element-wise from `offset`.
    pub fn add(&self, offset: u64, values: Vec<f64>) -> Result<u64, Error> {
        apply(&self.0, &Op::VectorAdd(VectorSlice { offset, values }))
    }

    /// Elements `offset..offset + len`.
    pub fn get(&self, offset: u64, len: u64) -> Result<Vec<f64>, Error> {
        let query = Query::VectorRange((offset, len));
        read_as(&self.0, &query, vec![0.0; len as usize], |r| match r {
            Reading::Numbers(n) => Ok(n),
            other => Err(other),
        })
    }

    /// The sum of every element.
    pub fn sum(&self) -> Result<f64, Error> {
        read_as(&self.0, &Query::VectorSum((0, None)), 0.0, |r| match r {
            Reading::Number(n) => Ok(n),
            other => Err(other),
        })
    }
}

/// A map from string keys to multi-value registers (a document, an index, a timeline).
pub struct RegisterMap(String);

impl RegisterMap {
    /// The map named `name` (created by its first `set`).
    pub fn new(name: impl Into<String>) -> Self {
        RegisterMap(name.into())
    }

    /// Sets `key` to `value`; returns the map's new version on this node, which counts every
    /// change made to it here (a staging area can count its fields by it).
    pub fn set(&self, key: &str, value: &str) -> Result<u64, Error> {
        apply(&self.0, &Op::MapSet((key.to_string(), value.to_string())))
    }

    /// Removes `key` (a set concurrent with the removal wins).
    pub fn remove(&self, key: &str) -> Result<u64, Error> {
        apply(&self.0, &Op::MapRemove(key.to_string()))
    }

    /// The values of `key`: none, one, or several written concurrently.
    pub fn get(&self, key: &str) -> Result<Vec<String>, Error> {
        read_as(
            &self.0,
            &Query::MapGet(key.to_string()),
            Vec::new(),
            |r| match r {
                Reading::Strings(s) => Ok(s),
                Reading::Absent => Ok(Vec::new()),
                other => Err(other),
            },
        )
    }

    /// Entries `start..stop` in key order, counted from the greatest key when `reverse`
    /// (at most 10,000): keyed by zero-padded times, the newest `n` are `page(0, n, true)`,
    /// read without reading the rest. Empty when the map does not exist.
    pub fn page(&self, start: u64, stop: u64, reverse: bool) -> Result<Vec<MapEntry>, Error> {
        read_page(
            &self.0,
            Page {
                start,
                stop,
                reverse,
            },
        )
    }

    /// Every key with its values, sorted by key; empty when the map does not exist.
    pub fn entries(&self) -> Result<Vec<MapEntry>, Error> {
        read_as(&self.0, &Query::Whole, Vec::new(), |r| match r {
            Reading::Entries(e) => Ok(e),
            Reading::Absent => Ok(Vec::new()),
            other => Err(other),
        })
    }

    /// Deletes the whole map; true when it existed.
    pub fn delete(&self) -> Result<bool, Error> {
        delete(&self.0)
    }
}

/// Changes to several objects applied in one call (`apply-all`), in order: a post fanned out
/// to a thousand timelines is one call to the host and one pass to the node's log, not a
/// thousand.
///
/// ```text
/// let mut batch = baton_sdk::state::Batch::default();
/// for follower in followers {
///     batch.map_set(&RegisterMap::new(format!("home/{follower}")), &key, &time);
/// }
/// for result in batch.apply() { result?; }
/// ```
#[derive(Default)]
pub struct Batch(Vec<Change>);

impl Batch {
    /// Adds `op` on the object named `object`.
    pub fn push(&mut self, object: impl Into<String>, op: Op) -> &mut Self {
        self.0.push(Change {
            object: object.into(),
            op,
        });
        self
    }

    /// Adds setting `key` to `value` in the register map `map`.
    pub fn map_set(&mut self, map: &RegisterMap, key: &str, value: &str) -> &mut Self {
        self.push(
            map.0.clone(),
            Op::MapSet((key.to_string(), value.to_string())),
        )
    }

    /// Changes added so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies every change in order; each one's result (the object's new version), in the
    /// same order. A change refused does not stop the others.
    pub fn apply(self) -> Vec<Result<u64, Error>> {
        if self.0.is_empty() {
            return Vec::new();
        }
        apply_all(&self.0)
    }
}
