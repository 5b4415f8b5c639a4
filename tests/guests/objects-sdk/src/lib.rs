//! Objects through `baton_sdk::objects`: `/put?bucket=B&key=K` (the body is the object; makes
//! the bucket), `/get?bucket=B&key=K` (404 when absent), `/keys?bucket=B` (one per line),
//! `/delete?bucket=B&key=K`.
use baton_sdk::objects::Bucket;
use baton_sdk::{Request, Response};

fn handle(request: Request) -> Response {
    let bucket = request.query_param("bucket").unwrap_or_default().to_string();
    let key = request.query_param("key").unwrap_or_default().to_string();
    let result: Result<Response, String> = (|| {
        Ok(match request.path() {
            "/put" => {
                Bucket::create(&bucket)?.put(&key, &request.body)?;
                Response::text(200, format!("stored {} bytes\n", request.body.len()))
            }
            "/get" => match Bucket::open(&bucket)?.get(&key)? {
                Some(bytes) => Response::new(200, bytes),
                None => Response::text(404, format!("no {key}\n")),
            },
            "/keys" => Response::text(200, Bucket::open(&bucket)?.keys()?.join("\n")),
            "/delete" => {
                Bucket::open(&bucket)?.delete(&key)?;
                Response::text(200, "deleted\n")
            }
            _ => Response::text(404, "routes: /put /get /keys /delete\n"),
        })
    })();
    result.unwrap_or_else(|error| Response::text(500, format!("{error}\n")))
}

baton_sdk::http_handler!(handle);
