//! Starting Baton's roles as processes, for the integration tests and the benchmarks alike.
//!
//! Each process is started with a ready file (`BATON_READY_FILE`): the harness waits for the
//! file (every address the process serves, written once its listeners are bound), then for
//! `GET /healthz` to answer 200 where it serves HTTP. No stdout is parsed and nothing sleeps
//! a fixed time: it waits on those two conditions, under one deadline, and fails at once if
//! the process exits first. The process is killed when its [`Process`] is dropped.
//!
//! Synchronous on purpose: tests start nodes from plain and async tests alike, and a start
//! takes milliseconds of polling.

use anyhow::{Context, bail};
use baton_api::ready::Ready;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a role may take to get ready: a deadline against hangs (a cold compile of the
/// examples on a loaded machine takes seconds), not a performance bound.
pub const START_DEADLINE: Duration = Duration::from_secs(120);

/// How often the ready file and `/healthz` are looked at.
const POLL: Duration = Duration::from_millis(2);

/// A started role; killed (and reaped) when dropped.
pub struct Process {
    child: Child,
    ready: Ready,
    ready_file: PathBuf,
}

impl Process {
    /// Starts `command` with a ready file in `dir` and waits until it is ready; its stdout
    /// is discarded (stderr, the logs, is left as the caller set it).
    pub fn start(mut command: Command, dir: &std::path::Path) -> anyhow::Result<Process> {
        let ready_file = dir.join(format!("ready-{:016x}.json", fastrand::u64(..)));
        let what = format!("{command:?}");
        command
            .env("BATON_READY_FILE", &ready_file)
            .stdout(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let mut process = Process {
            child,
            ready: Ready::default(),
            ready_file,
        };
        process.ready = process.wait_ready(&what)?;
        Ok(process)
    }

    /// [`Process::start`] from async code: the waiting runs on a blocking thread.
    pub async fn start_async(command: Command, dir: &std::path::Path) -> anyhow::Result<Process> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Process::start(command, &dir)).await?
    }

    fn wait_ready(&mut self, what: &str) -> anyhow::Result<Ready> {
        let deadline = Instant::now() + START_DEADLINE;
        let ready = loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{what} exited with {status} before it was ready");
            }
            if let Some(ready) = Ready::read(&self.ready_file)? {
                break ready;
            }
            if Instant::now() > deadline {
                bail!("{what} was not ready within {START_DEADLINE:?}");
            }
            std::thread::sleep(POLL);
        };
        if let Some(url) = &ready.http {
            loop {
                if healthy(url) {
                    break;
                }
                if let Some(status) = self.child.try_wait()? {
                    bail!("{what} exited with {status} before /healthz answered");
                }
                if Instant::now() > deadline {
                    bail!("{what}: {url}/healthz did not answer 200 within {START_DEADLINE:?}");
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(ready)
    }

    /// Where the process serves what.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// The HTTP API's base URL (`baton up`, gateways); empty for other roles.
    pub fn url(&self) -> String {
        self.ready.http.clone().unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and reaps it if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// `kill -9`, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.ready_file);
    }
}

/// Whether `GET {url}/healthz` answers 200 (plain HTTP/1.1 over a socket: the harness needs
/// no client stack of its own).
pub fn healthy(url: &str) -> bool {
    let Some(address) = url.strip_prefix("http://") else {
        return false;
    };
    let address = address.trim_end_matches('/');
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_exits_before_it_is_ready_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "exit 3"]);
        // "exited", not "not ready within": it did not wait for the deadline.
        let error = Process::start(command, dir.path()).err().unwrap();
        assert!(error.to_string().contains("exited"), "{error}");
    }

    #[test]
    fn a_process_is_ready_once_its_file_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            r#"printf '{"role":"control","grpc":"grpc://127.0.0.1:1"}' > "$BATON_READY_FILE.tmp" && mv "$BATON_READY_FILE.tmp" "$BATON_READY_FILE" && exec sleep 60"#,
        ]);
        let mut process = Process::start(command, dir.path()).unwrap();
        assert_eq!(process.ready().grpc.as_deref(), Some("grpc://127.0.0.1:1"));
        assert!(!process.exited());
        process.kill();
        assert!(process.exited());
    }

    #[test]
    fn nothing_listening_is_not_healthy() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!healthy(&format!("http://127.0.0.1:{port}")));
        assert!(!healthy("https://example.com"));
    }
}
