//! `baton up` as a federation site: the `[federation]` settings, the site the federation
//! agent sees (this node's control plane and artifacts), and starting the agent and its
//! listener.

use anyhow::Context;
use async_trait::async_trait;
use baton_api::{ArtifactDigest, FunctionSpec, Invoker, RuntimeSpec};
use baton_control::ControlPlane;
use baton_federation::site::{FEDERATE_LABEL, FINGERPRINT_LABEL, MAX_RATE_LABEL, ORIGIN_LABEL};
use baton_federation::{Federation, FederationConfig, LocalFunction, Site, SiteKey};
use baton_gateway::cluster::ClusterInvoker;
use baton_runtime::ArtifactStore;
use bytes::Bytes;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `[federation]` in the config file; `listen` (or `BATON_FEDERATION_LISTEN`) turns it on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    listen: Option<String>,
    advertise: Option<String>,
    /// Members to dial, `SITE_ID@HOST:PORT`.
    peers: Option<Vec<String>>,
    /// More members' ids, reached when a peer tells where they are.
    members: Option<Vec<String>>,
    authorities: Option<Vec<String>>,
    /// A JSON certificate from an authority (`baton federation certify`).
    certificate: Option<std::path::PathBuf>,
    strategy: Option<String>,
    period: Option<String>,
    window: Option<String>,
}

/// Flags and environment variables over the file's section.
pub struct FederationFlags<'a> {
    pub listen: Option<&'a str>,
    pub advertise: Option<&'a str>,
    pub peers: Option<&'a [String]>,
    pub strategy: Option<&'a str>,
    pub period: Option<&'a str>,
}

/// The node's federation settings, `None` when it is not a site.
pub fn resolve(
    section: &FederationSection,
    flags: FederationFlags,
) -> anyhow::Result<Option<FederationConfig>> {
    let Some(listen) = flags.listen.or(section.listen.as_deref()) else {
        return Ok(None);
    };
    let listen = listen.parse().with_context(|| {
        format!("federation.listen {listen:?} is not host:port (e.g. 127.0.0.1:7443)")
    })?;
    let mut config = FederationConfig::new(listen);
    config.advertise = flags
        .advertise
        .map(str::to_owned)
        .or_else(|| section.advertise.clone());
    let peers: Vec<String> = match flags.peers {
        Some(peers) => peers.to_vec(),
        None => section.peers.clone().unwrap_or_default(),
    };
    for peer in peers.iter().filter(|p| !p.trim().is_empty()) {
        config.peers.push(
            baton_federation::config::parse_peer(peer)
                .map_err(|e| anyhow::anyhow!("federation.peers: {e}"))?,
        );
    }
    let ids = |list: &Option<Vec<String>>, key: &str| -> anyhow::Result<Vec<_>> {
        list.iter()
            .flatten()
            .map(|id| {
                id.parse()
                    .map_err(|e| anyhow::anyhow!("federation.{key}: {e}"))
            })
            .collect()
    };
    config.members = ids(&section.members, "members")?;
    config.authorities = ids(&section.authorities, "authorities")?;
    if let Some(path) = &section.certificate {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading federation.certificate {}", path.display()))?;
        config.certificate = Some(
            serde_json::from_str(&text)
                .with_context(|| format!("federation.certificate {}", path.display()))?,
        );
    }
    if let Some(strategy) = flags.strategy.or(section.strategy.as_deref()) {
        anyhow::ensure!(
            baton_federation::strategy::NAMES.contains(&strategy),
            "federation.strategy {strategy:?} is none of {}",
            baton_federation::strategy::NAMES.join(", ")
        );
        config.strategy = strategy.to_string();
    }
    if let Some(period) = flags.period.or(section.period.as_deref()) {
        let period = crate::config::duration(period, "federation.period")?;
        anyhow::ensure!(
            period >= Duration::from_millis(50),
            "federation.period must be at least 50ms"
        );
        config.period = Some(period);
    }
    if let Some(window) = &section.window {
        config.window = crate::config::duration(window, "federation.window")?;
    }
    Ok(Some(config))
}

/// This node, as the federation sees it.
pub struct NodeSite {
    pub control: Arc<ControlPlane>,
    pub artifacts: ArtifactStore,
    pub invoker: Arc<ClusterInvoker>,
}

/// The slots a site has for `spec`: the sandboxes its autoscaler may run (`scale.max`) times
/// their concurrency.
pub fn capacity(spec: &FunctionSpec) -> f64 {
    (u64::from(spec.scaling.max) * u64::from(spec.limits.concurrency)) as f64
}

/// What `spec` runs, as a short digest: the same on two sites means the same code and
/// settings. How many sandboxes a site runs, and how many requests may wait for them, are its
/// own: a site may deploy a federated function itself with its own scale and queue, and still
/// take part.
fn fingerprint(spec: &FunctionSpec) -> String {
    let mut spec = spec.clone();
    spec.scaling = Default::default();
    spec.labels.retain(|key, _| {
        key != ORIGIN_LABEL
            && key != FINGERPRINT_LABEL
            && key != baton_api::LABEL_QUEUE
            && !key.starts_with("com.openfaas.scale.")
    });
    let json = serde_json::to_vec(&spec).unwrap_or_default();
    ArtifactStore::digest(&json).0
}

