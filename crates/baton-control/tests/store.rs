//! The store contract, run against redb (Redis joins with cluster mode).

use baton_api::{FunctionName, FunctionSpec, ProcessMode, RuntimeSpec};
use baton_control::{RedbStore, Registration, Store};

fn registration(name: &str, version: u64) -> Registration {
    Registration {
        spec: FunctionSpec {
            name: FunctionName::new(name).unwrap(),
            runtime: RuntimeSpec::Process {
                command: vec!["cat".into()],
                mode: ProcessMode::Classic,
                working_dir: None,
            },
            env: Default::default(),
            limits: Default::default(),
            scaling: Default::default(),
            labels: Default::default(),
            annotations: Default::default(),
            image: String::new(),
        },
        version,
        created_at_ms: 1,
        updated_at_ms: version,
    }
}

#[tokio::test]
async fn writes_survive_reopening_and_deletes_stick() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        store.put(&registration("a", 1)).await.unwrap();
        store.put(&registration("b", 1)).await.unwrap();
        store.put(&registration("a", 2)).await.unwrap();
        store.delete("b").await.unwrap();
        store.delete("never-existed").await.unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    let all = store.list().await.unwrap();
    assert_eq!(all, vec![registration("a", 2)]);
}
