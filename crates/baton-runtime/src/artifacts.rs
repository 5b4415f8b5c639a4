use baton_api::ArtifactDigest;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Content-addressed storage of deployed artifacts (wasm components), so a registration never
/// depends on the file the user deployed from still being there.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

impl ArtifactStore {
    /// Stores artifacts under `dir`, creating it.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactStore { dir })
    }

    /// The SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> ArtifactDigest {
        ArtifactDigest(hex::encode(Sha256::digest(bytes)))
    }

    /// Writes `bytes` durably (fsync, then rename) and returns their digest; storing the same
    /// bytes twice is a no-op.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<ArtifactDigest> {
        let digest = Self::digest(bytes);
        let path = self.path(&digest);
        if path.exists() {
            return Ok(digest);
        }
        let mut temp = tempfile_in(&self.dir)?;
        temp.1.write_all(bytes)?;
        temp.1.sync_all()?;
        std::fs::rename(&temp.0, &path)?;
        sync_dir(&self.dir)?;
        Ok(digest)
    }

    /// Reads the artifact named `digest`.
    pub fn get(&self, digest: &ArtifactDigest) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(digest))
    }

    /// Removes what a crash left behind: temporary files, and artifacts whose digest is not in
    /// `in_use`. Returns how many files went. Call it before serving, when no deploy runs.
    pub fn sweep(&self, in_use: &std::collections::HashSet<String>) -> usize {
        sweep_dir(&self.dir, |name| {
            name.strip_suffix(".wasm")
                .is_some_and(|digest| in_use.contains(digest))
        })
    }

    /// Where the artifact named `digest` lives.
    pub fn path(&self, digest: &ArtifactDigest) -> PathBuf {
        self.dir.join(format!("{}.wasm", digest.0))
    }
}

/// Deletes the files of `dir` that are temporary (`.tmp-*`) or that `keep` does not want;
/// returns how many it deleted.
pub(crate) fn sweep_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file
            && (name.starts_with(".tmp-") || !keep(&name))
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::info!(file = %entry.path().display(), "removed an orphan");
            removed += 1;
        }
    }
    removed
}

/// A uniquely named temporary file in `dir`, for write-then-rename.
pub(crate) fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(".tmp-{}-{:x}", std::process::id(), rand_suffix()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

/// A random number for the name of a file or directory that must not collide.
pub(crate) fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_content_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let a = store.put(b"component bytes").unwrap();
        assert_eq!(store.put(b"component bytes").unwrap(), a);
        assert_eq!(store.get(&a).unwrap(), b"component bytes");
        assert_ne!(store.put(b"other").unwrap(), a);
        assert_eq!(a.0.len(), 64);
    }
}
