use crate::ArtifactStore;
use crate::artifacts::{sync_dir, tempfile_in};
use anyhow::Context;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components on disk, keyed by the component's SHA-256 and the engine's settings, so
/// a restart or a redeploy of the same bytes does not compile again.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// Caches under `dir`, creating it.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(CompileCache { dir: Some(dir) })
    }

    /// Compiles every time; for tests and benchmarks of compilation itself.
    pub fn disabled() -> Self {
        CompileCache { dir: None }
    }

    /// The cached compilation of `bytes`, or a fresh one that is then cached. A cache file that
    /// fails to load (another wasmtime, a torn write) is compiled over.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> anyhow::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, bytes).map_err(describe_compile_error);
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = format!(
            "{}-{:016x}.cwasm",
            ArtifactStore::digest(bytes).0,
            hasher.finish()
        );
        let path = dir.join(key);
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is in the file name) into Baton's own data directory, and
            // is replaced only by rename, so it is never seen half-written.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "discarding unusable compile cache entry")
                }
            }
        }
        let component = Component::new(engine, bytes).map_err(describe_compile_error)?;
        let serialized = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("serializing compiled component")?;
        let write = || -> std::io::Result<()> {
            let (temp_path, mut file) = tempfile_in(dir)?;
            file.write_all(&serialized)?;
            file.sync_all()?;
            std::fs::rename(temp_path, &path)?;
            sync_dir(dir)
        };
        if let Err(error) = write() {
            tracing::warn!(path = %path.display(), %error, "could not write compile cache entry");
        }
        Ok(component)
    }
}

fn describe_compile_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from(error).context("not a valid WebAssembly component")
}
