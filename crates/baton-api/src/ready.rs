//! The ready file: where a started `baton` process says, once its listeners are bound, what
//! it serves and where (`--ready-file` / `BATON_READY_FILE`).
//!
//! Scripts and the test harness start roles on port 0 and read their addresses here rather
//! than parsing log or stdout lines, whose wording is for people. The file is written whole
//! (a temporary file renamed into place), so a reader that sees it sees all of it.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What one process serves. Fields a role does not have are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// `up`, `control`, `gateway` or `worker`.
    pub role: String,
    /// The HTTP API (`baton up`, gateways): `http://host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// The control plane's gRPC address: `grpc://host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// The node-local platform API (`BATON_API`) of the process's state agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_api: Option<String>,
    /// Where the state agent takes replication peers (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_peers: Option<String>,
    /// The federation listener of a site (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<String>,
    /// The site's id in its federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The workers of a `baton worker` process (one per `--count`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<ReadyWorker>,
}

/// One worker of a `baton worker` process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadyWorker {
    /// Its id at the control plane.
    pub id: String,
    /// Its gRPC address (`host:port`).
    pub grpc: String,
    /// Where gateways send it requests (`host:port`).
    pub data: String,
}

impl Ready {
    /// Writes the file at `path` whole: a reader sees all of it or nothing.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let json = serde_json::to_vec_pretty(self).expect("ready files serialize");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// Reads a ready file; `None` while it does not exist yet.
    pub fn read(path: &Path) -> std::io::Result<Option<Ready>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_file_reads_back_as_written_and_is_absent_until_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        assert_eq!(Ready::read(&path).unwrap(), None);
        let ready = Ready {
            role: "worker".into(),
            state_api: Some("http://127.0.0.1:1".into()),
            workers: vec![ReadyWorker {
                id: "w1".into(),
                grpc: "127.0.0.1:2".into(),
                data: "127.0.0.1:3".into(),
            }],
            ..Ready::default()
        };
        ready.write(&path).unwrap();
        assert_eq!(Ready::read(&path).unwrap(), Some(ready));
        std::fs::write(&path, "{").unwrap();
        assert!(
            Ready::read(&path).is_err(),
            "a torn file is an error, not absent"
        );
    }
}
