//! Who may touch which namespace through the node-local API.
//!
//! Wasm functions never see this: the host binds their namespace into the guest interface.
//! Process functions get a token for their own namespace (`BATON_API_TOKEN`), revoked when
//! the function's sandboxes go; the node's admin token reaches every namespace (tools, tests,
//! benchmarks). A request without a known token is 401, a known token for another namespace
//! is 403.

use crate::StateError;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The node's grants; shared by the API and whoever starts processes.
#[derive(Default)]
pub struct Capabilities {
    admin: Option<String>,
    grants: RwLock<HashMap<String, Arc<str>>>,
}

/// A token for one namespace; revoked when dropped.
pub struct Capability {
    token: String,
    issuer: Arc<Capabilities>,
}

impl Capability {
    /// The bearer token the holder sends.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Capability {
    fn drop(&mut self) {
        self.issuer
            .grants
            .write()
            .expect("grants lock")
            .remove(&self.token);
    }
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
        })
    }

    /// A fresh token for `namespace` (128 random bits).
    pub fn grant(self: &Arc<Self>, namespace: &str) -> Capability {
        let token = format!("ns-{}", uuid::Uuid::new_v4().simple());
        self.grants
            .write()
            .expect("grants lock")
            .insert(token.clone(), namespace.into());
        Capability {
            token,
            issuer: self.clone(),
        }
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
        drop(counter);
        assert_eq!(
            caps.authorize(Some(&bearer), Some("counter"))
                .map_err(|e| e.http_status()),
            Err(401)
        );
    }
}
