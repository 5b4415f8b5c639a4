//! `wasi:config/store` for components: the function's environment and its secrets, read by
//! key. Served at the versions components are built against: `0.2.0-draft` (wasmCloud),
//! `0.2.0-draft-2024-09-27` (Spin 3) and `0.2.0-rc.1` (wasmtime's own), all from the same
//! values (the WIT files are in `crates/baton-runtime/wit/`).

use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

/// One function's values: its environment, then its secrets (a secret wins over a variable of
/// the same name); made once per prepared function, shared by its instances.
pub(crate) type ConfigValues = Arc<BTreeMap<String, String>>;

/// The values `spec` gives: its environment and the secrets delivered with it (those whose
/// value is text; a binary secret is left out, with a warning).
pub(crate) fn values(
    spec: &baton_api::FunctionSpec,
    secrets: Option<&baton_api::SecretValues>,
) -> ConfigValues {
    let mut values: BTreeMap<String, String> = spec.env.clone();
    for (name, value) in secrets.map(|s| &s.0).into_iter().flatten() {
        match String::from_utf8(value.clone()) {
            Ok(text) => {
                values.insert(name.clone(), text);
            }
            Err(_) => tracing::warn!(
                function = spec.name.as_str(),
                secret = %name,
                "a binary secret is not readable through wasi:config"
            ),
        }
    }
    Arc::new(values)
}

/// A store's view of its function's values.
pub(crate) struct ConfigView<'a>(pub(crate) &'a BTreeMap<String, String>);

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = ConfigView<'a>;
}

macro_rules! version {
    ($module:ident, $path:literal) => {
        mod $module {
            wasmtime::component::bindgen!({
                path: $path,
                world: "wasi:config/imports",
                imports: { default: trappable },
            });
            use wasi::config::store;

            impl store::Host for super::ConfigView<'_> {
                fn get(
                    &mut self,
                    key: String,
                ) -> wasmtime::Result<Result<Option<String>, store::Error>> {
                    Ok(Ok(self.0.get(&key).cloned()))
                }

                fn get_all(
                    &mut self,
                ) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
                    Ok(Ok(self
                        .0
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()))
                }
            }

            pub(super) fn add<T: 'static>(
                linker: &mut wasmtime::component::Linker<T>,
                get: fn(&mut T) -> super::ConfigView<'_>,
            ) -> wasmtime::Result<()> {
                store::add_to_linker::<T, super::HasConfig>(linker, get)
            }
        }
    };
}

version!(draft, "wit/wasi-config@0.2.0-draft");
version!(draft_2024_09_27, "wit/wasi-config@0.2.0-draft-2024-09-27");
version!(rc1, "wit/wasi-config@0.2.0-rc.1");

/// Adds every served version of `wasi:config/store` to `linker`.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ConfigView<'_>,
) -> wasmtime::Result<()> {
    draft::add(linker, get)?;
    draft_2024_09_27::add(linker, get)?;
    rc1::add(linker, get)
}
