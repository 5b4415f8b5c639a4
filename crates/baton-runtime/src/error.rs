use baton_api::{ApiError, ErrorKind};
use std::time::Duration;

/// How one invocation failed. Each ends that invocation only; the node keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The function ran past its timeout and was stopped.
    #[error("function timed out after {}", baton_api::format_duration(*.0))]
    Timeout(Duration),
    /// The guest trapped (panic, out of memory, stack overflow); the message is wasmtime's.
    #[error("function trapped: {0}")]
    Trap(String),
    /// A classic-mode process exited non-zero; the body is OpenFaaS's `exit status N\n<output>`.
    #[error("exit status {code}\n{output}")]
    ExitStatus {
        /// The exit code (or 128 + signal).
        code: i32,
        /// What the process wrote.
        output: String,
    },
    /// The function's response was larger than its output limit.
    #[error("function response exceeded the output limit of {0} bytes")]
    OutputTooLarge(u64),
    /// The sandbox crashed, could not start, or answered something that is not HTTP.
    #[error("{0}")]
    SandboxFailed(String),
    /// No wasm instance is free for this call (`wasm.pool_instances`; requests from outside
    /// may take half of them): nothing ran, and the same request may succeed a moment later.
    #[error("no wasm instance is free for this call ({0}); retry later")]
    InstanceLimit(String),
}

impl InvokeError {
    /// The error kind, and so the status code, a client receives.
    pub fn kind(&self) -> ErrorKind {
        match self {
            InvokeError::Timeout(_) => ErrorKind::Timeout,
            InvokeError::Trap(_) | InvokeError::ExitStatus { .. } => ErrorKind::FunctionFailed,
            InvokeError::OutputTooLarge(_) | InvokeError::SandboxFailed(_) => ErrorKind::BadGateway,
            InvokeError::InstanceLimit(_) => ErrorKind::Overloaded,
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(error: InvokeError) -> Self {
        ApiError::new(error.kind(), error.to_string())
    }
}
