//! The typed objects a namespace holds, the operations that change them and the queries that
//! read them. Pure logic: the agent adds naming, replication and durability around it.

use crate::{Limits, StateError};
use baton_crdt::{
    AddVector, AwSet, EwFlag, Lattice, LwwRegister, MvRegister, OrMap, PNCounter, ReplicaId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An object's type, fixed by the first operation that creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A counter that goes up and down.
    Counter,
    /// A multi-value register: concurrent writes are all kept until the next write.
    Register,
    /// A last-writer-wins register.
    LwwRegister,
    /// An enable-wins flag.
    Flag,
    /// An add-wins set of strings.
    Set,
    /// A map from strings to multi-value registers.
    RegisterMap,
    /// A map from strings to add-wins sets.
    SetMap,
    /// A map from strings to enable-wins flags.
    FlagMap,
    /// A vector of numbers that replicas add into.
    Vector,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Counter => "counter",
            Kind::Register => "register",
            Kind::LwwRegister => "lww-register",
            Kind::Flag => "flag",
            Kind::Set => "set",
            Kind::RegisterMap => "register-map",
            Kind::SetMap => "set-map",
            Kind::FlagMap => "flag-map",
            Kind::Vector => "vector",
        })
    }
}

/// A change to an object. Its variant names the object's type; the first change creates the
/// object with that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Op {
    /// Adds `amount` (negative subtracts) to a counter.
    CounterAdd {
        /// How much.
        amount: i64,
    },
    /// Writes a multi-value register.
    RegisterSet {
        /// The value.
        value: String,
    },
    /// Writes a last-writer-wins register.
    LwwSet {
        /// The value.
        value: String,
    },
    /// Turns a flag on.
    FlagEnable,
    /// Turns a flag off (an enable concurrent with it wins).
    FlagDisable,
    /// Adds a member to a set.
    SetAdd {
        /// The member.
        member: String,
    },
    /// Removes a member from a set (an add concurrent with it wins).
    SetRemove {
        /// The member.
        member: String,
    },
    /// Writes the register at `key` of a register map.
    MapSet {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Adds `member` to the set at `key` of a set map.
    MapAdd {
        /// The key.
        key: String,
        /// The member.
        member: String,
    },
    /// Removes `member` from the set at `key` of a set map.
    MapRemoveMember {
        /// The key.
        key: String,
        /// The member.
        member: String,
    },
    /// Turns on the flag at `key` of a flag map.
    MapEnable {
        /// The key.
        key: String,
    },
    /// Turns off the flag at `key` of a flag map.
    MapDisable {
        /// The key.
        key: String,
    },
    /// Removes `key` from a map of any kind (a concurrent update of the key wins).
    MapRemove {
        /// The key.
        key: String,
    },
    /// Adds `values` element-wise into a vector from `offset`.
    VectorAdd {
        /// Index of the first element.
        offset: u64,
        /// The numbers (finite).
        values: Vec<f64>,
    },
}

impl Op {
    /// The object type this operation needs; `None` for `map-remove`, which any map takes.
    pub fn kind(&self) -> Option<Kind> {
        Some(match self {
            Op::CounterAdd { .. } => Kind::Counter,
            Op::RegisterSet { .. } => Kind::Register,
            Op::LwwSet { .. } => Kind::LwwRegister,
            Op::FlagEnable | Op::FlagDisable => Kind::Flag,
            Op::SetAdd { .. } | Op::SetRemove { .. } => Kind::Set,
            Op::MapSet { .. } => Kind::RegisterMap,
            Op::MapAdd { .. } | Op::MapRemoveMember { .. } => Kind::SetMap,
            Op::MapEnable { .. } | Op::MapDisable { .. } => Kind::FlagMap,
            Op::MapRemove { .. } => return None,
            Op::VectorAdd { .. } => Kind::Vector,
        })
    }

