//! What `baton deploy` reads: a `baton.toml` manifest or an OpenFaaS `stack.yml`, both turned
//! into OpenFaaS deployment requests.

use crate::{DeployRequest, ResourceLimits};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One function to deploy; wasm components are uploaded from `component`.
#[derive(Debug)]
pub struct Deployment {
    /// The deployment as the OpenFaaS API takes it.
    pub request: DeployRequest,
    /// The component file to upload with it, for a wasm function.
    pub component: Option<PathBuf>,
}

/// `baton.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    functions: BTreeMap<String, ManifestFunction>,
}

/// One `[functions.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFunction {
    /// A wasm component file, relative to the manifest.
    wasm: Option<PathBuf>,
    /// A process command.
    process: Option<String>,
    /// `http` or `classic` (process functions).
    mode: Option<String>,
    /// Working directory of the process, relative to the manifest.
    dir: Option<PathBuf>,
    timeout: Option<String>,
    memory: Option<String>,
    concurrency: Option<u32>,
    min_scale: Option<u32>,
    max_scale: Option<u32>,
    keep_alive: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl ManifestFunction {
    /// A function given by flags rather than a file.
    pub fn from_flags(
        wasm: Option<PathBuf>,
        process: Option<String>,
        mode: String,
        dir: Option<PathBuf>,
        timeout: Option<String>,
        memory: Option<String>,
        env: BTreeMap<String, String>,
    ) -> Self {
        ManifestFunction {
            wasm,
            process,
            mode: Some(mode),
            dir,
            timeout,
            memory,
            env,
            ..Default::default()
        }
    }

    /// The deployment of function `name`; files it names are relative to `base`.
    pub fn into_deployment(self, name: &str, base: &Path) -> anyhow::Result<Deployment> {
        let mut request = DeployRequest {
            service: name.to_owned(),
            ..DeployRequest::default()
        };
        let mut env = self.env;
        if let Some(timeout) = self.timeout {
            env.insert("exec_timeout".into(), timeout);
        }
        if let Some(concurrency) = self.concurrency {
            env.insert("max_inflight".into(), concurrency.to_string());
        }
        let mut labels = self.labels;
        let scale = [
            (
                crate::LABEL_SCALE_MIN,
                self.min_scale.map(|v| v.to_string()),
            ),
            (
                crate::LABEL_SCALE_MAX,
                self.max_scale.map(|v| v.to_string()),
            ),
            (crate::LABEL_SCALE_ZERO_DURATION, self.keep_alive),
        ];
        for (label, value) in scale {
            if let Some(value) = value {
                labels.insert(label.to_owned(), value);
            }
        }
        request.limits = self.memory.map(|memory| ResourceLimits {
            memory: Some(memory),
            cpu: None,
        });
        request.annotations = self.annotations;
        request.labels = labels;
        let component = match (self.wasm, self.process) {
            (Some(_), Some(_)) => {
                bail!("function {name}: set either `wasm` or `process`, not both")
            }
            (None, None) => {
                bail!("function {name}: set `wasm` (a component file) or `process` (a command)")
            }
            (Some(wasm), None) => {
                let path = base.join(wasm);
                request.image = path.display().to_string();
                Some(path)
            }
            (None, Some(process)) => {
                env.insert("mode".into(), self.mode.unwrap_or_else(|| "http".into()));
                request.env_process = Some(process);
                let dir = base.join(self.dir.unwrap_or_else(|| PathBuf::from(".")));
                let dir = dir
                    .canonicalize()
                    .with_context(|| format!("function {name}: directory {}", dir.display()))?;
                request.working_dir = Some(dir.display().to_string());
                request.image = format!("process:{}", dir.display());
                None
            }
        };
        request.env_vars = env;
        Ok(Deployment { request, component })
    }
}

fn base_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Reads a `baton.toml`.
pub fn read_manifest(path: &Path) -> anyhow::Result<Vec<Deployment>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_manifest(&text, path)
}

/// Reads the text of a `baton.toml` found at `path` (files it names are relative to it).
pub fn parse_manifest(text: &str, path: &Path) -> anyhow::Result<Vec<Deployment>> {
    let manifest: Manifest =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if manifest.functions.is_empty() {
        bail!("{}: no [functions.NAME] tables", path.display());
    }
    let base = base_of(path);
    manifest
        .functions
        .into_iter()
        .map(|(name, function)| {
            function
                .into_deployment(&name, &base)
                .with_context(|| format!("in {}", path.display()))
        })
        .collect()
}

/// OpenFaaS `stack.yml`: only the keys Baton uses; the rest (provider, lang, build options)
/// are ignored as faas-cli's build concerns.
#[derive(Debug, Deserialize)]
struct Stack {
    functions: BTreeMap<String, StackFunction>,
}

