//! A runtime that runs nothing: sandboxes take a configurable time to create and answer
//! every request with the function's name and the request body. It lets one machine
//! simulate a large cluster (Dirigent's scalability runs use a 40 ms fake), and measure the
//! control plane rather than the sandboxes.

use crate::{InvokeError, LogSink, Prepared, Request, Response, Runtime, Sandbox};
use async_trait::async_trait;
use baton_api::FunctionSpec;
use std::sync::Arc;
use std::time::Duration;

/// Fakes every kind of function.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeRuntime {
    /// How long creating a sandbox takes.
    pub creation_delay: Duration,
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn prepare(
        &self,
        spec: &FunctionSpec,
        _secrets: Option<&baton_api::SecretValues>,
    ) -> anyhow::Result<Arc<dyn Prepared>> {
        Ok(Arc::new(FakeFunction {
            name: spec.name.to_string(),
            delay: self.creation_delay,
        }))
    }
}

struct FakeFunction {
    name: String,
    delay: Duration,
}

#[async_trait]
impl Prepared for FakeFunction {
    async fn create_sandbox(&self, _logs: LogSink) -> Result<Arc<dyn Sandbox>, InvokeError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(Arc::new(FakeSandbox {
            name: self.name.clone(),
        }))
    }
}

struct FakeSandbox {
    name: String,
}

#[async_trait]
impl Sandbox for FakeSandbox {
    async fn invoke(&self, request: Request) -> Result<Response, InvokeError> {
        http::Response::builder()
            .header("x-baton-fake", &self.name)
            .body(request.into_body())
            .map_err(|e| InvokeError::SandboxFailed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::{FunctionName, ProcessMode, RuntimeSpec};
    use bytes::Bytes;

    #[tokio::test]
    async fn creation_takes_the_delay_and_sandboxes_echo() {
        let runtime = FakeRuntime {
            creation_delay: Duration::from_millis(30),
        };
        let code = RuntimeSpec::Process {
            command: vec!["none".into()],
            mode: ProcessMode::Http,
            working_dir: None,
        };
        let spec = FunctionSpec::new(FunctionName::new("f").unwrap(), code);
        let prepared = runtime.prepare(&spec, None).await.unwrap();
        let started = tokio::time::Instant::now();
        let sandbox = prepared
            .create_sandbox(Arc::new(crate::FunctionLogs::new(10)).sink("s"))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(30));
        let response = sandbox
            .invoke(http::Request::new(Bytes::from_static(b"ping")))
            .await
            .unwrap();
        assert_eq!(response.headers()["x-baton-fake"], "f");
        assert_eq!(response.body().as_ref(), b"ping");
    }
}