    /// Refuses strings and vectors beyond the limits before anything changes.
    pub(crate) fn check(&self, limits: &Limits) -> Result<(), StateError> {
        let strings: &[&String] = match self {
            Op::RegisterSet { value } | Op::LwwSet { value } => &[value],
            Op::SetAdd { member } | Op::SetRemove { member } => &[member],
            Op::MapSet { key, value } => &[key, value],
            Op::MapAdd { key, member } | Op::MapRemoveMember { key, member } => &[key, member],
            Op::MapEnable { key } | Op::MapDisable { key } | Op::MapRemove { key } => &[key],
            Op::VectorAdd { offset, values } => {
                let end = offset.saturating_add(values.len() as u64);
                if end > limits.max_vector_len {
                    return Err(StateError::TooLarge(format!(
                        "vector add reaches index {end}, beyond the limit of {} elements",
                        limits.max_vector_len
                    )));
                }
                if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                    return Err(StateError::Invalid(format!(
                        "value at index {} is not a finite number",
                        offset + bad as u64
                    )));
                }
                &[]
            }
            Op::CounterAdd { .. } | Op::FlagEnable | Op::FlagDisable => &[],
        };
        for s in strings {
            if s.len() > limits.max_value_bytes {
                return Err(StateError::TooLarge(format!(
                    "a value of {} bytes exceeds the limit of {} bytes",
                    s.len(),
                    limits.max_value_bytes
                )));
            }
        }
        Ok(())
    }
}

/// A read of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Query {
    /// The whole value.
    Value,
    /// Whether a set holds `member`.
    Contains {
        /// The member.
        member: String,
    },
    /// The value at `key` of a map.
    MapGet {
        /// The key.
        key: String,
    },
    /// The keys of a map.
    MapKeys,
    /// Entries `start..stop` of a map in key order, from the greatest key when `reverse`
    /// (a map's whole value, limited to that page): a sorted set's range, for keys that
    /// sort as times or ranks.
    MapPage {
        /// First entry, counted from the end when `reverse`.
        start: u64,
        /// One past the last entry.
        stop: u64,
        /// From the greatest key down.
        #[serde(default)]
        reverse: bool,
    },
    /// Elements `offset..offset + len` of a vector.
    VectorRange {
        /// First index.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// The sum of elements `offset..offset + len` of a vector (the whole vector if `len` is
    /// absent): one number, to check an aggregation without moving it.
    VectorSum {
        /// First index.
        #[serde(default)]
        offset: u64,
        /// How many.
        len: Option<u64>,
    },
}

/// What a query returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A counter.
    Int(i64),
    /// A flag, or set membership.
    Bool(bool),
    /// Register values (several after concurrent writes), set members or map keys.
    Strings(Vec<String>),
    /// Vector elements.
    Numbers(Vec<f64>),
    /// A vector sum.
    Number(f64),
    /// A whole map.
    Map(BTreeMap<String, Value>),
    /// Nothing at that key.
    Absent,
}

/// An object's replicated state: one CRDT per type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Object {
    /// See [`Kind::Counter`].
    Counter(PNCounter),
    /// See [`Kind::Register`].
    Register(MvRegister<String>),
    /// See [`Kind::LwwRegister`].
    LwwRegister(LwwRegister<String>),
    /// See [`Kind::Flag`].
    Flag(EwFlag),
    /// See [`Kind::Set`].
    Set(AwSet<String>),
    /// See [`Kind::RegisterMap`].
    RegisterMap(OrMap<String, MvRegister<String>>),
    /// See [`Kind::SetMap`].
    SetMap(OrMap<String, AwSet<String>>),
    /// See [`Kind::FlagMap`].
    FlagMap(OrMap<String, EwFlag>),
    /// See [`Kind::Vector`].
    Vector(AddVector),
}

impl Object {
    /// An empty object of `kind`.
    pub fn new(kind: Kind) -> Object {
        match kind {
            Kind::Counter => Object::Counter(Default::default()),
            Kind::Register => Object::Register(Default::default()),
            Kind::LwwRegister => Object::LwwRegister(Default::default()),
            Kind::Flag => Object::Flag(Default::default()),
            Kind::Set => Object::Set(Default::default()),
            Kind::RegisterMap => Object::RegisterMap(Default::default()),
            Kind::SetMap => Object::SetMap(Default::default()),
            Kind::FlagMap => Object::FlagMap(Default::default()),
            Kind::Vector => Object::Vector(Default::default()),
        }
    }

