use super::command::{CommandTemplate, kill_group};
use super::output::read_bounded;
use crate::{InvokeError, LogSink, LogStream, Request, Response, Sandbox};
use async_trait::async_trait;
use bytes::Bytes;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Bytes of stderr kept per invocation.
const STDERR_LIMIT: u64 = 64 * 1024;

/// A classic-mode function: a process per request.
pub(crate) struct ClassicFunction {
    template: Arc<CommandTemplate>,
}

impl ClassicFunction {
    pub(crate) fn new(template: Arc<CommandTemplate>) -> Self {
        ClassicFunction { template }
    }

    pub(crate) async fn sandbox(&self, logs: LogSink) -> Result<ClassicSandbox, InvokeError> {
        let network = self.template.network().await.map_err(|e| {
            InvokeError::SandboxFailed(format!("making the sandbox's network: {e}"))
        })?;
        let sandbox = ClassicSandbox {
            template: self.template.clone(),
            logs,
            ahead: std::sync::Mutex::new(None),
            network,
        };
        sandbox.start_ahead();
        Ok(sandbox)
    }
}

/// A classic sandbox: a handle whose requests each run a process. With a launcher it keeps
/// one process started ahead, waiting in its sandbox for the next request's environment
/// (see `launch.rs`), so a request pays only the function's own start.
pub(crate) struct ClassicSandbox {
    template: Arc<CommandTemplate>,
    logs: LogSink,
    ahead: std::sync::Mutex<Option<Started>>,
    /// Its network, where it has its own; declared last, so it goes after the processes.
    network: Option<super::network::Network>,
}

/// A started process and its control groups; the process goes first (killed if still
/// running), then its groups.
struct Started {
    child: tokio::process::Child,
    _groups: super::cgroup::SandboxGroups,
}

impl ClassicSandbox {
    /// Starts a process with `env` added; with `env_on_stdin`, it waits for more on stdin.
    fn start(&self, env_on_stdin: bool, env: Vec<(String, String)>) -> std::io::Result<Started> {
        let mut command = self
            .template
            .command_for(env_on_stdin, self.network.as_ref());
        command
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn()?;
        let groups = self.template.groups(child.id());
        Ok(Started {
            child,
            _groups: groups,
        })
    }

    /// Starts the next request's process ahead, where processes start from the launcher.
    fn start_ahead(&self) {
        if !self.template.has_launcher() {
            return;
        }
        match self.start(true, Vec::new()) {
            Ok(started) => *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(started),
            Err(error) => self.logs.push_text(
                LogStream::Platform,
                format!("could not start a process ahead of requests: {error}").as_bytes(),
            ),
        }
    }

    /// The process for a request, and what to write to its stdin before the body: the one
    /// started ahead, or a new one. The caller starts the next one ahead once this one has
    /// its input, off the request's own start.
    fn process_for(&self, env: Vec<(String, String)>) -> std::io::Result<(Started, Vec<u8>)> {
        let ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut started) = ahead
            && matches!(started.child.try_wait(), Ok(None))
        {
            return Ok((started, super::launch::encode_env(&env)));
        }
        Ok((self.start(false, env)?, Vec::new()))
    }
}

/// The CGI-style variables of the OpenFaaS classic watchdog: `Http_Method`, `Http_Path`,
/// `Http_Query`, and `Http_<Header>` with the header name in Go's canonical form, `-` as `_`.
fn cgi_environment(request: &Request) -> Vec<(String, String)> {
    let mut env = vec![
        ("Http_Method".to_owned(), request.method().to_string()),
        ("Http_Path".to_owned(), request.uri().path().to_owned()),
        (
            "Http_Query".to_owned(),
            request.uri().query().unwrap_or_default().to_owned(),
        ),
        (
            "Http_ContentLength".to_owned(),
            request.body().len().to_string(),
        ),
    ];
    for (name, value) in request.headers() {
        let Ok(value) = value.to_str() else { continue };
        let canonical: Vec<String> = name
            .as_str()
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        env.push((format!("Http_{}", canonical.join("_")), value.to_owned()));
    }
    env
}

#[async_trait]
impl Sandbox for ClassicSandbox {
    async fn invoke(&self, request: Request) -> Result<Response, InvokeError> {
        let template = &self.template;
        let (started, prefix) = self.process_for(cgi_environment(&request)).map_err(|e| {
            InvokeError::SandboxFailed(format!("could not start the function's process: {e}"))
        })?;
        // The child is dropped first (killed if this invocation is abandoned), then its groups.
        let Started {
            child,
            _groups: sandbox_groups,
        } = started;
        let mut child = child;
        let pid = child.id();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_group(pid, libc::SIGKILL);
            return Err(InvokeError::SandboxFailed(
                "process pipes unavailable".into(),
            ));
        };
        let body = request.into_body();
        let input_bytes = body.len() as u64;
        tokio::spawn(async move {
            // A process that does not read its input closes the pipe early; that is its choice.
            if stdin.write_all(&prefix).await.is_ok() {
                let _ = stdin.write_all(&body).await;
            }
        });
        self.start_ahead();
        let max_output = template.max_output;
        let run = async {
            let stdout = async {
                let read = read_bounded(stdout, max_output).await;
                if matches!(read, Ok(Err(()))) {
                    kill_group(pid, libc::SIGKILL);
                }
                read
            };
            let (stdout, stderr) = tokio::join!(stdout, read_bounded(stderr, STDERR_LIMIT));
            let status = child.wait().await;
            (stdout, stderr, status)
        };
        let Ok((stdout, stderr, status)) = tokio::time::timeout(template.timeout, run).await else {
            kill_group(pid, libc::SIGKILL);
            self.logs.push_text(
                LogStream::Platform,
                b"invocation timed out; process group killed",
            );
            return Err(InvokeError::Timeout(template.timeout));
        };
        let failed = |e: std::io::Error| {
            InvokeError::SandboxFailed(format!("reading the function's output: {e}"))
        };
        let stderr = stderr
            .map_err(failed)?
            .unwrap_or_else(|()| b"[stderr cut]".to_vec());
        self.logs.push_text(LogStream::Stderr, &stderr);
        let Ok(stdout) = stdout.map_err(failed)? else {
            return Err(InvokeError::OutputTooLarge(max_output));
        };
        let status = status.map_err(failed)?;
        // The process has exited and its group is still there: the group's peak is the run's.
        if let (Some(model), Some(peak)) = (&template.memory_model, sandbox_groups.probe().peak()) {
            model.observe(input_bytes, peak);
        }
        if !status.success() {
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            let mut output = String::from_utf8_lossy(&stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&stderr));
            return Err(InvokeError::ExitStatus { code, output });
        }
        let content_type = template
            .content_type
            .as_deref()
            .unwrap_or("text/plain; charset=utf-8");
        let response = http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Bytes::from(stdout))
            .map_err(|e| InvokeError::SandboxFailed(e.to_string()))?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_variables_follow_the_classic_watchdog() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/a/b?x=1")
            .header("content-type", "text/plain")
            .header("x-call-id", "42")
            .body(Bytes::from_static(b"hi"))
            .unwrap();
        let env = cgi_environment(&request);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Http_Method"), Some("POST"));
        assert_eq!(get("Http_Path"), Some("/a/b"));
        assert_eq!(get("Http_Query"), Some("x=1"));
        assert_eq!(get("Http_Content_Type"), Some("text/plain"));
        assert_eq!(get("Http_X_Call_Id"), Some("42"));
        assert_eq!(get("Http_ContentLength"), Some("2"));
    }
}
