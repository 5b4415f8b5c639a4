//! Functions follow their owner: what a member offers (its functions labelled
//! `baton.federate=true`) is installed here, its component fetched by digest over the
//! federation channel and checked against it, and compiled before this site reports it, so no
//! request is forwarded here before it can run. What the owner stops offering is removed.

use crate::agent::{Federation, Peer};
use crate::site::{FINGERPRINT_LABEL, ORIGIN_LABEL};
use crate::wire::{COMPONENT_PREFIX, Offer};
use bytes::Bytes;
use ring::digest::{SHA256, digest};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Longest fetching a component may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest component fetched: the largest a site accepts in a deployment
/// (`baton_control::MAX_COMPONENT_BYTES`).
const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// What to do about one offer, given what this site has of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Already installed as offered.
    Keep,
    /// Install (or update) it.
    Install,
    /// This site has its own function of that name: leave it, warn.
    Conflict,
}

/// What this site has of a name: nothing, its own function, or one installed from `origin`
/// with `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Have {
    /// No function of that name.
    Nothing,
    /// A function deployed here (federated or not).
    Own,
    /// Installed from an offer.
    Installed {
        /// The offering site's id.
        origin: String,
        /// The offer's fingerprint.
        fingerprint: String,
    },
}

/// The decision for an offer of `fingerprint` from `origin`.
pub fn decide(have: &Have, origin: &str, fingerprint: &str) -> Action {
    match have {
        Have::Nothing => Action::Install,
        Have::Own => Action::Conflict,
        Have::Installed {
            origin: o,
            fingerprint: f,
        } if o == origin => match f == fingerprint {
            true => Action::Keep,
            false => Action::Install,
        },
        Have::Installed { .. } => Action::Conflict,
    }
}

fn have(federation: &Federation, name: &str) -> Have {
    if let Some(function) = federation.function(name) {
        let local = function.local.read().unwrap();
        return match &local.origin {
            Some(origin) => Have::Installed {
                origin: origin.clone(),
                fingerprint: local.fingerprint.clone(),
            },
            None => Have::Own,
        };
    }
    match federation.site.has(name) {
        true => Have::Own,
        false => Have::Nothing,
    }
}

/// Takes in `from`'s offers: installs what is new or changed, removes what it no longer
/// offers. The work runs in the background; one install per function at a time.
pub(crate) fn offered(federation: &Arc<Federation>, from: &Arc<Peer>, offers: &[Offer]) {
    let origin = from.id.to_string();
    let names: HashSet<String> = offers.iter().map(|o| o.name.clone()).collect();
    for offer in offers {
        match decide(&have(federation, &offer.name), &origin, &offer.fingerprint) {
            Action::Keep => {}
            Action::Conflict => {
                tracing::debug!(function = %offer.name, peer = %from.id, "offered function not installed: this site has its own of that name");
            }
            Action::Install => {
                if !federation
                    .installing
                    .lock()
                    .unwrap()
                    .insert(offer.name.clone())
                {
                    continue;
                }
                let (federation, from, offer) = (federation.clone(), from.clone(), offer.clone());
                tokio::spawn(async move {
                    let name = offer.name.clone();
                    match install(&federation, &from, offer).await {
                        Ok(()) => {
                            // Reported from the next round on, not the next period's.
                            federation.refresh_functions();
                            tracing::info!(function = %name, peer = %from.id, "installed a function a peer offered")
                        }
                        Err(error) => {
                            tracing::warn!(function = %name, peer = %from.id, %error, "could not install a function a peer offered")
                        }
                    }
                    federation.installing.lock().unwrap().remove(&name);
                });
            }
        }
    }
    let gone: Vec<String> = federation
        .functions
        .read()
        .unwrap()
        .values()
        .filter_map(|f| {
            let local = f.local.read().unwrap();
            (local.origin.as_deref() == Some(origin.as_str()) && !names.contains(&local.name))
                .then(|| local.name.clone())
        })
        .collect();
    for name in gone {
        if !federation.installing.lock().unwrap().insert(name.clone()) {
            continue;
        }
        let federation = federation.clone();
        let peer = from.id;
        tokio::spawn(async move {
            match federation.site.remove(&name).await {
                Ok(()) => {
                    federation.functions.write().unwrap().remove(&name);
                    tracing::info!(function = %name, %peer, "removed a function its owner no longer offers");
                }
                Err(error) => {
                    tracing::warn!(function = %name, %peer, %error, "could not remove a function its owner no longer offers")
                }
            }
            federation.installing.lock().unwrap().remove(&name);
        });
    }
}

async fn install(federation: &Federation, from: &Peer, offer: Offer) -> Result<(), String> {
    let mut spec = offer.spec;
    let labels = spec
        .get_mut("labels")
        .and_then(|l| l.as_object_mut())
        .ok_or("the offered spec has no labels")?;
    labels.insert(ORIGIN_LABEL.into(), from.id.to_string().into());
    labels.insert(FINGERPRINT_LABEL.into(), offer.fingerprint.clone().into());
    let component = match spec
        .pointer("/runtime/component")
        .and_then(|c| c.as_str())
        .map(str::to_owned)
    {
        Some(wanted) => Some(fetch(from, &wanted).await?),
        None => None,
    };
    federation.site.install(spec, component).await
}

/// The component `wanted` (its SHA-256, hex) from `from`, checked against its digest.
async fn fetch(from: &Peer, wanted: &str) -> Result<Bytes, String> {
    if wanted.len() != 64 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{wanted:?} is not a SHA-256"));
    }
    let request = http::Request::get(format!("{COMPONENT_PREFIX}{wanted}"))
        .body(Bytes::new())
        .expect("a valid request");
    let response = from
        .link
        .send(&from.address(), request, FETCH_TIMEOUT, MAX_COMPONENT_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!(
            "fetching component {wanted}: {} {}",
            response.status(),
            String::from_utf8_lossy(response.body()).trim()
        ));
    }
    let got = hex::encode(digest(&SHA256, response.body()).as_ref());
    if got != wanted {
        return Err(format!("component {wanted} arrived as {got}: refused"));
    }
    Ok(response.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_is_installed_kept_updated_or_left_alone() {
        let installed = |origin: &str, fingerprint: &str| Have::Installed {
            origin: origin.into(),
            fingerprint: fingerprint.into(),
        };
        for (have, action) in [
            (Have::Nothing, Action::Install),
            (Have::Own, Action::Conflict),
            (installed("a", "x"), Action::Keep),
            (installed("a", "old"), Action::Install),
            (installed("b", "x"), Action::Conflict),
        ] {
            assert_eq!(decide(&have, "a", "x"), action, "{have:?}");
        }
    }
}
