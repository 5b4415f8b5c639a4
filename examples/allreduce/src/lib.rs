//! MISO's allreduce as a Baton function: each call adds one chunk of an array into a shared
//! vector, and every node ends up with the element-wise sum.
//!
//! - `POST /function/allreduce/{vector}?chunk=I&size=N`: adds elements `I*N .. (I+1)*N`, whose
//!   values are `(index % 10) + 1`, so a reader can check the total without the inputs.
//! - `GET /function/allreduce/{vector}`: `{"sum": ..}`, the sum of every element on this node.
//! - `GET /function/allreduce/{vector}?offset=O&len=L`: the elements, as a JSON array.
use baton_sdk::state::{Error, Vector};
use baton_sdk::{Request, Response};

fn number(request: &Request, key: &str) -> Result<u64, Response> {
    request
        .query_param(key)
        .ok_or_else(|| Response::text(400, format!("missing `{key}`\n")))?
        .parse()
        .map_err(|_| Response::text(400, format!("`{key}` must be a non-negative integer\n")))
}

fn handle(request: Request) -> Response {
    let name = request.path().trim_start_matches('/');
    let vector = Vector::new(if name.is_empty() { "array" } else { name });
    match run(&request, &vector) {
        Ok(response) | Err(response) => response,
    }
}

fn run(request: &Request, vector: &Vector) -> Result<Response, Response> {
    let failed = |error: Error| match error {
        Error::Unavailable(m) => Response::text(503, m + "\n"),
        Error::TooLarge(m) => Response::text(413, m + "\n"),
        other => Response::text(400, format!("{other}\n")),
    };
    if request.method == "GET" {
        if request.query_param("len").is_some() {
            let offset = request.query_param("offset").map_or(Ok(0), |_| number(request, "offset"))?;
            let values = vector.get(offset, number(request, "len")?).map_err(failed)?;
            let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            return Ok(Response::json(200, format!("[{}]\n", items.join(","))));
        }
        let sum = vector.sum().map_err(failed)?;
        return Ok(Response::json(200, format!("{{\"sum\":{sum}}}\n")));
    }
    let chunk = number(request, "chunk")?;
    let size = number(request, "size")?;
    if size == 0 || size > 1 << 20 {
        return Err(Response::text(400, "`size` must be 1 to 1048576\n"));
    }
    let offset = chunk
        .checked_mul(size)
        .ok_or_else(|| Response::text(400, "chunk * size overflows\n"))?;
    let values = (offset..offset + size).map(|i| (i % 10 + 1) as f64).collect();
    let version = vector.add(offset, values).map_err(failed)?;
    Ok(Response::json(200, format!("{{\"version\":{version}}}\n")))
}

baton_sdk::http_handler!(handle);
