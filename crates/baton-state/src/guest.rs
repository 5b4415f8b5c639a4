//! The host side of the WIT interface `baton:platform/state` (in `wit/state.wit`): wasm
//! functions reach this node's agent through it, in their namespace.

use crate::{Agent, ObjectKey, StateError};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

mod bindings {
    #![allow(
        missing_docs,
        reason = "generated from wit/state.wit, which documents it"
    )]
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "baton:platform/function",
        imports: { default: async },
    });
}

use bindings::baton::platform::state as wit;

/// Most changes in one `apply-all` (the WIT documents it).
const MAX_BATCH: usize = 10_000;

/// What one instance's calls need: the agent (absent when the node runs none) and the
/// namespace its objects live in.
pub struct GuestState {
    agent: Option<Agent>,
    namespace: Arc<str>,
}

impl GuestState {
    /// State access for an instance of a function in `namespace`.
    pub fn new(agent: Option<Agent>, namespace: Arc<str>) -> Self {
        GuestState { agent, namespace }
    }

    /// The namespace's key-value buckets, as `wasi:keyvalue` serves them.
    pub fn key_value(&self) -> Result<crate::kv::KeyValue, crate::kv::KvError> {
        let agent = self
            .agent
            .clone()
            .ok_or_else(|| crate::kv::KvError::Other("this node runs no state agent".into()))?;
        Ok(crate::kv::KeyValue::new(agent, self.namespace.clone()))
    }

    fn agent(&self, object: &str) -> Result<(&Agent, ObjectKey), StateError> {
        let agent = self
            .agent
            .as_ref()
            .ok_or_else(|| StateError::Unavailable("this node runs no state agent".into()))?;
        Ok((agent, ObjectKey::new(&self.namespace, object)?))
    }
}

struct StateData;

impl HasData for StateData {
    type Data<'a> = &'a mut GuestState;
}

/// Adds `baton:platform/state` to `linker`; `get` finds an instance's [`GuestState`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut GuestState,
) -> anyhow::Result<()> {
    wit::add_to_linker::<T, StateData>(linker, get)?;
    Ok(())
}

impl From<StateError> for wit::Error {
    fn from(error: StateError) -> Self {
        let message = error.to_string();
        match error {
            StateError::Invalid(_) => wit::Error::Invalid(message),
            StateError::NotFound(_) => wit::Error::NotFound(message),
            StateError::TypeMismatch { .. } => wit::Error::TypeMismatch(message),
            StateError::TooLarge(_) => wit::Error::TooLarge(message),
            StateError::Unavailable(_) => wit::Error::Unavailable(message),
            // Guests reach only their own namespace; these come from the HTTP API alone.
            StateError::Unauthorized | StateError::Forbidden(_) => wit::Error::Invalid(message),
        }
    }
}

fn op(op: wit::Op) -> crate::Op {
    use crate::Op as O;
    match op {
        wit::Op::CounterAdd(amount) => O::CounterAdd { amount },
        wit::Op::RegisterSet(value) => O::RegisterSet { value },
        wit::Op::LwwSet(value) => O::LwwSet { value },
        wit::Op::FlagEnable => O::FlagEnable,
        wit::Op::FlagDisable => O::FlagDisable,
        wit::Op::SetAdd(member) => O::SetAdd { member },
        wit::Op::SetRemove(member) => O::SetRemove { member },
        wit::Op::MapSet((key, value)) => O::MapSet { key, value },
        wit::Op::MapAdd((key, member)) => O::MapAdd { key, member },
        wit::Op::MapRemoveMember((key, member)) => O::MapRemoveMember { key, member },
        wit::Op::MapEnable(key) => O::MapEnable { key },
        wit::Op::MapDisable(key) => O::MapDisable { key },
        wit::Op::MapRemove(key) => O::MapRemove { key },
        wit::Op::VectorAdd(slice) => O::VectorAdd {
            offset: slice.offset,
            values: slice.values,
        },
    }
}

fn query(query: wit::Query) -> crate::Query {
    use crate::Query as Q;
    match query {
        wit::Query::Whole => Q::Value,
        wit::Query::Contains(member) => Q::Contains { member },
        wit::Query::MapGet(key) => Q::MapGet { key },
        wit::Query::MapKeys => Q::MapKeys,
        wit::Query::VectorRange((offset, len)) => Q::VectorRange { offset, len },
        wit::Query::VectorSum((offset, len)) => Q::VectorSum { offset, len },
    }
}

fn strings(value: crate::Value) -> Vec<String> {
    use crate::Value as V;
    match value {
        V::Int(n) => vec![n.to_string()],
        V::Bool(b) => vec![b.to_string()],
        V::Strings(s) => s,
        V::Numbers(n) => n.iter().map(f64::to_string).collect(),
        V::Number(n) => vec![n.to_string()],
        V::Map(m) => m.into_keys().collect(),
        V::Absent => Vec::new(),
    }
}

fn reading(value: crate::Value) -> wit::Reading {
    use crate::Value as V;
    match value {
        V::Int(n) => wit::Reading::Int(n),
        V::Bool(b) => wit::Reading::Boolean(b),
        V::Strings(s) => wit::Reading::Strings(s),
        V::Numbers(n) => wit::Reading::Numbers(n),
        V::Number(n) => wit::Reading::Number(n),
        V::Map(m) => wit::Reading::Entries(
            m.into_iter()
                .map(|(key, value)| wit::MapEntry {
                    key,
                    values: strings(value),
                })
                .collect(),
        ),
        V::Absent => wit::Reading::Absent,
    }
}

