//! Builds the guest workspaces (`examples/`, `tests/guests/` and the social network's
//! `apps/socialnet/functions/`) for `wasm32-wasip2`, as
//! wasmtime's `test-programs/artifacts` does, so a fresh clone needs no extra step.
//!
//! The nested cargo gets its own target directory (`target/guests`): sharing the outer one
//! would deadlock on its lock.
use std::path::{Path, PathBuf};
use std::process::Command;

const WORKSPACES: [&str; 3] = ["examples", "tests/guests", "apps/socialnet/functions"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let target_dir = root.join("target").join("guests");
    for watched in [
        "examples",
        "tests/guests",
        "apps/socialnet",
        "crates/baton-sdk",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for workspace in WORKSPACES {
        let manifest = root.join(workspace).join("Cargo.toml");
        let mut command = Command::new(&cargo);
        // From the workspace's own directory, so its `.cargo/config.toml` (the social
        // network's initial memory) applies as it does to a build run there by hand.
        command
            .current_dir(root.join(workspace))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir);
        // The outer build's flags and wrappers (clippy, coverage, host RUSTFLAGS) are not for
        // the guests.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_PROFILE_RELEASE_DEBUG",
        ] {
            command.env_remove(var);
        }
        let status = command
            .status()
            .unwrap_or_else(|e| panic!("running {cargo} for {workspace}: {e}"));
        assert!(
            status.success(),
            "building the guests in {workspace} for wasm32-wasip2 failed; \
             the target comes from rust-toolchain.toml (rustup target add wasm32-wasip2)"
        );
    }
    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    let mut code = String::new();
    for name in [
        "hello",
        "echo",
        "json_transform",
        "counter",
        "allreduce",
        "misbehave",
        "busy",
        "config_reader",
        "kv_spin",
        "kv_wasmcloud",
        "blobstore_wasmcloud",
        "objects_sdk",
        "socialnet",
    ] {
        let path = wasm_dir.join(format!("{name}.wasm"));
        assert!(path.exists(), "guest {} was not built", path.display());
        let constant = name.to_uppercase();
        code.push_str(&format!(
            "/// Path of the built `{name}` component.\npub const {constant}_PATH: &str = {path:?};\n\
             /// Bytes of the built `{name}` component.\npub const {constant}: &[u8] = include_bytes!({path:?});\n",
            path = path.display().to_string()
        ));
    }
    std::fs::write(out, code).unwrap();
}

/// rustup installs `rust-toolchain.toml`'s targets only with the toolchain itself: a machine
/// that already had 1.95.0 lacks `wasm32-wasip2`. Add it then, so `cargo test` stays the one
/// command (a no-op where the target is present or rustup is absent).
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| dir.join("libstd").exists() || has_std(&dir));
    if installed {
        return;
    }
    let mut command = Command::new("rustup");
    command.args(["target", "add", "wasm32-wasip2"]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        command.args(["--toolchain", &toolchain]);
    }
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => println!("cargo:warning=rustup target add wasm32-wasip2 failed: {status}"),
        Err(e) => println!("cargo:warning=rustup not found to add wasm32-wasip2: {e}"),
    }
}

fn has_std(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}
