//! Echoes the request body, and tells the method and path it saw in headers.
use baton_sdk::{Request, Response};

fn handle(request: Request) -> Response {
    let content_type =
        request.header("content-type").unwrap_or("application/octet-stream").to_owned();
    Response::new(200, request.body.clone())
        .with_header("content-type", &content_type)
        .with_header("x-echo-method", &request.method)
        .with_header("x-echo-path", &request.path_with_query)
}

baton_sdk::http_handler!(handle);
