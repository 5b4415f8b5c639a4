//! WebAssembly components targeting `wasi:http/proxy`, run by wasmtime.
//!
//! Each function is compiled once (or loaded from the on-disk cache) and pre-linked into a
//! [`ProxyPre`]; every request gets a fresh instance from the pooling allocator, so requests
//! share nothing and instantiation costs microseconds. Guests are stopped at their deadline by
//! epoch interruption; memory is bounded per store.

mod admission;
mod blobstore;
mod cache;
mod config;
mod epoch;
mod keyvalue;
mod logging;
mod memory_image;
mod peak;
mod sandbox;

pub use crate::outbound::{
    Outbound, OutboundConfig, PlatformFuture, PlatformService, WasiBody, platform_body,
};
pub use cache::CompileCache;
pub use memory_image::{CopyOnWrite, DEFAULT_COW_THRESHOLD, initialised_bytes};
pub use sandbox::{NAMESPACE_LABEL, WRITE_BACK_LABEL, WasmFunction, state_namespace};

use crate::{ArtifactStore, InvokeError, LogSink, Prepared, Runtime, Sandbox};
use anyhow::{Context, bail};
use async_trait::async_trait;
use baton_api::{FunctionSpec, RuntimeSpec};
use epoch::EpochTicker;
use sandbox::{HostState, WasmSandbox};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// How often the epoch advances: the granularity of timeouts and of yielding to tokio.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine settings a node may tune.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Instances the pool holds at once, across all functions. Default 1000.
    pub pool_instances: u32,
    /// Largest linear memory any instance may have; per-function limits are at most this.
    /// Default 1 GiB.
    pub max_memory_bytes: u64,
    /// Bytes of each pooled linear memory kept resident and reset in place between
    /// instances rather than returned to the kernel. Default 2 MiB (as Spin).
    pub memory_keep_resident: usize,
    /// What functions' outgoing requests may reach beyond their own allow-lists.
    pub outbound: OutboundConfig,
    /// Which components' memories are mapped copy-on-write rather than copied per instance.
    /// Default: those that initialise at least 1 MiB.
    pub copy_on_write: CopyOnWrite,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            pool_instances: 1000,
            max_memory_bytes: 1 << 30,
            memory_keep_resident: 2 << 20,
            outbound: OutboundConfig::default(),
            copy_on_write: CopyOnWrite::default(),
        }
    }
}

/// The wasm runtime: one engine and linker shared by every function on the node.
pub struct WasmRuntime {
    compiler: Arc<Compiler>,
    max_memory_bytes: u64,
    artifacts: ArtifactStore,
    _ticker: EpochTicker,
}

/// What compiling and linking a component needs; shared with blocking compile tasks.
struct Compiler {
    /// Copies data segments into each instance's memory (absent when the policy maps all).
    copying: Option<Linked>,
    /// Maps an image of the initial memory copy-on-write (absent when the policy copies all).
    mapping: Option<Linked>,
    copy_on_write: CopyOnWrite,
    /// Who may take the next instance (outside requests half the pool, nested calls all).
    admission: Arc<admission::Admission>,
    cache: CompileCache,
    state: Option<baton_state::Agent>,
    objects: Option<baton_cache::Objects>,
    outbound: Arc<Outbound>,
}

