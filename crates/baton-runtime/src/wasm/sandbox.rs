use super::admission::Admission;
use super::blobstore::BlobstoreView;
use super::config::{ConfigValues, ConfigView};
use super::keyvalue::KeyValueView;
use super::logging::LogView;
use crate::outbound::FunctionOutbound;
use crate::{InvokeError, LogSink, LogStream, Request, Response, Sandbox};
use async_trait::async_trait;
use baton_api::FunctionSpec;
use baton_state::Agent;
use baton_state::guest::GuestState;
use http_body_util::{BodyExt, Full, Limited};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpView,
};

/// The label that puts a function's state objects in an application's namespace, shared
/// with the other functions of the application; without it, the namespace is the function's
/// name.
pub const NAMESPACE_LABEL: &str = "baton.namespace";

/// The label naming a function's write-back buckets (of its namespace; comma-separated, or
/// `*`): their writes are acknowledged once in the node's memory and pending log.
pub const WRITE_BACK_LABEL: &str = baton_api::LABEL_WRITE_BACK;

/// The state namespace of the function `spec` describes.
pub fn state_namespace(spec: &FunctionSpec) -> String {
    spec.labels
        .get(NAMESPACE_LABEL)
        .cloned()
        .unwrap_or_else(|| spec.name.as_str().to_string())
}

/// Bytes of stdout and of stderr kept from one invocation for the function's logs.
const CAPTURED_OUTPUT: usize = 64 * 1024;

/// A compiled, linked function: makes an instance per request.
pub struct WasmFunction {
    pre: ProxyPre<HostState>,
    state: Option<Agent>,
    objects: Option<baton_cache::Objects>,
    /// Where each invocation's peak memory goes (the node's memory prediction).
    memory_model: Option<Arc<baton_cache::FunctionModel>>,
    outbound: Arc<FunctionOutbound>,
    namespace: Arc<str>,
    env: Vec<(String, String)>,
    /// What `wasi:config/store` reads: its environment and its secrets.
    config: ConfigValues,
    /// The node's instances, shared by every function: who may take the next.
    admission: Arc<Admission>,
    memory_bytes: usize,
    timeout: Duration,
    max_output: u64,
}

/// The per-request store data.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: super::peak::PeakLimits,
    hooks: Hooks,
    state: GuestState,
    /// The node's objects and the namespace whose buckets the instance reaches.
    objects: Option<baton_cache::Objects>,
    namespace: Arc<str>,
    config: ConfigValues,
    /// Where `wasi:logging` lines go: the instance's captured stderr.
    log: MemoryOutputPipe,
}

impl HostState {
    pub(crate) fn state(&mut self) -> &mut GuestState {
        &mut self.state
    }

    pub(crate) fn config(&mut self) -> ConfigView<'_> {
        ConfigView(&self.config)
    }

    pub(crate) fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            table: &mut self.table,
            state: &self.state,
        }
    }

    pub(crate) fn blobstore(&mut self) -> BlobstoreView<'_> {
        BlobstoreView {
            table: &mut self.table,
            objects: self.objects.as_ref(),
            namespace: &self.namespace,
        }
    }

    pub(crate) fn log(&mut self) -> LogView<'_> {
        LogView(&mut self.log)
    }
}

/// wasi-http policy: outgoing requests go through the function's [`FunctionOutbound`]
/// (other functions in-process, listed hosts, nothing else), and a deeper buffer for the
/// response body, so a guest writing a small response does not suspend until the host reads
/// each chunk; the output limit still bounds what is kept.
struct Hooks {
    outbound: Arc<FunctionOutbound>,
    /// How deep in a chain of nested calls the request this instance serves is.
    depth: u32,
    /// Connecting (and resolving) may take at most this: the function's own timeout.
    connect_timeout: Duration,
}

