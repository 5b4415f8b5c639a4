//! Reading what arrives, requests and responses alike: header lists and whole bodies.

use wasi::http::types::{Fields, IncomingBody};
use wasi::io::streams::StreamError;

/// Headers as (name, value) pairs, values decoded lossily as UTF-8.
pub(crate) fn header_list(fields: Fields) -> Vec<(String, String)> {
    fields
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// The whole of `body`; `what` names it in errors ("request body", "response").
pub(crate) fn read_all(body: IncomingBody, what: &str) -> Result<Vec<u8>, String> {
    let stream = body
        .stream()
        .map_err(|()| format!("{what} stream unavailable"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading {what}: {}", e.to_debug_string()));
            }
        }
    }
    Ok(bytes)
}
