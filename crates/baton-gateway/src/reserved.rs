//! Headers only the platform sets: a federation peer's stamp (`X-Baton-Federation-*`) and the
//! serving site (`X-Baton-Site`). A client's request carrying any of them claims to come from
//! the federation, which reaches a site on its own authenticated listener, never here: it is
//! refused with 403 and counted, and nothing runs.

use crate::Shared;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Whether `name` (lowercase) is a header only the platform sets.
pub fn reserved(name: &str) -> bool {
    name == "x-baton-site" || name.starts_with("x-baton-federation-")
}

pub(crate) async fn refuse(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(name) = request.headers().keys().find(|h| reserved(h.as_str())) {
        shared.metrics.reserved_refused();
        tracing::warn!(header = %name, "refused a client request carrying a federation header");
        return (
            http::StatusCode::FORBIDDEN,
            format!("{name} is set by federation peers only, never by clients\n"),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_headers_are_reserved_and_others_not() {
        for (name, is) in [
            ("x-baton-site", true),
            ("x-baton-federation-origin", true),
            ("x-baton-federation-anything", true),
            ("x-baton-cold-start", false),
            ("x-call-id", false),
        ] {
            assert_eq!(reserved(name), is, "{name}");
        }
    }
}
