//! Who may touch which namespace through the node-local API.
//!
//! Wasm functions never see this: the host binds their namespace into the guest interface.
//! Process functions get a token for their own namespace (`BATON_API_TOKEN`), revoked when
//! the function's sandboxes go; the node's admin token reaches every namespace (tools, tests,
//! benchmarks). A request without a known token is 401, a known token for another namespace
//! is 403.
//!
//! For S3 clients a capability is also a key pair: its access key id names it, its token is
//! the secret that signs (the node's admin token signs as [`ADMIN_ACCESS_KEY`]).

use crate::StateError;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The access key id the node's admin token signs S3 requests as.
pub const ADMIN_ACCESS_KEY: &str = "BATONADMIN";

/// The node's grants; shared by the API and whoever starts processes.
#[derive(Default)]
pub struct Capabilities {
    admin: Option<String>,
    grants: RwLock<HashMap<String, Arc<str>>>,
    /// Access key id → token, for S3 signatures.
    access_keys: RwLock<HashMap<String, String>>,
}

/// A token for one namespace; revoked when dropped.
pub struct Capability {
    token: String,
    access_key: String,
    issuer: Arc<Capabilities>,
}

impl Capability {
    /// The bearer token the holder sends (and the secret its S3 requests are signed with).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The access key id its S3 requests name.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }
}

impl Drop for Capability {
    fn drop(&mut self) {
        self.issuer
            .grants
            .write()
            .expect("grants lock")
            .remove(&self.token);
        self.issuer
            .access_keys
            .write()
            .expect("access keys lock")
            .remove(&self.access_key);
    }
}

/// Who signed an S3 request: the secret to check its signature with, and the namespace it
/// may reach (`None`: every one, the node's admin).
#[derive(Debug, Clone)]
pub struct Signer {
    /// The secret key.
    pub secret: String,
    /// The namespace, or `None` for the admin.
    pub namespace: Option<Arc<str>>,
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capability(..)")
    }
}

impl Capabilities {
    /// Grants that `admin` may use everything; `None` leaves only per-namespace tokens.
    pub fn new(admin: Option<String>) -> Arc<Self> {
        Arc::new(Capabilities {
            admin: admin.filter(|t| !t.is_empty()),
            grants: RwLock::new(HashMap::new()),
            access_keys: RwLock::new(HashMap::new()),
        })
    }

    /// A fresh token for `namespace` (128 random bits), with an access key id naming it.
    pub fn grant(self: &Arc<Self>, namespace: &str) -> Capability {
        let token = format!("ns-{}", uuid::Uuid::new_v4().simple());
        // 20 characters, as AWS access key ids are.
        let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let access_key = format!("BATON{}", &id[..15]);
        self.grants
            .write()
            .expect("grants lock")
            .insert(token.clone(), namespace.into());
        self.access_keys
            .write()
            .expect("access keys lock")
            .insert(access_key.clone(), token.clone());
        Capability {
            token,
            access_key,
            issuer: self.clone(),
        }
    }

    /// Who an S3 access key id stands for, if anyone.
    pub fn signer(&self, access_key: &str) -> Option<Signer> {
        if let Some(admin) = &self.admin
            && constant_time_eq(access_key.as_bytes(), ADMIN_ACCESS_KEY.as_bytes())
        {
            return Some(Signer {
                secret: admin.clone(),
                namespace: None,
            });
        }
        let token = self
            .access_keys
            .read()
            .expect("access keys lock")
            .get(access_key)?
            .clone();
        let namespace = self
            .grants
            .read()
            .expect("grants lock")
            .get(&token)?
            .clone();
        Some(Signer {
            secret: token,
            namespace: Some(namespace),
        })
    }

    /// Checks a request to `path` whose namespace is the segment after `prefix` (e.g.
    /// `/v1/state/`; a path without it is node-wide, admin only) against its `Authorization`
    /// header.
    pub fn authorize_path(
        &self,
        headers: &axum::http::HeaderMap,
        path: &str,
        prefix: &str,
    ) -> Result<(), StateError> {
        let namespace = path
            .strip_prefix(prefix)
            .map(|rest| rest.split('/').next().unwrap_or_default());
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.authorize(header, namespace)
    }

    /// Checks a request's `Authorization` header against `namespace` (`None`: node-wide
    /// operations, admin only).
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<(), StateError> {
        let Some(token) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err(StateError::Unauthorized);
        };
        if self
            .admin
            .as_deref()
            .is_some_and(|admin| constant_time_eq(admin.as_bytes(), token.as_bytes()))
        {
            return Ok(());
        }
        let grants = self.grants.read().expect("grants lock");
        let Some(granted) = grants.get(token) else {
            return Err(StateError::Unauthorized);
        };
        match namespace {
            Some(namespace) if namespace == &**granted => Ok(()),
            Some(namespace) => Err(StateError::Forbidden(format!(
                "this function's token is for namespace {:?}, not {namespace:?} (share one with the label baton.namespace)",
                &**granted
            ))),
            None => Err(StateError::Forbidden(
                "only the node's admin token may do this".into(),
            )),
        }
    }
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_reach_their_namespace_only_and_die_with_their_holder() {
        let caps = Capabilities::new(Some("admin-secret".into()));
        let counter = caps.grant("counter");
        let bearer = format!("Bearer {}", counter.token());
        /// (Authorization header, namespace asked for, expected status).
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<(), u16>);
        let cases: &[Case] = &[
            (None, Some("counter"), Err(401)),
            (Some("Bearer nope"), Some("counter"), Err(401)),
            (Some(&bearer), Some("counter"), Ok(())),
            (Some(&bearer), Some("other"), Err(403)),
            (Some(&bearer), None, Err(403)),
            (Some("Bearer admin-secret"), Some("anything"), Ok(())),
            (Some("Bearer admin-secret"), None, Ok(())),
            (Some("admin-secret"), None, Err(401)),
        ];
        for (header, namespace, expected) in cases {
            let got = caps
                .authorize(*header, *namespace)
                .map_err(|e| e.http_status());
            assert_eq!(got, *expected, "{header:?} on {namespace:?}");
        }
        let signer = caps.signer(counter.access_key()).unwrap();
        assert_eq!(signer.secret, counter.token());
        assert_eq!(signer.namespace.as_deref(), Some("counter"));
        assert!(caps.signer(ADMIN_ACCESS_KEY).unwrap().namespace.is_none());
        assert!(caps.signer("BATONNOSUCHKEY").is_none());
        let access_key = counter.access_key().to_string();
        drop(counter);
        assert!(caps.signer(&access_key).is_none());
        assert_eq!(
            caps.authorize(Some(&bearer), Some("counter"))
                .map_err(|e| e.http_status()),
            Err(401)
        );
    }
}