#[derive(Debug, Deserialize)]
struct StackFunction {
    /// The template the function is built from (`lang: python3-http`), when it has no
    /// `fprocess` of its own.
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    handler: Option<PathBuf>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    fprocess: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    limits: Option<ResourceLimits>,
}

/// A template as its `template.yml` describes it (OpenFaaS's file, with the watchdog's
/// settings that OpenFaaS keeps in the template's Dockerfile under `environment`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Template {
    /// The name functions give as `lang`.
    pub language: String,
    /// The command the watchdog runs, in the built function's directory.
    pub fprocess: String,
    /// The watchdog's settings (`mode`, `upstream_url`…); a function's own win.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// What `baton new` prints.
    #[serde(default)]
    pub welcome_message: String,
}

/// Reads a `template.yml`.
pub fn parse_template(text: &str) -> anyhow::Result<Template> {
    serde_yaml_ng::from_str(text).map_err(|e| anyhow::anyhow!("template.yml: {e}"))
}

/// A `stack.yml` function built from a template (what `faas-cli build` would build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateBuild {
    /// The function's name.
    pub name: String,
    /// Its `lang`.
    pub lang: String,
    /// Its `handler` directory, resolved.
    pub handler: PathBuf,
    /// The directory of the `stack.yml`, where `build/` goes.
    pub stack_dir: PathBuf,
}

/// What a build made: the directory the function runs in, and its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The assembled function: the template's server with the handler in `function/`.
    pub dir: PathBuf,
    /// The template it came from.
    pub template: Template,
}

/// Builds the functions of a `stack.yml` that name a template.
pub type Builder<'a> = &'a mut dyn FnMut(&TemplateBuild) -> anyhow::Result<Built>;

/// Reads an OpenFaaS `stack.yml` of process functions: `fprocess` (or `environment.fprocess`)
/// is the command, run in the `handler` directory; `environment.mode` picks the watchdog mode,
/// `classic` when unset, as OpenFaaS's classic templates do. A function without `fprocess`
/// that names a template (`lang`) is built by `build` and runs as its template says.
pub fn read_stack(path: &Path, build: Builder<'_>) -> anyhow::Result<Vec<Deployment>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_stack(&text, path, build)
}

