//! Outgoing HTTP requests from a function: to other functions through the platform
//! (`http://gateway:8080/function/{name}`, answered in-process) or to the hosts the
//! function's deployment allows (label `baton.allowed-hosts`).
//!
//! [`start`] sends a request and returns at once, so a function can have several in flight
//! (a fan-out) and [`Pending::wait`] for each; [`fetch`] is the two in one.

use crate::Response;
use wasi::http::outgoing_handler::{self, FutureIncomingResponse};
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// A request sent whose response has not been read yet.
pub struct Pending {
    future: FutureIncomingResponse,
    /// Why writing the body failed, reported if the response does not say more.
    written: Result<(), String>,
}

/// Sends `method url` with `headers` and `body` and reads the whole response. The error is
/// the host's reason in words, e.g. `HTTP-request-denied` when the policy refuses the host.
pub fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    start(method, url, headers, body)?.wait()
}

/// Sends `method url` with `headers` and `body` without waiting for the response: the host
/// runs it while the function goes on (with other requests, say).
pub fn start(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Pending, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        _ => return Err(format!("{url:?} is not an http:// or https:// URL")),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries).map_err(|e| format!("bad header: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let ok = request.set_method(&method).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(path)).is_ok();
    if !ok {
        return Err(format!("{url:?} is not a valid request target"));
    }
    let outgoing = request
        .body()
        .map_err(|()| "request body unavailable".to_string())?;
    let future = outgoing_handler::handle(request, None).map_err(|e| e.to_string())?;
    // The host may refuse the request (or the peer hang up) while the body is still being
    // written: then the response future says why, which is the error worth reporting.
    let mut written = Ok(());
    {
        let stream = outgoing
            .write()
            .map_err(|()| "request body stream unavailable".to_string())?;
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                written = Err(format!("writing the request body: {e:?}"));
                break;
            }
        }
    }
    let finished = OutgoingBody::finish(outgoing, None).map_err(|e| e.to_string());
    Ok(Pending {
        future,
        written: written.and(finished),
    })
}

impl Pending {
    /// Blocks until the response has arrived and reads it whole.
    pub fn wait(self) -> Result<Response, String> {
        let incoming = loop {
            match self.future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(code.to_string()),
                Some(Err(())) => return Err("response already taken".to_string()),
                None => self.future.subscribe().block(),
            }
        };
        self.written?;
        let status = incoming.status();
        let headers = crate::incoming::header_list(incoming.headers());
        let body = incoming
            .consume()
            .map_err(|()| "response body already taken".to_string())?;
        let bytes = crate::incoming::read_all(body, "the response")?;
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}
