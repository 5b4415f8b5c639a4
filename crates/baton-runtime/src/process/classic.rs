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

/// A classic-mode function: every request forks a process.
pub(crate) struct ClassicFunction {
    template: Arc<CommandTemplate>,
}

impl ClassicFunction {
    pub(crate) fn new(template: Arc<CommandTemplate>) -> Self {
        ClassicFunction { template }
    }

    pub(crate) fn sandbox(&self, logs: LogSink) -> ClassicSandbox {
        ClassicSandbox {
            template: self.template.clone(),
            logs,
        }
    }
}

/// A classic "sandbox" is only a handle: the isolation is the process each request forks.
pub(crate) struct ClassicSandbox {
    template: Arc<CommandTemplate>,
    logs: LogSink,
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
        let mut command = template.command();
        command
            .envs(cgi_environment(&request))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            InvokeError::SandboxFailed(format!("could not start the function's process: {e}"))
        })?;
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
        tokio::spawn(async move {
            // A process that does not read its input closes the pipe early; that is its choice.
            let _ = stdin.write_all(&body).await;
        });
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