/// An engine and the linker of every interface Baton provides, made for it.
struct Linked {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Linked {
    /// The engine (pooled where the machine allows) and its linker.
    fn new(config: &WasmConfig, cow: bool) -> anyhow::Result<Self> {
        let engine = match Engine::new(&engine_config(config, true, cow)) {
            Ok(engine) => engine,
            Err(error) => {
                tracing::warn!(%error, "pooling allocator unavailable, using on-demand instance allocation");
                Engine::new(&engine_config(config, false, cow))?
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        baton_state::guest::add_to_linker(&mut linker, HostState::state)?;
        config::add_to_linker(&mut linker, HostState::config)?;
        keyvalue::add_to_linker(&mut linker, HostState::key_value)?;
        blobstore::add_to_linker(&mut linker, HostState::blobstore)?;
        logging::add_to_linker(&mut linker, HostState::log)?;
        Ok(Linked { engine, linker })
    }
}

impl WasmRuntime {
    /// Builds the engine with the pooling allocator; falls back to on-demand allocation where
    /// the machine refuses the pool's address-space reservation. Functions reach `state`
    /// through `baton:platform/state`; without an agent those calls answer `unavailable`.
    pub fn new(
        config: &WasmConfig,
        artifacts: ArtifactStore,
        cache: CompileCache,
        state: Option<baton_state::Agent>,
    ) -> anyhow::Result<Self> {
        let (copies, maps) = config.copy_on_write.engines();
        let copying = copies.then(|| Linked::new(config, false)).transpose()?;
        let mapping = maps.then(|| Linked::new(config, true)).transpose()?;
        let engines = copying.iter().chain(&mapping).map(|l| l.engine.clone());
        let ticker = EpochTicker::start(engines.collect(), EPOCH_TICK);
        Ok(WasmRuntime {
            max_memory_bytes: config.max_memory_bytes,
            compiler: Arc::new(Compiler {
                copying,
                mapping,
                copy_on_write: config.copy_on_write,
                admission: Arc::new(admission::Admission::new(config.pool_instances)),
                cache,
                state,
                objects: None,
                outbound: Outbound::new(&config.outbound),
            }),
            artifacts,
            _ticker: ticker,
        })
    }

    /// Serves the node's objects to functions through `wasi:blobstore`; without them, those
    /// calls answer an error. Call before any function is prepared.
    /// Every invocation's peak linear memory feeds the objects' memory predictions.
    pub fn with_objects(mut self, objects: baton_cache::Objects) -> Self {
        Arc::get_mut(&mut self.compiler)
            .expect("objects are given to the wasm runtime before it prepares functions")
            .objects = Some(objects);
        self
    }

    /// Compiles (or loads from cache) and links `bytes`; the error says why they are not a
    /// runnable `wasi:http/proxy` component. Blocking: seconds for a large uncached component.
    pub fn prepare_bytes(
        &self,
        bytes: &[u8],
        spec: &FunctionSpec,
    ) -> anyhow::Result<Arc<WasmFunction>> {
        self.compiler
            .prepare_bytes(bytes, spec, config::values(spec, None))
    }

    /// The node's outgoing-request policy, shared by every function: the node records its
    /// listeners and its gateway here as it binds them.
    pub fn outbound(&self) -> Arc<Outbound> {
        self.compiler.outbound.clone()
    }
}

impl Compiler {
    fn prepare_bytes(
        &self,
        bytes: &[u8],
        spec: &FunctionSpec,
        config: config::ConfigValues,
    ) -> anyhow::Result<Arc<WasmFunction>> {
        if is_core_module(bytes) {
            bail!(
                "this is a core wasm module, not a component; build for wasm32-wasip2 or run `wasm-tools component new`"
            );
        }
        let initialised = memory_image::initialised_bytes(bytes);
        let maps = self.copy_on_write.maps(initialised);
        let (preferred, other) = if maps {
            (&self.mapping, &self.copying)
        } else {
            (&self.copying, &self.mapping)
        };
        let linked = preferred
            .as_ref()
            .or(other.as_ref())
            .expect("every policy makes an engine");
        tracing::info!(
            function = spec.name.as_str(),
            initialised_bytes = initialised,
            copy_on_write = maps,
            "linking component"
        );
        let component = self.cache.load_or_compile(&linked.engine, bytes)?;
        let instance_pre = linked
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component imports something Baton does not provide (it must target wasi:http/proxy)")?;
        let pre = ProxyPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export wasi:http/incoming-handler (it must target wasi:http/proxy)")?;
        let outbound = Arc::new(crate::outbound::FunctionOutbound::new(
            spec,
            self.outbound.clone(),
        ));
        Ok(Arc::new(WasmFunction::new(
            pre,
            spec,
            self.state.clone(),
            self.objects.clone(),
            outbound,
            config,
            self.admission.clone(),
        )))
    }
}

fn is_core_module(bytes: &[u8]) -> bool {
    // Core modules carry version 1 in the 4 bytes after the magic; components use layer 1.
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

fn engine_config(config: &WasmConfig, pooling: bool, cow: bool) -> Config {
    let mut engine = Config::new();
    engine.wasm_component_model(true);
    engine.epoch_interruption(true);
    engine.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Instances live microseconds: copy-on-write images and returning pages to the kernel make
    // every instance fault its pages in again and every reset flush TLBs on all cores (the IPI
    // cost wasmtime documents), which dominated a profile of the warm path. For a small
    // component, copy the data segments instead, keep pages resident, and reset only the pages
    // an instance touched; a large initialised heap is mapped (memory_image.rs).
    engine.memory_init_cow(cow);
    // `BATON_WASM_PROFILER=perfmap` writes /tmp/perf-<pid>.map, so `perf` names the guests'
    // functions (as `wasmtime --profile=perfmap` does); a diagnostic, off by default.
    if std::env::var("BATON_WASM_PROFILER").is_ok_and(|p| p == "perfmap") {
        engine.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let instances = config.pool_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances)
            .total_tables(instances.saturating_mul(2))
            .total_stacks(instances)
            .max_memory_size(config.max_memory_bytes as usize)
            .linear_memory_keep_resident(config.memory_keep_resident)
            .table_keep_resident(512 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        engine.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    engine
}

#[async_trait]
impl Runtime for WasmRuntime {
    async fn prepare(
        &self,
        spec: &FunctionSpec,
        secrets: Option<&baton_api::SecretValues>,
    ) -> anyhow::Result<Arc<dyn Prepared>> {
        let RuntimeSpec::Wasm { component } = &spec.runtime else {
            bail!("the wasm runtime cannot run {:?}", spec.runtime);
        };
        if spec.limits.memory_bytes > self.max_memory_bytes {
            bail!(
                "limits.memory {} bytes is more than this node gives one instance (at most {} bytes, wasm.max_memory)",
                spec.limits.memory_bytes,
                self.max_memory_bytes
            );
        }
        let bytes = self
            .artifacts
            .get(component)
            .with_context(|| format!("reading component {}", component.0))?;
        // Compilation takes a core for up to seconds: keep it off the async workers.
        let compiler = self.compiler.clone();
        let config = config::values(spec, secrets);
        let spec = spec.clone();
        let function =
            tokio::task::spawn_blocking(move || compiler.prepare_bytes(&bytes, &spec, config))
                .await??;
        Ok(Arc::new(PreparedWasm(function)))
    }
}

/// A prepared component as the worker holds it; every sandbox shares the one `WasmFunction`.
struct PreparedWasm(Arc<WasmFunction>);

#[async_trait]
impl Prepared for PreparedWasm {
    async fn create_sandbox(&self, logs: LogSink) -> Result<Arc<dyn Sandbox>, InvokeError> {
        Ok(Arc::new(WasmSandbox::new(self.0.clone(), logs)))
    }
}
