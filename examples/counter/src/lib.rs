//! A counter shared by every instance on every node: `POST /function/counter/{name}?by=N`
//! adds N (default 1), `GET /function/counter/{name}` reads it. The name defaults to `hits`.
use baton_sdk::state::Counter;
use baton_sdk::{Request, Response};

fn handle(request: Request) -> Response {
    let name = request.path().trim_start_matches('/');
    let counter = Counter::new(if name.is_empty() { "hits" } else { name });
    let added = match request.method.as_str() {
        "GET" | "HEAD" => None,
        _ => match request.query_param("by").unwrap_or("1").parse::<i64>() {
            Ok(by) => Some(by),
            Err(_) => return Response::text(400, "`by` must be an integer\n"),
        },
    };
    let result = added
        .map(|by| counter.add(by).map(|_| ()))
        .unwrap_or(Ok(()))
        .and_then(|()| counter.value());
    match result {
        Ok(value) => Response::json(200, format!("{{\"value\":{value}}}\n")),
        Err(baton_sdk::state::Error::Unavailable(message)) => Response::text(503, message + "\n"),
        Err(error) => Response::text(400, format!("{error}\n")),
    }
}

baton_sdk::http_handler!(handle);
