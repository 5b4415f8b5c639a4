//! Components from other toolchains: componentize-py (PyPI) and componentize-js (npm) build
//! the guests in `tests/polyglot/` (`tests/polyglot/build.sh` installs both, pinned, on first
//! use), and Baton runs them unchanged.

use crate::harness::{Node, Options};
use futures_util::future::join_all;
use serde_json::json;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Builds the polyglot guests once per test process; where they are.
fn polyglot_guests() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("polyglot");
        let status = std::process::Command::new(root.join("tests/polyglot/build.sh"))
            .arg(&out)
            .status()
            .expect("running tests/polyglot/build.sh");
        assert!(status.success(), "tests/polyglot/build.sh failed: {status}");
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn components_built_by_componentize_py_and_componentize_js_run() {
    let guests = polyglot_guests();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"), Options::default());
    for (name, file, language) in [
        ("hello-py", "hello-py.wasm", "python"),
        ("hello-js", "hello-js.wasm", "javascript"),
    ] {
        let bytes: &'static [u8] = std::fs::read(guests.join(file)).unwrap().leak();
        let reply = node.upload(name, bytes, json!({})).await;
        assert_eq!(reply.status, 201, "{name}: {}", reply.text());
        // Many instances at once, each its own copy of the interpreter's heap.
        let replies = join_all((0..16).map(|i| {
            let node = &node;
            async move { node.get(&format!("/function/{name}/path/{i}?q={i}")).await }
        }))
        .await;
        for (i, reply) in replies.iter().enumerate() {
            assert_eq!(
                (reply.status, reply.text()),
                (200, format!("hello from {language} at /path/{i}?q={i}\n")),
                "{name}"
            );
        }
    }
}
