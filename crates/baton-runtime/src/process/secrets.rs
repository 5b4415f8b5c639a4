//! A function's secrets as files, where OpenFaaS functions read them:
//! `/var/openfaas/secrets/<name>`.
//!
//! The node writes the values it was given for one prepared function into a directory of
//! its own (under the node's data directory, which sandboxes never see), owned by the
//! function's user and readable by it alone; an isolated sandbox sees that directory, read-only,
//! at [`MOUNT_POINT`] (see `isolation.rs`). The directory goes when the prepared function does
//! (a redeploy or a removal), so a changed secret reaches a function when it is redeployed.

use baton_api::{FunctionSpec, SecretValues};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where isolated functions find their secrets, as in OpenFaaS.
pub(crate) const MOUNT_POINT: &str = "/var/openfaas/secrets";
/// Where they find them on a node that cannot make [`MOUNT_POINT`] (in the sandbox's private
/// `/tmp`); `BATON_SECRETS_DIR` always says where.
pub(crate) const FALLBACK_MOUNT_POINT: &str = "/tmp/secrets";

/// One prepared function's secret files, removed when dropped.
#[derive(Debug)]
pub(crate) struct SecretFiles {
    dir: PathBuf,
}

impl SecretFiles {
    /// Writes the secrets `spec` lists from `values` into a new directory under `root`, owned
    /// by `owner` (the function's user; `None`: the node's). Every listed secret must have a
    /// value.
    pub(crate) fn write(
        root: &Path,
        spec: &FunctionSpec,
        values: &SecretValues,
        owner: Option<u32>,
    ) -> anyhow::Result<Option<SecretFiles>> {
        if spec.secrets.is_empty() {
            return Ok(None);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let dir = root.join(format!(
            "{}-{:016x}",
            spec.name.as_str(),
            crate::artifacts::rand_suffix()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let files = SecretFiles { dir };
        for name in &spec.secrets {
            let value = values.0.get(name).ok_or_else(|| {
                anyhow::anyhow!("secret {name:?} was not delivered with the function")
            })?;
            let path = files.dir.join(name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&path)?;
            io::Write::write_all(&mut file, value)?;
            chown(&path, owner)?;
        }
        // Listable by its owner only: 0500 once the files are in.
        std::fs::set_permissions(
            &files.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o500),
        )?;
        chown(&files.dir, owner)?;
        Ok(Some(files))
    }

    /// Removes what a node that died left under `root` (directories made read-only).
    pub(crate) fn remove_leftovers(root: &Path) {
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let _ = std::fs::set_permissions(
                entry.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            );
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }

    /// The directory on the node.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        // 0500 forbids removing its entries: open it up first.
        let _ = std::fs::set_permissions(
            &self.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chown(path: &Path, owner: Option<u32>) -> io::Result<()> {
    match owner {
        Some(uid) => std::os::unix::fs::chown(path, Some(uid), Some(uid)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::{FunctionName, ProcessMode, RuntimeSpec};
    use std::collections::BTreeMap;

    fn spec(secrets: &[&str]) -> FunctionSpec {
        let mut spec = FunctionSpec::new(
            FunctionName::new("f").unwrap(),
            RuntimeSpec::Process {
                command: vec!["true".into()],
                mode: ProcessMode::Classic,
                working_dir: None,
            },
        );
        spec.secrets = secrets.iter().map(|s| s.to_string()).collect();
        spec
    }

    #[test]
    fn listed_secrets_become_private_files_that_go_with_the_function() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let values = SecretValues(BTreeMap::from([
            ("api-key".to_string(), b"s3cr3t".to_vec()),
            ("other".to_string(), b"not listed".to_vec()),
        ]));
        let files = SecretFiles::write(root.path(), &spec(&["api-key"]), &values, None)
            .unwrap()
            .unwrap();
        let dir = files.dir().to_path_buf();
        assert_eq!(std::fs::read(dir.join("api-key")).unwrap(), b"s3cr3t");
        assert!(!dir.join("other").exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("api-key")), 0o400);
        assert_eq!(mode(&dir), 0o500);
        drop(files);
        assert!(!dir.exists());
        // Nothing listed, nothing written; a listed secret without a value is an error.
        assert!(
            SecretFiles::write(root.path(), &spec(&[]), &values, None)
                .unwrap()
                .is_none()
        );
        let missing = SecretFiles::write(root.path(), &spec(&["gone"]), &values, None).unwrap_err();
        assert!(missing.to_string().contains("gone"), "{missing}");
    }
}
