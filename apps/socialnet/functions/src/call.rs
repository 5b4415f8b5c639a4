//! Calling the application's other functions through the gateway, and reading their replies
//! as the original's `ds_util.invoke` did.

use serde_json::Value;
use serde_json::value::RawValue;
use socialnet_logic::classic;
use std::collections::BTreeMap;

/// The header that routes every call of one post to one place (a cluster gateway's
/// `consistent-hash` load balancing hashes it), so the post's staging area is not split
/// across replicas.
pub const AFFINITY_HEADER: &str = "x-baton-affinity";

fn url(function: &str) -> String {
    format!("{}/function/{function}", baton_sdk::gateway_url())
}

/// A reply as `ds_util.invoke` gives it: the callee's JSON with `http_status_code`.
pub fn read(function: &str, reply: Result<baton_sdk::Response, String>) -> Value {
    match reply {
        Ok(response) => classic::read_reply(response.status, &response.body, &url(function)),
        Err(message) => serde_json::json!({
            "status": "UnknowError",
            "url": url(function),
            "http_status_code": 502,
            "message": message,
        }),
    }
}

/// Calls `function` with `body`; the reply as `ds_util.invoke` gives it.
pub fn call(function: &str, body: &Value, affinity: Option<&str>) -> Value {
    calls(&[(function, body.clone())], affinity).remove(0)
}

/// Calls every `(function, body)` at once and returns their replies in order.
pub fn calls(requests: &[(&str, Value)], affinity: Option<&str>) -> Vec<Value> {
    let headers: Vec<(&str, &str)> = match affinity {
        Some(key) => vec![("content-type", "application/json"), (AFFINITY_HEADER, key)],
        None => vec![("content-type", "application/json")],
    };
    let bodies: Vec<(&str, Vec<u8>)> = requests
        .iter()
        .map(|(function, body)| (*function, body.to_string().into_bytes()))
        .collect();
    baton_sdk::invoke_all(&bodies, &headers)
        .into_iter()
        .zip(requests)
        .map(|(reply, (function, _))| read(function, reply))
        .collect()
}

/// Calls `function` and returns its raw reply (status and body), for functions that pass a
/// callee's answer on verbatim.
pub fn call_raw(function: &str, body: &Value) -> Result<baton_sdk::Response, String> {
    baton_sdk::invoke_all(
        &[(function, body.to_string().into_bytes())],
        &[("content-type", "application/json")],
    )
    .remove(0)
}

/// Calls `function` for a reply to pass on: its response when it answers 200 (read its
/// fields with [`raw_field`]), otherwise its reply as [`call`] reads it, to report.
pub fn call_passing(function: &str, body: &Value) -> Result<baton_sdk::Response, Value> {
    match call_raw(function, body) {
        Ok(response) if response.status == 200 => Ok(response),
        other => Err(read(function, other)),
    }
}

/// The top-level field `name` of the JSON object `body`, as written: passed on without
/// being parsed into a tree and written again.
pub fn raw_field<'a>(body: &'a [u8], name: &str) -> Option<&'a RawValue> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(body).ok()?;
    fields.get(name).copied()
}

/// Whether a reply read by [`call`] succeeded.
pub fn succeeded(reply: &Value) -> bool {
    reply.get("http_status_code").and_then(Value::as_u64) == Some(200)
}