    /// Its type.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Counter(_) => Kind::Counter,
            Object::Register(_) => Kind::Register,
            Object::LwwRegister(_) => Kind::LwwRegister,
            Object::Flag(_) => Kind::Flag,
            Object::Set(_) => Kind::Set,
            Object::RegisterMap(_) => Kind::RegisterMap,
            Object::SetMap(_) => Kind::SetMap,
            Object::FlagMap(_) => Kind::FlagMap,
            Object::Vector(_) => Kind::Vector,
        }
    }

    /// Applies `op` as `replica` at wall-clock `now_micros`; returns the delta. The caller has
    /// checked the op against the limits and the object's type.
    pub(crate) fn apply(&mut self, replica: ReplicaId, now_micros: u64, op: Op) -> Object {
        match (self, op) {
            (Object::Counter(c), Op::CounterAdd { amount }) => {
                Object::Counter(c.add(replica, amount))
            }
            (Object::Register(r), Op::RegisterSet { value }) => {
                Object::Register(r.write(replica, value))
            }
            (Object::LwwRegister(r), Op::LwwSet { value }) => {
                Object::LwwRegister(r.set(now_micros, replica, value))
            }
            (Object::Flag(f), Op::FlagEnable) => Object::Flag(f.enable(replica)),
            (Object::Flag(f), Op::FlagDisable) => Object::Flag(f.disable()),
            (Object::Set(s), Op::SetAdd { member }) => Object::Set(s.add(replica, member)),
            (Object::Set(s), Op::SetRemove { member }) => Object::Set(s.remove(&member)),
            (Object::RegisterMap(m), Op::MapSet { key, value }) => {
                Object::RegisterMap(m.update(key, |r| r.write(replica, value)))
            }
            (Object::SetMap(m), Op::MapAdd { key, member }) => {
                Object::SetMap(m.update(key, |s| s.add(replica, member)))
            }
            (Object::SetMap(m), Op::MapRemoveMember { key, member }) => {
                Object::SetMap(m.update(key, |s| s.remove(&member)))
            }
            (Object::FlagMap(m), Op::MapEnable { key }) => {
                Object::FlagMap(m.update(key, |f| f.enable(replica)))
            }
            (Object::FlagMap(m), Op::MapDisable { key }) => {
                Object::FlagMap(m.update(key, |f| f.disable()))
            }
            (Object::RegisterMap(m), Op::MapRemove { key }) => Object::RegisterMap(m.remove(&key)),
            (Object::SetMap(m), Op::MapRemove { key }) => Object::SetMap(m.remove(&key)),
            (Object::FlagMap(m), Op::MapRemove { key }) => Object::FlagMap(m.remove(&key)),
            (Object::Vector(v), Op::VectorAdd { offset, values }) => Object::Vector(
                v.add(replica, offset as usize, &values)
                    .expect("the op was checked against the vector limit"),
            ),
            (object, op) => unreachable!("{op:?} on a {} passed the type check", object.kind()),
        }
    }

    /// True when `op` applies to this object's type.
    pub(crate) fn accepts(&self, op: &Op) -> bool {
        match op.kind() {
            Some(kind) => kind == self.kind(),
            None => matches!(
                self.kind(),
                Kind::RegisterMap | Kind::SetMap | Kind::FlagMap
            ),
        }
    }

    /// Joins `other` in. Objects of different types created concurrently under one name: the
    /// greater type (in [`Kind`] order) wins on every replica, so all converge.
    pub(crate) fn join(&mut self, other: &Object) {
        match (&mut *self, other) {
            (Object::Counter(a), Object::Counter(b)) => a.join(b),
            (Object::Register(a), Object::Register(b)) => a.join(b),
            (Object::LwwRegister(a), Object::LwwRegister(b)) => a.join(b),
            (Object::Flag(a), Object::Flag(b)) => a.join(b),
            (Object::Set(a), Object::Set(b)) => a.join(b),
            (Object::RegisterMap(a), Object::RegisterMap(b)) => a.join(b),
            (Object::SetMap(a), Object::SetMap(b)) => a.join(b),
            (Object::FlagMap(a), Object::FlagMap(b)) => a.join(b),
            (Object::Vector(a), Object::Vector(b)) => a.join(b),
            (mine, theirs) => {
                if theirs.kind() > mine.kind() {
                    *mine = theirs.clone();
                }
            }
        }
    }

    /// Answers `query`; `name` is for the error message.
    pub fn read(&self, name: &str, query: &Query) -> Result<Value, StateError> {
        let wrong = |expected| StateError::TypeMismatch {
            object: name.to_string(),
            actual: self.kind(),
            expected,
        };
        Ok(match (self, query) {
            (Object::Counter(c), Query::Value) => {
                Value::Int(c.value().clamp(i64::MIN as i128, i64::MAX as i128) as i64)
            }
            (Object::Register(r), Query::Value) => register_value(r),
            (Object::LwwRegister(r), Query::Value) => {
                Value::Strings(r.get().into_iter().cloned().collect())
            }
            (Object::Flag(f), Query::Value) => flag_value(f),
            (Object::Set(s), Query::Value) => set_value(s),
            (Object::Set(s), Query::Contains { member }) => Value::Bool(s.contains(member)),
            (Object::RegisterMap(m), Query::Value) => map_value(m, register_value),
            (Object::SetMap(m), Query::Value) => map_value(m, set_value),
            (Object::FlagMap(m), Query::Value) => map_value(m, flag_value),
            (Object::RegisterMap(m), Query::MapGet { key }) => {
                m.get(key).map_or(Value::Absent, |r| register_value(&r))
            }
            (Object::SetMap(m), Query::MapGet { key }) => {
                m.get(key).map_or(Value::Absent, |s| set_value(&s))
            }
            (Object::FlagMap(m), Query::MapGet { key }) => {
                m.get(key).map_or(Value::Absent, |f| flag_value(&f))
            }
            (
                Object::RegisterMap(m),
                Query::MapPage {
                    start,
                    stop,
                    reverse,
                },
            ) => map_page(m, *start, *stop, *reverse, register_value)?,
            (
                Object::SetMap(m),
                Query::MapPage {
                    start,
                    stop,
                    reverse,
                },
            ) => map_page(m, *start, *stop, *reverse, set_value)?,
            (
                Object::FlagMap(m),
                Query::MapPage {
                    start,
                    stop,
                    reverse,
                },
            ) => map_page(m, *start, *stop, *reverse, flag_value)?,
            (Object::RegisterMap(m), Query::MapKeys) => Value::Strings(m.keys().cloned().collect()),
            (Object::SetMap(m), Query::MapKeys) => Value::Strings(m.keys().cloned().collect()),
            (Object::FlagMap(m), Query::MapKeys) => Value::Strings(m.keys().cloned().collect()),
            (Object::Vector(v), Query::Value) => Value::Numbers(v.get(0, v.len())),
            (Object::Vector(v), Query::VectorRange { offset, len }) => {
                if *len > 16 << 20 {
                    return Err(StateError::TooLarge(format!(
                        "a range of {len} elements is more than one read returns (16Mi)"
                    )));
                }
                Value::Numbers(v.get(*offset as usize, *len as usize))
            }
            (Object::Vector(v), Query::VectorSum { offset, len }) => {
                let len = len.unwrap_or((v.len() as u64).saturating_sub(*offset));
                Value::Number(v.sum(*offset as usize, len as usize))
            }
            (_, Query::Contains { .. }) => return Err(wrong(Kind::Set)),
            (_, Query::MapGet { .. } | Query::MapKeys | Query::MapPage { .. }) => {
                return Err(wrong(Kind::RegisterMap));
            }
            (_, Query::VectorRange { .. } | Query::VectorSum { .. }) => {
                return Err(wrong(Kind::Vector));
            }
        })
    }
}