#[async_trait]
impl Site for NodeSite {
    fn federated(&self) -> Vec<LocalFunction> {
        self.control
            .names()
            .into_iter()
            .filter_map(|name| self.control.spec(&name))
            .filter(|(spec, _)| spec.labels.get(FEDERATE_LABEL).is_some_and(|v| v == "true"))
            .map(|(spec, _)| LocalFunction {
                name: spec.name.to_string(),
                fingerprint: spec
                    .labels
                    .get(FINGERPRINT_LABEL)
                    .filter(|_| spec.labels.contains_key(ORIGIN_LABEL))
                    .cloned()
                    .unwrap_or_else(|| fingerprint(&spec)),
                capacity: capacity(&spec),
                max_rate: spec
                    .labels
                    .get(MAX_RATE_LABEL)
                    .and_then(|r| r.parse::<f64>().ok())
                    .filter(|r| r.is_finite() && *r > 0.0),
                timeout: spec.limits.timeout(),
                max_output_bytes: usize::try_from(spec.limits.max_output_bytes)
                    .unwrap_or(usize::MAX),
                origin: spec.labels.get(ORIGIN_LABEL).cloned(),
                component: match &spec.runtime {
                    RuntimeSpec::Wasm { component } => Some(component.0.clone()),
                    RuntimeSpec::Process { .. } => None,
                },
                spec: serde_json::to_value(&spec).unwrap_or_default(),
            })
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.control.spec(name).is_some()
    }

    fn component(&self, digest: &str) -> Option<Bytes> {
        self.artifacts
            .get(&ArtifactDigest(digest.to_string()))
            .ok()
            .map(Bytes::from)
    }

    async fn install(
        &self,
        spec: serde_json::Value,
        component: Option<Bytes>,
    ) -> Result<(), String> {
        let spec: FunctionSpec =
            serde_json::from_value(spec).map_err(|e| format!("unreadable spec: {e}"))?;
        let name = spec.name.to_string();
        let status = self
            .control
            .deploy_spec(spec, component)
            .await
            .map_err(|e| e.message)?;
        self.invoker
            .synced(&name, Some(status.version), Duration::from_secs(10))
            .await;
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), String> {
        use baton_api::FunctionAdmin;
        self.control.delete(name).await.map_err(|e| e.message)?;
        self.invoker
            .synced(name, None, Duration::from_secs(10))
            .await;
        Ok(())
    }
}

/// A started site: its agent, and where its listener is.
pub struct Started {
    pub federation: Arc<Federation>,
    pub address: std::net::SocketAddr,
}

/// Binds the federation listener and starts the agent.
pub async fn start(
    config: FederationConfig,
    data: &Path,
    site: Arc<dyn Site>,
    local: Arc<dyn Invoker>,
) -> anyhow::Result<Started> {
    let key = SiteKey::load_or_create(&crate::commands::federation::key_file(data))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "federation listening on {} (in use? set BATON_FEDERATION_LISTEN)",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| address.to_string());
    let federation = Federation::new(key, config, advertise, site, local)?;
    tokio::spawn(baton_federation::server::serve(
        federation.clone(),
        listener,
    ));
    tokio::spawn(federation.clone().run());
    tracing::info!(site = %federation.id(), %address, strategy = federation.strategy(), "federation site");
    Ok(Started {
        federation,
        address,
    })
}

/// `GET /system/federation`: the status as JSON.
pub fn status_routes(federation: Arc<Federation>) -> axum::Router {
    axum::Router::new().route(
        "/system/federation",
        axum::routing::get(move || {
            let federation = federation.clone();
            async move { axum::Json(federation.status()) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        serde_json::from_value(serde_json::json!({
            "name": "f",
            "runtime": {"kind": "wasm", "component": "00"},
        }))
        .unwrap()
    }

    #[test]
    fn capacity_is_what_the_autoscaler_may_run() {
        let mut spec = spec();
        spec.scaling.max = 3;
        spec.limits.concurrency = 2;
        assert_eq!(capacity(&spec), 6.0);
        spec.scaling.max = 0;
        assert_eq!(capacity(&spec), 0.0);
    }

    #[test]
    fn the_fingerprint_is_the_code_and_settings_not_the_scale() {
        let base = spec();
        let mut scaled = spec();
        scaled.scaling.max = 9;
        scaled
            .labels
            .insert("com.openfaas.scale.max".into(), "9".into());
        scaled.labels.insert(ORIGIN_LABEL.into(), "someone".into());
        scaled.labels.insert("baton.queue".into(), "4".into());
        assert_eq!(fingerprint(&base), fingerprint(&scaled));
        let mut other = spec();
        other.env.insert("MODE".into(), "fast".into());
        assert_ne!(fingerprint(&base), fingerprint(&other));
        let mut code = spec();
        code.runtime = RuntimeSpec::Wasm {
            component: ArtifactDigest("01".into()),
        };
        assert_ne!(fingerprint(&base), fingerprint(&code));
    }
}
