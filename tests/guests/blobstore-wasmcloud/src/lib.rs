//! A component written against `wasi:blobstore@0.2.0-draft` alone, as a wasmCloud component
//! keeps its files. Every route takes `c=CONTAINER`:
//! `/create`, `/exists`, `/drop` (the container), `/put?key=K` (the body is the object,
//! written through an output-stream), `/get?key=K[&start=S&end=E]` (404 when absent; read
//! as an input-stream with `&stream=1`), `/has?key=K`, `/info?key=K`, `/list` (one name per
//! line, read in pages of 2), `/rm?key=K`, `/clear`, `/copy?key=K&to=C2&as=K2`,
//! `/move?key=K&to=C2&as=K2`; `/transform?key=K&to=C2` reads an object whole, maps every
//! byte and writes the result under the same key in `C2` (the objects benchmark's I/O-bound
//! function).
use baton_sdk::{Request, Response};

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "baton-test:blobstore-wasmcloud/blobs",
        generate_all,
    });
}

use bindings::wasi::blobstore::blobstore;
use bindings::wasi::blobstore::types::{IncomingValue, ObjectId, OutgoingValue};

fn handle(request: Request) -> Response {
    let name = request.query_param("c").unwrap_or_default().to_string();
    let key = request.query_param("key").unwrap_or_default().to_string();
    let result: Result<Response, String> = (|| {
        Ok(match request.path() {
            "/create" => {
                let container = blobstore::create_container(&name)?;
                Response::text(200, format!("created {}\n", container.name()?))
            }
            "/exists" => Response::text(200, blobstore::container_exists(&name)?.to_string()),
            "/drop" => {
                blobstore::delete_container(&name)?;
                Response::text(200, "dropped\n")
            }
            "/put" => {
                let container = blobstore::get_container(&name)?;
                let value = OutgoingValue::new_outgoing_value();
                let body = value
                    .outgoing_value_write_body()
                    .map_err(|()| "no body stream".to_string())?;
                // Chunks of at most 4096 bytes: what one blocking write may take.
                for chunk in request.body.chunks(4096) {
                    body.blocking_write_and_flush(chunk)
                        .map_err(|e| format!("writing the body: {e:?}"))?;
                }
                drop(body);
                container.write_data(&key, &value)?;
                OutgoingValue::finish(value)?;
                Response::text(200, format!("wrote {} bytes\n", request.body.len()))
            }
            "/get" => {
                let container = blobstore::get_container(&name)?;
                if !container.has_object(&key)? {
                    return Ok(Response::text(404, format!("no {key}\n")));
                }
                let number = |n: &str, default: u64| {
                    request
                        .query_param(n)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(default)
                };
                let value = container.get_data(&key, number("start", 0), number("end", u64::MAX))?;
                let bytes = match request.query_param("stream") {
                    Some(_) => read_stream(value)?,
                    None => IncomingValue::incoming_value_consume_sync(value)?,
                };
                Response::new(200, bytes)
            }
            "/has" => {
                let container = blobstore::get_container(&name)?;
                Response::text(200, container.has_object(&key)?.to_string())
            }
            "/info" => {
                let container = blobstore::get_container(&name)?;
                let info = container.object_info(&key)?;
                Response::text(
                    200,
                    format!("{} {} {} {}\n", info.container, info.name, info.size, info.created_at),
                )
            }
            "/list" => {
                let container = blobstore::get_container(&name)?;
                let names = container.list_objects()?;
                let mut all = Vec::new();
                loop {
                    let (page, end) = names.read_stream_object_names(2)?;
                    all.extend(page);
                    if end {
                        break;
                    }
                }
                all.sort();
                Response::text(200, all.join("\n"))
            }
            "/rm" => {
                blobstore::get_container(&name)?.delete_object(&key)?;
                Response::text(200, "removed\n")
            }
            "/clear" => {
                blobstore::get_container(&name)?.clear()?;
                Response::text(200, "cleared\n")
            }
            "/copy" | "/move" => {
                let src = ObjectId {
                    container: name.clone(),
                    object: key.clone(),
                };
                let dest = ObjectId {
                    container: request.query_param("to").unwrap_or_default().to_string(),
                    object: request.query_param("as").unwrap_or_default().to_string(),
                };
                match request.path() {
                    "/copy" => blobstore::copy_object(&src, &dest)?,
                    _ => blobstore::move_object(&src, &dest)?,
                }
                Response::text(200, "done\n")
            }
            "/transform" => {
                let container = blobstore::get_container(&name)?;
                let value = container.get_data(&key, 0, u64::MAX)?;
                let mut bytes = IncomingValue::incoming_value_consume_sync(value)?;
                for byte in &mut bytes {
                    *byte = byte.rotate_left(3) ^ 0x5a;
                }
                let target = blobstore::get_container(request.query_param("to").unwrap_or_default())?;
                let value = OutgoingValue::new_outgoing_value();
                let body = value
                    .outgoing_value_write_body()
                    .map_err(|()| "no body stream".to_string())?;
                for chunk in bytes.chunks(4096) {
                    body.blocking_write_and_flush(chunk)
                        .map_err(|e| format!("writing the result: {e:?}"))?;
                }
                drop(body);
                target.write_data(&key, &value)?;
                OutgoingValue::finish(value)?;
                Response::text(200, format!("transformed {} bytes\n", bytes.len()))
            }
            _ => Response::text(404, "routes: /create /exists /drop /put /get /has /info /list /rm /clear /copy /move\n"),
        })
    })();
    result.unwrap_or_else(|error| Response::text(500, format!("{error}\n")))
}

/// Reads an incoming value through its input-stream, as a large download would.
fn read_stream(value: IncomingValue) -> Result<Vec<u8>, String> {
    let stream = IncomingValue::incoming_value_consume_async(value)?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(65536) {
            Ok(chunk) => bytes.extend(chunk),
            Err(bindings::wasi::io::streams::StreamError::Closed) => return Ok(bytes),
            Err(error) => return Err(format!("reading: {error:?}")),
        }
    }
}

baton_sdk::http_handler!(handle);