impl wit::Host for GuestState {
    async fn apply(&mut self, object: String, change: wit::Op) -> Result<u64, wit::Error> {
        let (agent, key) = self.agent(&object)?;
        let durability = agent.default_durability();
        Ok(agent.apply(&key, op(change), durability).await?)
    }

    async fn apply_all(&mut self, changes: Vec<wit::Change>) -> Vec<Result<u64, wit::Error>> {
        if changes.len() > MAX_BATCH {
            let error = wit::Error::TooLarge(format!(
                "a batch of {} changes exceeds {MAX_BATCH}",
                changes.len()
            ));
            return vec![Err(error); changes.len()];
        }
        let agent = match self.agent.clone() {
            Some(agent) => agent,
            None => {
                let error = StateError::Unavailable("this node runs no state agent".into());
                return vec![Err(error.into()); changes.len()];
            }
        };
        // Changes with a bad object name fail alone; the rest go in one batch, in order.
        let mut results: Vec<Option<Result<u64, wit::Error>>> = Vec::with_capacity(changes.len());
        let mut ops = Vec::with_capacity(changes.len());
        for change in changes {
            match ObjectKey::new(&self.namespace, &change.object) {
                Ok(key) => {
                    ops.push((key, op(change.op)));
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error.into()))),
            }
        }
        let durability = agent.default_durability();
        let mut applied = agent.apply_all(ops, durability).await.into_iter();
        results
            .into_iter()
            .map(|result| match result {
                Some(refused) => refused,
                None => applied
                    .next()
                    .expect("one result per operation")
                    .map_err(Into::into),
            })
            .collect()
    }

    async fn read(&mut self, object: String, q: wit::Query) -> Result<wit::Reading, wit::Error> {
        let (agent, key) = self.agent(&object)?;
        Ok(reading(agent.read(&key, &query(q))?.value))
    }

    async fn read_page(
        &mut self,
        object: String,
        page: wit::Page,
    ) -> Result<Vec<wit::MapEntry>, wit::Error> {
        let (agent, key) = self.agent(&object)?;
        let query = crate::Query::MapPage {
            start: page.start,
            stop: page.stop,
            reverse: page.reverse,
        };
        let entries = match agent.read(&key, &query) {
            Ok(reading) => match reading.value {
                crate::Value::Map(entries) => entries,
                _ => unreachable!("a page query reads a map"),
            },
            Err(crate::StateError::NotFound(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let entry = |(key, value)| wit::MapEntry {
            key,
            values: strings(value),
        };
        // The page comes as a range of keys; its order is the page's.
        Ok(match page.reverse {
            true => entries.into_iter().rev().map(entry).collect(),
            false => entries.into_iter().map(entry).collect(),
        })
    }

    async fn delete(&mut self, object: String) -> Result<bool, wit::Error> {
        let (agent, key) = self.agent(&object)?;
        let durability = agent.default_durability();
        Ok(agent.delete(&key, durability).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, Limits, Query, StateMetrics, Value};
    use wit::Host as _;

    fn set(object: &str, key: &str) -> wit::Change {
        wit::Change {
            object: object.into(),
            op: wit::Op::MapSet((key.into(), "1".into())),
        }
    }

    /// A batch applies in order; a change with a bad name or of the wrong type fails alone,
    /// in its place; one over the limit is refused whole.
    #[tokio::test]
    async fn a_batch_applies_each_change_in_order_and_refuses_only_the_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::open(
            &dir.path().join("state.redb"),
            Limits::default(),
            Durability::Async,
            StateMetrics::default(),
        )
        .unwrap();
        let mut guest = GuestState::new(Some(agent.clone()), "app".into());
        guest
            .apply("c".into(), wit::Op::CounterAdd(1))
            .await
            .unwrap();
        let results = guest
            .apply_all(vec![
                set("home/a", "k1"),
                set("", "k1"),
                set("c", "k1"),
                set("home/a", "k2"),
                set("home/b", "k1"),
            ])
            .await;
        assert!(matches!(results[0], Ok(1)));
        assert!(matches!(results[1], Err(wit::Error::Invalid(_))));
        assert!(matches!(results[2], Err(wit::Error::TypeMismatch(_))));
        assert!(matches!(results[3], Ok(2)), "the second change to one map");
        assert!(matches!(results[4], Ok(1)));
        let keys = |name: &str| {
            let key = ObjectKey::new("app", name).unwrap();
            agent.read(&key, &Query::MapKeys).unwrap().value
        };
        assert_eq!(
            keys("home/a"),
            Value::Strings(vec!["k1".into(), "k2".into()])
        );
        assert_eq!(keys("home/b"), Value::Strings(vec!["k1".into()]));

        let too_many = vec![set("home/c", "k"); MAX_BATCH + 1];
        let results = guest.apply_all(too_many).await;
        assert_eq!(results.len(), MAX_BATCH + 1);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(wit::Error::TooLarge(_))))
        );
        let missing = ObjectKey::new("app", "home/c").unwrap();
        assert!(agent.read(&missing, &Query::MapKeys).is_err());
    }
}
