//! A JSON transform: upper-cases every string in the document and reports what it saw.
use baton_sdk::{Request, Response};
use serde_json::{Value, json};

fn upper(value: Value, strings: &mut usize) -> Value {
    match value {
        Value::String(s) => {
            *strings += 1;
            Value::String(s.to_uppercase())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| upper(v, strings)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v, strings))).collect()),
        other => other,
    }
}

fn handle(request: Request) -> Response {
    let input: Value = match serde_json::from_slice(&request.body) {
        Ok(value) => value,
        Err(e) => return Response::json(400, json!({ "error": format!("body is not JSON: {e}") }).to_string()),
    };
    let mut strings = 0;
    let output = upper(input, &mut strings);
    Response::json(200, json!({ "result": output, "strings_transformed": strings }).to_string())
}

baton_sdk::http_handler!(handle);