impl wasmtime_wasi_http::WasiHttpHooks for Hooks {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        16
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let outbound = self.outbound.clone();
        let depth = self.depth;
        let timeout = self.connect_timeout;
        Box::new(async move {
            let response = outbound.send(request, depth, timeout).await?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl WasmFunction {
    pub(crate) fn new(
        pre: ProxyPre<HostState>,
        spec: &FunctionSpec,
        state: Option<Agent>,
        objects: Option<baton_cache::Objects>,
        outbound: Arc<FunctionOutbound>,
        config: ConfigValues,
        admission: Arc<Admission>,
    ) -> Self {
        let namespace = state_namespace(spec);
        if let (Some(objects), Some(buckets)) = (&objects, spec.labels.get(WRITE_BACK_LABEL)) {
            objects.declare_write_back(&namespace, buckets);
        }
        let memory_model = objects.as_ref().map(|o| {
            o.predictions()
                .model(spec.name.as_str(), spec.limits.memory_bytes)
        });
        WasmFunction {
            pre,
            state,
            objects,
            memory_model,
            outbound,
            config,
            admission,
            namespace: namespace.into(),
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            memory_bytes: usize::try_from(spec.limits.memory_bytes).unwrap_or(usize::MAX),
            timeout: spec.limits.timeout(),
            max_output: spec.limits.max_output_bytes,
        }
    }

    /// Runs one request in a fresh instance: the cold path and the warm path are the same.
    pub async fn handle(
        self: &Arc<Self>,
        request: Request,
        logs: &LogSink,
    ) -> Result<Response, InvokeError> {
        let stdout = MemoryOutputPipe::new(CAPTURED_OUTPUT);
        let stderr = MemoryOutputPipe::new(CAPTURED_OUTPUT);
        let result = self.run(request, stdout.clone(), stderr.clone()).await;
        logs.push_text(LogStream::Stdout, &stdout.contents());
        logs.push_text(LogStream::Stderr, &stderr.contents());
        result
    }

    async fn run(
        self: &Arc<Self>,
        request: Request,
        stdout: MemoryOutputPipe,
        stderr: MemoryOutputPipe,
    ) -> Result<Response, InvokeError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let depth = baton_api::outbound::call_depth(request.headers());
        let nested = depth > 0;
        let Some(_instance) = self.admission.admit(nested) else {
            let all = self.admission.limit(true);
            return Err(InvokeError::InstanceLimit(if nested {
                format!("all {all} in use")
            } else {
                format!(
                    "{} of {all} in use, as many as requests from outside may take; the rest is kept for the calls functions make",
                    self.admission.limit(false)
                )
            }));
        };
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env).stdout(stdout).stderr(stderr.clone());
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: Hooks {
                outbound: self.outbound.clone(),
                depth,
                connect_timeout: self.timeout,
            },
            state: GuestState::new(self.state.clone(), self.namespace.clone()),
            objects: self.objects.clone(),
            namespace: self.namespace.clone(),
            config: self.config.clone(),
            log: stderr,
            limits: super::peak::PeakLimits::new(
                StoreLimitsBuilder::new()
                    .memory_size(self.memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
            ),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        // Yield to tokio at every epoch tick so a spinning guest shares its thread; trap once
        // the deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let input_bytes = request.body().len() as u64;
        let request = with_authority(request)
            .map(|body| Full::new(body).map_err(|never| -> ErrorCode { match never {} }));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (incoming, out) = {
            let mut http = store.data_mut().http();
            let incoming = http
                .new_incoming_request(Scheme::Http, request)
                .map_err(internal)?;
            let out = http.new_response_outparam(sender).map_err(internal)?;
            (incoming, out)
        };
        // The guest and the reading of its response run together in this task (no spawn, no
        // cross-thread wake-ups). The guest future owns the store, so when the guest ends the
        // store and its response sender go with it, and a guest that never responded makes
        // `receiver` resolve rather than hang.
        let pre = self.pre.clone();
        let memory_model = self.memory_model.clone();
        let guest = async move {
            let result = match pre.instantiate_async(&mut store).await {
                Ok(proxy) => {
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, incoming, out)
                        .await
                }
                Err(error) => Err(error),
            };
            if let Some(model) = memory_model {
                model.observe(input_bytes, store.data().limits.peak() as u64);
            }
            drop(store);
            result
        };
        let max_output = self.max_output;
        let respond = async move {
            let response: Result<Response, Option<InvokeError>> = match receiver.await {
                Ok(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    match Limited::new(body, max_output as usize).collect().await {
                        Ok(collected) => Ok(Response::from_parts(parts, collected.to_bytes())),
                        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                            Err(Some(InvokeError::OutputTooLarge(max_output)))
                        }
                        // The body broke off: the guest's own failure says why.
                        Err(_) => Err(None),
                    }
                }
                Ok(Err(code)) => Err(Some(InvokeError::SandboxFailed(format!(
                    "function answered with an error: {code:?}"
                )))),
                Err(_) => Err(None),
            };
            response
        };
        let both = async { tokio::join!(guest, respond) };
        let Ok((guest_result, response)) = tokio::time::timeout_at(deadline.into(), both).await
        else {
            return Err(InvokeError::Timeout(self.timeout));
        };
        match (response, guest_result) {
            (Ok(response), _) => Ok(response),
            (Err(Some(error)), _) => Err(error),
            (Err(None), Ok(())) => Err(InvokeError::SandboxFailed(
                "function returned without sending a response".into(),
            )),
            (Err(None), Err(error)) => {
                // Before any conversion to `anyhow`, which may walk the stack for a backtrace.
                if let Some(limit) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
                    return Err(InvokeError::InstanceLimit(limit.to_string()));
                }
                let message = trap_message(&anyhow::Error::from(error));
                if Instant::now() >= deadline && message.contains("interrupt") {
                    Err(InvokeError::Timeout(self.timeout))
                } else {
                    Err(InvokeError::Trap(message))
                }
            }
        }
    }
}

/// wasi:http needs an authority; requests that reached us as origin-form carry it in `Host`.
fn with_authority(mut request: Request) -> Request {
    if request.uri().authority().is_none() && !request.headers().contains_key(http::header::HOST) {
        request.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
    }
    request
}

/// The trap and the guest's message, without wasmtime's backtrace noise.
fn trap_message(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        parts.push(trap.to_string());
    }
    for cause in error.chain() {
        let text = cause.to_string();
        let first = text.lines().next().unwrap_or_default().to_owned();
        if !first.is_empty()
            && !parts.contains(&first)
            && !first.starts_with("error while executing at wasm backtrace")
        {
            parts.push(first);
        }
    }
    let mut message = parts.join(": ");
    if message.contains("out of bounds memory access") {
        // Languages that keep their stack in linear memory (Rust, C) overflow it this way.
        message.push_str(" (a stack overflow in the guest's own stack also shows as this)");
    }
    message
}

fn internal(error: wasmtime::Error) -> InvokeError {
    InvokeError::SandboxFailed(format!(
        "could not pass the request to the function: {error}"
    ))
}

/// A wasm "sandbox": instances are per request, so this is the prepared function plus where
/// its output goes.
pub(crate) struct WasmSandbox {
    function: Arc<WasmFunction>,
    logs: LogSink,
}

#[async_trait]
impl Sandbox for WasmSandbox {
    async fn invoke(&self, request: Request) -> Result<Response, InvokeError> {
        self.function.handle(request, &self.logs).await
    }
}

impl WasmSandbox {
    /// A sandbox of `function`, sharing its prepared code, writing output to `logs`.
    pub(crate) fn new(function: Arc<WasmFunction>, logs: LogSink) -> Self {
        WasmSandbox { function, logs }
    }
}
