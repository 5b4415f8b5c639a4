//! A component written against `wasi:keyvalue@0.2.0-draft` alone, as a wasmCloud component
//! keeps its data. Every route takes `bucket=B` (empty: the default store):
//! `/get?key=K` (404 when absent), `/set?key=K` (the body is the value), `/delete?key=K`,
//! `/exists?key=K`, `/keys` (every page, one key per line), `/incr?key=K&by=N`,
//! `/many?keys=A,B`, `/set-many?pairs=A=1,B=2`, `/delete-many?keys=A,B`.
use baton_sdk::{Request, Response};

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "baton-test:kv-wasmcloud/kv",
        generate_all,
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

fn handle(request: Request) -> Response {
    let bucket = match store::open(request.query_param("bucket").unwrap_or_default()) {
        Ok(bucket) => bucket,
        Err(error) => return Response::text(500, format!("open: {error:?}\n")),
    };
    let key = request.query_param("key").unwrap_or_default().to_string();
    let list = |name: &str| -> Vec<String> {
        let value = request.query_param(name).unwrap_or_default();
        value.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect()
    };
    let result: Result<Response, store::Error> = (|| {
        Ok(match request.path() {
            "/get" => match bucket.get(&key)? {
                Some(value) => Response::new(200, value),
                None => Response::text(404, format!("no {key}\n")),
            },
            "/set" => {
                bucket.set(&key, &request.body)?;
                Response::text(200, "ok\n")
            }
            "/delete" => {
                bucket.delete(&key)?;
                Response::text(200, "deleted\n")
            }
            "/exists" => Response::text(200, bucket.exists(&key)?.to_string()),
            "/keys" => {
                let mut keys = Vec::new();
                let mut cursor = None;
                loop {
                    let page = bucket.list_keys(cursor)?;
                    keys.extend(page.keys);
                    match page.cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                Response::text(200, keys.join("\n"))
            }
            "/incr" => {
                let by = request.query_param("by").and_then(|b| b.parse().ok()).unwrap_or(1);
                Response::text(200, atomics::increment(&bucket, &key, by)?.to_string())
            }
            "/many" => {
                let lines: Vec<String> = batch::get_many(&bucket, &list("keys"))?
                    .into_iter()
                    .zip(list("keys"))
                    .map(|(found, key)| match found {
                        Some((_, value)) => format!("{key}={}", String::from_utf8_lossy(&value)),
                        None => format!("{key}=-"),
                    })
                    .collect();
                Response::text(200, lines.join("\n"))
            }
            "/set-many" => {
                let pairs: Vec<(String, Vec<u8>)> = list("pairs")
                    .iter()
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect();
                batch::set_many(&bucket, &pairs)?;
                Response::text(200, "ok\n")
            }
            "/delete-many" => {
                batch::delete_many(&bucket, &list("keys"))?;
                Response::text(200, "deleted\n")
            }
            _ => Response::text(404, "routes: /get /set /delete /exists /keys /incr /many /set-many /delete-many\n"),
        })
    })();
    result.unwrap_or_else(|error| Response::text(500, format!("{error:?}\n")))
}

baton_sdk::http_handler!(handle);
