//! The node's admin token when the operator sets none: made at first start, kept in the data
//! directory with mode 0600, and read by the CLI on the same machine, so the admin API is
//! never open by default (as a Jupyter server or the OpenFaaS gateway's generated password).

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The token file's name in the data directory.
pub const TOKEN_FILE: &str = "admin-token";

/// The token file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Reads the node's token from `data_dir`, or makes one (256 random bits) and writes it
/// there, readable by the owner only.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<String> {
    let file = path(data_dir);
    if let Some(token) = read(data_dir) {
        return Ok(token);
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let temporary = data_dir.join(format!(".tmp-{TOKEN_FILE}"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    out.write_all(token.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&temporary, &file).with_context(|| format!("writing {}", file.display()))?;
    Ok(token)
}

/// The token kept in `data_dir`, if there is one.
pub fn read(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(path(data_dir))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