/// Reads the text of a `stack.yml` found at `path` (handlers are relative to it).
pub fn parse_stack(text: &str, path: &Path, build: Builder<'_>) -> anyhow::Result<Vec<Deployment>> {
    let stack: Stack =
        serde_yaml_ng::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = base_of(path);
    let mut out = Vec::new();
    for (name, function) in stack.functions {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in function.environment {
            let text = match value {
                serde_yaml_ng::Value::String(s) => s,
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                other => bail!(
                    "{}: functions.{name}.environment.{key} is not a scalar: {other:?}",
                    path.display()
                ),
            };
            env.insert(key, text);
        }
        let handler = base.join(function.handler.unwrap_or_else(|| PathBuf::from(".")));
        let handler = handler.canonicalize().with_context(|| {
            format!(
                "{}: functions.{name}.handler {}",
                path.display(),
                handler.display()
            )
        })?;
        let (fprocess, dir) = match (
            function.fprocess.or_else(|| env.remove("fprocess")),
            function.lang,
        ) {
            (Some(fprocess), _) => (fprocess, handler),
            (None, Some(lang)) => {
                let built = build(&TemplateBuild {
                    name: name.clone(),
                    lang,
                    handler,
                    stack_dir: base.clone(),
                })
                .with_context(|| format!("{}: building functions.{name}", path.display()))?;
                for (key, value) in built.template.environment {
                    env.entry(key).or_insert(value);
                }
                (built.template.fprocess, built.dir)
            }
            (None, None) => bail!(
                "{}: functions.{name} has neither fprocess nor lang; Baton runs stack.yml functions as processes (set fprocess, or lang naming a template: `baton new --list`)",
                path.display()
            ),
        };
        env.entry("mode".into()).or_insert_with(|| "classic".into());
        let request = DeployRequest {
            service: name.clone(),
            image: function
                .image
                .unwrap_or_else(|| format!("process:{}", dir.display())),
            env_process: Some(fprocess),
            env_vars: env,
            labels: function.labels,
            annotations: function.annotations,
            limits: function.limits,
            working_dir: Some(dir.display().to_string()),
            ..DeployRequest::default()
        };
        out.push(Deployment {
            request,
            component: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_maps_to_openfaas_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.toml");
        std::fs::write(
            &path,
            "[functions.hello]\nwasm = \"hello.wasm\"\ntimeout = \"2s\"\nmemory = \"64Mi\"\nmax_scale = 3\n\n\
             [functions.count]\nprocess = \"python3 handler.py\"\nmode = \"classic\"\n",
        )
        .unwrap();
        let deployments = read_manifest(&path).unwrap();
        let count = &deployments[0].request;
        assert_eq!(count.env_process.as_deref(), Some("python3 handler.py"));
        assert_eq!(count.env_vars["mode"], "classic");
        let hello = &deployments[1];
        assert_eq!(
            hello.component.as_deref(),
            Some(dir.path().join("hello.wasm").as_path())
        );
        assert_eq!(hello.request.env_vars["exec_timeout"], "2s");
        assert_eq!(hello.request.labels[crate::LABEL_SCALE_MAX], "3");
        assert_eq!(
            hello.request.limits.as_ref().unwrap().memory.as_deref(),
            Some("64Mi")
        );
    }

    #[test]
    fn manifest_errors_name_the_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.toml");
        std::fs::write(&path, "[functions.x]\nwasm = \"a\"\nproces = \"typo\"\n").unwrap();
        let error = format!("{:#}", read_manifest(&path).unwrap_err());
        assert!(
            error.contains("baton.toml") && error.contains("proces"),
            "{error}"
        );
        std::fs::write(&path, "[functions.x]\nwasm = \"a\"\nprocess = \"b\"\n").unwrap();
        assert!(format!("{:#}", read_manifest(&path).unwrap_err()).contains("not both"));
    }

    #[test]
    fn stack_yml_process_functions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("wc")).unwrap();
        let path = dir.path().join("stack.yml");
        std::fs::write(
            &path,
            "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  wc:\n    lang: python3\n    handler: ./wc\n    image: wc:latest\n    environment:\n      fprocess: python3 index.py\n      exec_timeout: 5s\n    limits:\n      memory: 32Mi\n",
        )
        .unwrap();
        let mut no_templates = |b: &TemplateBuild| -> anyhow::Result<Built> {
            anyhow::bail!("unexpected build of {}", b.name)
        };
        let deployments = read_stack(&path, &mut no_templates).unwrap();
        let wc = &deployments[0].request;
        assert_eq!(wc.env_process.as_deref(), Some("python3 index.py"));
        assert_eq!(wc.env_vars["mode"], "classic");
        assert_eq!(wc.env_vars["exec_timeout"], "5s");
        assert!(!wc.env_vars.contains_key("fprocess"));
        assert!(wc.working_dir.as_deref().unwrap().ends_with("/wc"));
        std::fs::write(&path, "functions:\n  img:\n    image: nginx\n").unwrap();
        assert!(
            read_stack(&path, &mut no_templates)
                .unwrap_err()
                .to_string()
                .contains("neither fprocess nor lang")
        );
    }

    #[test]
    fn stack_yml_functions_named_by_template_run_as_built() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("greet")).unwrap();
        let path = dir.path().join("stack.yml");
        std::fs::write(
            &path,
            "functions:\n  greet:\n    lang: python3-http\n    handler: ./greet\n    environment:\n      write_timeout: 5s\n      mode: http\n",
        )
        .unwrap();
        let mut asked = Vec::new();
        let mut build = |b: &TemplateBuild| -> anyhow::Result<Built> {
            asked.push(b.clone());
            Ok(Built {
                dir: b.stack_dir.join("build").join(&b.name),
                template: parse_template(
                    "language: python3-http\nfprocess: python3 index.py\nenvironment:\n  mode: classic\n  upstream_url: http://127.0.0.1:5000\n",
                )?,
            })
        };
        let deployments = read_stack(&path, &mut build).unwrap();
        let greet = &deployments[0].request;
        assert_eq!(greet.env_process.as_deref(), Some("python3 index.py"));
        // The template's settings, under the function's own.
        assert_eq!(greet.env_vars["mode"], "http");
        assert_eq!(greet.env_vars["upstream_url"], "http://127.0.0.1:5000");
        assert_eq!(greet.env_vars["write_timeout"], "5s");
        assert!(
            greet
                .working_dir
                .as_deref()
                .unwrap()
                .ends_with("/build/greet")
        );
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].lang, "python3-http");
        assert!(asked[0].handler.ends_with("greet"));
        // A template that cannot be built is named in the error.
        let mut failing =
            |_: &TemplateBuild| -> anyhow::Result<Built> { anyhow::bail!("no template cobol") };
        let error = format!("{:#}", read_stack(&path, &mut failing).unwrap_err());
        assert!(
            error.contains("functions.greet") && error.contains("cobol"),
            "{error}"
        );
    }
}
