//! A component written against the standard interfaces alone: `wasi:config/store` as for
//! Spin 3 (`/get?key=K` answers the value of K, 404 when there is none; `/keys` every key, one
//! per line) and `wasi:logging` as for wasmCloud (`/log?message=M` logs M at warn).
use baton_sdk::{Request, Response};

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "baton-test:config-reader/reader",
        generate_all,
    });
}

use bindings::wasi::config::store;
use bindings::wasi::logging::logging;

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
        "/log" => {
            let message = request.query_param("message").unwrap_or_default();
            logging::log(logging::Level::Warn, "reader", &message);
            Response::text(200, "logged\n")
        }
        _ => Response::text(404, "routes: /get?key=K, /keys, /log?message=M\n"),
    }
}

baton_sdk::http_handler!(handle);
