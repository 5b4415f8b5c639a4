//! OpenFaaS namespaces, as Baton has them: one, [`NAMESPACE`]. `GET /system/namespaces`
//! lists it; a `?namespace=` naming it (or empty, as faas-cli sends by default) is accepted
//! everywhere, and any other is refused with 400 rather than ignored, so a client never acts
//! on a namespace it did not ask for.

use crate::error::error_response;
use axum::Json;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use baton_api::{ApiError, NAMESPACE};

/// `GET /system/namespaces`.
pub(crate) async fn list() -> Json<[&'static str; 1]> {
    Json([NAMESPACE])
}

/// The namespace a query names other than Baton's, if any; the first `namespace=` counts, as
/// with Go's `Query().Get` that OpenFaaS's gateway uses.
fn foreign_namespace(query: Option<&str>) -> Option<String> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("namespace="))?;
    (!value.is_empty() && value != NAMESPACE).then(|| value.to_owned())
}

/// Refuses requests for another namespace.
pub(crate) async fn only_ours(request: Request, next: Next) -> Response {
    match foreign_namespace(request.uri().query()) {
        None => next.run(request).await,
        Some(other) => error_response(&ApiError::bad_request(format!(
            "namespace {other:?} does not exist: this gateway has one namespace, {NAMESPACE:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_namespace_is_foreign() {
        let cases = [
            (None, None),
            (Some(""), None),
            (Some("tail=1"), None),
            (Some("namespace="), None),
            (Some("namespace=baton&tail=1"), None),
            (Some("name=x&namespace=openfaas-fn"), Some("openfaas-fn")),
            (Some("namespace=a&namespace=baton"), Some("a")),
            (Some("xnamespace=a"), None),
        ];
        for (query, expected) in cases {
            assert_eq!(foreign_namespace(query).as_deref(), expected, "{query:?}");
        }
    }
}
