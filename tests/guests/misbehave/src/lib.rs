//! One guest, many failures, chosen by path: each route fails one way a real function can.
//!
//! `/ok` answers; `/trap` panics; `/spin` loops forever; `/oom` grows memory without bound;
//! `/stack` recurses without bound; `/sleep?ms=N` sleeps; `/env?name=K` returns an environment
//! variable; `/big?bytes=N` answers N bytes; `/status?code=N` answers that status.
use baton_sdk::{Request, Response};
use std::hint::black_box;

fn number(request: &Request, key: &str) -> u64 {
    request.query_param(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[inline(never)]
fn recurse(depth: u64, pad: [u8; 256]) -> u64 {
    let pad = black_box(pad);
    recurse(depth + 1, pad) + u64::from(pad[0])
}

fn handle(request: Request) -> Response {
    match request.path() {
        "/ok" | "/" => Response::text(200, "ok\n"),
        "/trap" => panic!("misbehave asked to trap"),
        "/spin" => {
            let mut x: u64 = 0;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        "/oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "/stack" => Response::text(200, recurse(0, [1; 256]).to_string()),
        "/sleep" => {
            let ms = number(&request, "ms");
            baton_sdk::wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
            Response::text(200, format!("slept {ms} ms\n"))
        }
        "/env" => {
            let key = request.query_param("name").unwrap_or("");
            match std::env::var(key) {
                Ok(value) => Response::text(200, value),
                Err(_) => Response::text(404, format!("{key} is not set")),
            }
        }
        "/big" => Response::new(200, vec![b'x'; number(&request, "bytes") as usize]),
        "/status" => Response::text(number(&request, "code") as u16, "as asked\n"),
        "/fetch" => {
            let text = String::from_utf8_lossy(&request.body).into_owned();
            let (line, body) = text.split_once('\n').unwrap_or((&text, ""));
            let (method, url) = line.trim().split_once(' ').unwrap_or(("GET", line.trim()));
            match baton_sdk::fetch(method, url, &[("content-type", "application/json")], body.as_bytes()) {
                Ok(response) => {
                    let mut out = format!("{}\n", response.status).into_bytes();
                    out.extend_from_slice(&response.body);
                    Response::new(200, out)
                }
                Err(error) => Response::text(599, error),
            }
        }
        other => Response::text(404, format!("no route {other}\n")),
    }
}

baton_sdk::http_handler!(handle);
