use wasi::http::types::{IncomingRequest, Method};

/// An HTTP request, read in full.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The method, upper case (`GET`, `POST`, …).
    pub method: String,
    /// The path and query as the function sees them: `/function/{name}` is already removed.
    pub path_with_query: String,
    /// Headers in arrival order; names are lower case.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
}

impl Request {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.path_with_query.split('?').next().unwrap_or("/")
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.path_with_query.split_once('?').map(|(_, q)| q)
    }

    /// The value of the query parameter `key` (no percent-decoding).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then_some(v)
        })
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn read(incoming: IncomingRequest) -> Result<Self, String> {
        let method = match incoming.method() {
            Method::Get => "GET".to_owned(),
            Method::Head => "HEAD".to_owned(),
            Method::Post => "POST".to_owned(),
            Method::Put => "PUT".to_owned(),
            Method::Delete => "DELETE".to_owned(),
            Method::Connect => "CONNECT".to_owned(),
            Method::Options => "OPTIONS".to_owned(),
            Method::Trace => "TRACE".to_owned(),
            Method::Patch => "PATCH".to_owned(),
            Method::Other(other) => other,
        };
        let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
        let headers = crate::incoming::header_list(incoming.headers());
        let body = incoming
            .consume()
            .map_err(|()| "request body already taken".to_owned())?;
        let bytes = crate::incoming::read_all(body, "request body")?;
        Ok(Request {
            method,
            path_with_query,
            headers,
            body: bytes,
        })
    }
}