/// The most entries one page holds.
pub const MAX_PAGE: u64 = 10_000;

/// A page's bounds as indices, checked: `start <= stop`, at most [`MAX_PAGE`] entries.
fn page_bounds(start: u64, stop: u64) -> Result<(usize, usize), StateError> {
    if start > stop {
        return Err(StateError::Invalid(format!(
            "a page's start ({start}) is past its stop ({stop})"
        )));
    }
    if stop - start > MAX_PAGE {
        return Err(StateError::TooLarge(format!(
            "a page of {} entries is more than one read returns ({MAX_PAGE})",
            stop - start
        )));
    }
    let index = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok((index(start), index(stop)))
}

/// Entries `start..stop` of `map` in key order (from the greatest key when `reverse`).
fn map_page<V: baton_crdt::CausalValue>(
    map: &OrMap<String, V>,
    start: u64,
    stop: u64,
    reverse: bool,
    each: fn(&V) -> Value,
) -> Result<Value, StateError> {
    let (start, stop) = page_bounds(start, stop)?;
    Ok(Value::Map(
        map.page(start, stop, reverse)
            .into_iter()
            .map(|(k, v)| (k.clone(), each(&v)))
            .collect(),
    ))
}

/// A register as read: its values (several when written concurrently).
fn register_value(register: &MvRegister<String>) -> Value {
    Value::Strings(register.values().into_iter().cloned().collect())
}

/// A set as read: its members.
fn set_value(set: &AwSet<String>) -> Value {
    Value::Strings(set.members().cloned().collect())
}

/// A flag as read.
fn flag_value(flag: &EwFlag) -> Value {
    Value::Bool(flag.value())
}

fn map_value<V: baton_crdt::CausalValue>(
    map: &OrMap<String, V>,
    each: impl Fn(&V) -> Value,
) -> Value {
    Value::Map(
        map.keys()
            .filter_map(|k| map.get(k).map(|v| (k.clone(), each(&v))))
            .collect(),
    )
}
