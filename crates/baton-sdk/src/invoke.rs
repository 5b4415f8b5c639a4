//! Calling another function through the gateway, as OpenFaaS functions do
//! (`http://gateway.openfaas:8080/function/{name}`).
//!
//! The gateway is the `gateway_url` environment variable when the deployment sets one (a
//! component run on another wasi:http host, pointed at a real gateway), else
//! `http://gateway:8080`, which Baton answers in-process without a TCP hop. Baton counts
//! each call's depth and refuses chains deeper than 16.

use crate::Response;
use crate::fetch::{Pending, start};

/// Where calls go when the deployment does not say.
pub const DEFAULT_GATEWAY: &str = "http://gateway:8080";

/// The gateway URL calls go to, without a trailing `/`.
pub fn gateway_url() -> String {
    let url = std::env::var("gateway_url").unwrap_or_default();
    let url = url.trim_end_matches('/');
    if url.is_empty() {
        DEFAULT_GATEWAY.to_string()
    } else {
        url.to_string()
    }
}

/// Calls `function` with `body` and waits for its whole response.
pub fn invoke(function: &str, body: &[u8]) -> Result<Response, String> {
    invoke_start(function, &[], body)?.wait()
}

/// Sends a call to `function` (a `POST` with `headers` and `body`) and returns at once; wait
/// on the [`Pending`] for the answer. Several started calls run at the same time.
pub fn invoke_start(
    function: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Pending, String> {
    if function.is_empty() || function.contains(['/', '?', '#']) {
        return Err(format!("{function:?} is not a function name"));
    }
    let url = format!("{}/function/{function}", gateway_url());
    start("POST", &url, headers, body)
}

/// Calls every `(function, body)` at once, with the same `headers`, and returns their
/// answers in order: the fan-out of a function that waits on several others.
pub fn invoke_all(
    calls: &[(&str, Vec<u8>)],
    headers: &[(&str, &str)],
) -> Vec<Result<Response, String>> {
    let started: Vec<Result<Pending, String>> = calls
        .iter()
        .map(|(function, body)| invoke_start(function, headers, body))
        .collect();
    started
        .into_iter()
        .map(|pending| pending.and_then(Pending::wait))
        .collect()
}
