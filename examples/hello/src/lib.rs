//! The smallest Baton function: greets whoever `?name=` names.
use baton_sdk::{Request, Response};

fn handle(request: Request) -> Response {
    let name = request.query_param("name").filter(|n| !n.is_empty()).unwrap_or("world");
    Response::text(200, format!("Hello, {name}!\n"))
}

baton_sdk::http_handler!(handle);
