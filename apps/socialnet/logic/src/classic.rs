//! The OpenFaaS classic watchdog's reply format, which DeathStarFaaS's callers parse: success
//! is 200 with one line of JSON; a failure (`sys.exit(json)`) is 500 with
//! `exit status 1\n<json>\n`. Callers read a reply as `ds_util.invoke` does.

use serde_json::{Value, json};

/// The body of a successful reply: the JSON text (one line) then `\n` (Python's `print`).
pub fn success_body(json: &str) -> String {
    format!("{json}\n")
}

/// The body of a failed reply, exactly as the classic watchdog writes a process that exited
/// with status 1 after printing `value` to stderr.
pub fn failure_body(value: &Value) -> String {
    format!("exit status 1\n{value}\n")
}

/// A caller's view of a callee's reply, as DeathStarFaaS's `ds_util.invoke` builds it: the
/// callee's JSON plus `http_status_code` (and `url` on failure); a reply that is not in the
/// classic format becomes `UnknowError` (the original's spelling) with the body as `message`.
pub fn read_reply(status: u16, body: &[u8], url: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let parsed = match status {
        200 => serde_json::from_str::<Value>(text.trim_end()).ok(),
        500 => text
            .split('\n')
            .nth(1)
            .and_then(|line| serde_json::from_str::<Value>(line).ok()),
        _ => None,
    };
    match parsed {
        Some(Value::Object(mut map)) => {
            map.insert("http_status_code".into(), json!(status));
            if status != 200 {
                map.insert("url".into(), json!(url));
            }
            Value::Object(map)
        }
        _ => json!({
            "status": "UnknowError",
            "url": url,
            "http_status_code": status,
            "message": text,
        }),
    }
}

/// The second line of a failed reply's body (what `body.split('\n')[1]` gives the original's
/// `*-with-username` functions), or the whole body when it has one line.
pub fn inner_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split('\n').nth(1).unwrap_or(&text).to_string()
}

/// `{"status": status, "message": message}`.
pub fn error_message(status: &str, message: impl Into<String>) -> Value {
    json!({"status": status, "message": message.into()})
}

/// `{"status": status, "errors": errors}`.
pub fn error_list(status: &str, errors: Vec<Value>) -> Value {
    json!({"status": status, "errors": errors})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_written_as_the_classic_watchdog_writes_them() {
        let body = failure_body(&error_message("MissingFieldError", "username missing"));
        assert_eq!(
            body,
            "exit status 1\n{\"message\":\"username missing\",\"status\":\"MissingFieldError\"}\n"
        );
        assert_eq!(
            success_body(&json!({"status": "success"}).to_string()),
            "{\"status\":\"success\"}\n"
        );
    }

    #[test]
    fn replies_are_read_as_ds_util_reads_them() {
        let cases: [(u16, &str, Value); 4] = [
            (
                200,
                "{\"status\":\"success\"}\n",
                json!({"status": "success", "http_status_code": 200}),
            ),
            (
                500,
                "exit status 1\n{\"status\":\"FollowError\"}\n",
                json!({"status": "FollowError", "http_status_code": 500, "url": "u"}),
            ),
            (
                502,
                "bad gateway",
                json!({"status": "UnknowError", "url": "u", "http_status_code": 502,
                       "message": "bad gateway"}),
            ),
            (
                500,
                "Traceback (most recent call last):",
                json!({"status": "UnknowError", "url": "u", "http_status_code": 500,
                       "message": "Traceback (most recent call last):"}),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(read_reply(status, body.as_bytes(), "u"), expected, "{body}");
        }
    }

    #[test]
    fn the_inner_message_is_the_second_line() {
        assert_eq!(inner_message(b"exit status 1\n{\"a\":1}\n"), "{\"a\":1}");
        assert_eq!(inner_message(b"no newline"), "no newline");
    }
}
