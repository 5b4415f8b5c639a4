//! A component written against `wasi:config/store` alone, as for Spin 3: `/get?key=K` answers
//! the value of K (404 when there is none), `/keys` every key, one per line.
use baton_sdk::{Request, Response};

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "baton-test:config-reader/reader",
        generate_all,
    });
}

use bindings::wasi::config::store;

fn handle(request: Request) -> Response {
    match request.path() {
        "/get" => {
            let key = request.query_param("key").unwrap_or_default();
            match store::get(&key) {
                Ok(Some(value)) => Response::text(200, value),
                Ok(None) => Response::text(404, format!("no {key}\n")),
                Err(error) => Response::text(500, format!("{error:?}\n")),
            }
        }
        "/keys" => match store::get_all() {
            Ok(pairs) => {
                let keys: Vec<String> = pairs.into_iter().map(|(k, _)| k).collect();
                Response::text(200, keys.join("\n"))
            }
            Err(error) => Response::text(500, format!("{error:?}\n")),
        },
        _ => Response::text(404, "routes: /get?key=K, /keys\n"),
    }
}

baton_sdk::http_handler!(handle);
