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
///
/// A compiled file is native code the node runs without further checks, so the cache trusts
/// only what it wrote itself: the directory is private to the node's user (0700) and each
/// file has a keyed hash (HMAC-SHA256 under a key made at first start, kept in the directory
/// with mode 0600) beside it; a file whose hash does not match is compiled over, and logged.
#[derive(Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    key: [u8; 32],
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache")
            .field("dir", &self.dir)
            .finish()
    }
}

/// The key's file name inside the cache directory.
const KEY_FILE: &str = "cache.key";

impl CompileCache {
    /// Caches under `dir`, creating it private to this user, with its key.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let key = load_or_make_key(&dir)?;
        Ok(CompileCache {
            dir: Some(dir),
            key,
        })
    }

    /// Compiles every time; for tests and benchmarks of compilation itself.
    pub fn disabled() -> Self {
        CompileCache {
            dir: None,
            key: [0; 32],
        }
    }

    /// Removes temporary files and the compilations of components not in `in_use` (by
    /// digest). Returns how many files went. Call it before serving.
    pub fn sweep(&self, in_use: &std::collections::HashSet<String>) -> usize {
        let Some(dir) = &self.dir else { return 0 };
        crate::artifacts::sweep_dir(dir, |name| {
            name == KEY_FILE
                || name
                    .split_once('-')
                    .is_some_and(|(digest, _)| in_use.contains(digest))
        })
    }

    fn mac(&self, bytes: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(bytes);
        mac
    }

    /// The cached file's bytes when its keyed hash is the one this node wrote.
    fn verified(&self, path: &std::path::Path) -> Option<Vec<u8>> {
        let bytes = std::fs::read(path).ok()?;
        let expected = std::fs::read(mac_path(path)).ok()?;
        // verify_slice compares in constant time.
        if hmac::Mac::verify_slice(self.mac(&bytes), &expected).is_ok() {
            Some(bytes)
        } else {
            tracing::warn!(path = %path.display(), "compile cache entry fails its keyed hash; compiling again");
            None
        }
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
        if let Some(compiled) = path.exists().then(|| self.verified(&path)).flatten() {
            // SAFETY: these bytes carry the keyed hash only this node can make, over exactly
            // these bytes: they are what `Component::serialize` of an engine with the same
            // compatibility hash (it is in the file name) wrote.
            match unsafe { Component::deserialize(engine, &compiled) } {
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
        let mac = hmac::Mac::finalize(self.mac(&serialized)).into_bytes();
        let write = || -> std::io::Result<()> {
            // The hash first: a crash between the two renames leaves a file that fails its
            // check and is compiled again, never a file trusted without one.
            for (target, bytes) in [(mac_path(&path), &mac[..]), (path.clone(), &serialized[..])] {
                let (temp_path, mut file) = tempfile_in(dir)?;
                file.write_all(bytes)?;
                file.sync_all()?;
                std::fs::rename(temp_path, target)?;
            }
            sync_dir(dir)
        };
        if let Err(error) = write() {
            tracing::warn!(path = %path.display(), %error, "could not write compile cache entry");
        }
        Ok(component)
    }
}

fn mac_path(path: &std::path::Path) -> PathBuf {
    path.with_extension("cwasm.mac")
}

fn load_or_make_key(dir: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    // A key that could not be read from the system's random source would be guessable:
    // failing to open the cache is better.
    let mut key = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
    let (temp_path, mut file) = tempfile_in(dir)?;
    std::fs::set_permissions(
        &temp_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    file.write_all(&key)?;
    file.sync_all()?;
    std::fs::rename(temp_path, &path)?;
    Ok(key)
}

fn describe_compile_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from(error).context("not a valid WebAssembly component")
}
