//! Reading a request's fields: a JSON object whose fields are present and of the right type,
//! with the message a client sees when they are not.

use serde_json::{Map, Value};

/// Why a request's fields were refused, in words.
pub type FieldError = String;

/// The request body as a JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the request body must be a JSON object".into()),
        Err(e) => Err(format!("the request body is not JSON: {e}")),
    }
}

/// A present field (JSON `null` counts as present).
pub fn present<'a>(input: &'a Map<String, Value>, name: &str) -> Result<&'a Value, FieldError> {
    input
        .get(name)
        .ok_or_else(|| format!("{name} must be provided"))
}

/// A string field of at most `max` bytes.
pub fn string<'a>(
    input: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<&'a str, FieldError> {
    match present(input, name)? {
        Value::String(s) if s.len() > max => Err(format!(
            "{name} is {} bytes long; the limit is {max}",
            s.len()
        )),
        Value::String(s) => Ok(s),
        _ => Err(format!("{name} must be a string")),
    }
}

/// A non-empty string field of at most `max` bytes.
pub fn name<'a>(
    input: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<&'a str, FieldError> {
    let value = string(input, name, max)?;
    if value.is_empty() {
        return Err(format!("{name} must not be empty"));
    }
    Ok(value)
}

/// An id that the original writes as a bare integer (up to 128 bits) and its callees echo as
/// a string: either is accepted; the decimal digits are returned.
pub fn id(input: &Map<String, Value>, name: &str) -> Result<String, FieldError> {
    let digits = match present(input, name)? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(format!("{name} must be an integer")),
    };
    if digits.is_empty() || digits.len() > 39 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name} must be a non-negative integer of at most 39 digits"
        ));
    }
    Ok(digits)
}

/// A non-negative integer given as a number or a numeric string (`start`, `stop`).
pub fn count(input: &Map<String, Value>, name: &str) -> Result<u64, FieldError> {
    let parsed = match present(input, name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| format!("{name} must be a non-negative integer"))
}

/// A list of strings, each at most `max` bytes, at most `max_items` of them.
pub fn strings(
    input: &Map<String, Value>,
    name: &str,
    max: usize,
    max_items: usize,
) -> Result<Vec<String>, FieldError> {
    let Value::Array(items) = present(input, name)? else {
        return Err(format!("{name} must be a list of strings"));
    };
    if items.len() > max_items {
        return Err(format!(
            "{name} has {} items; the limit is {max_items}",
            items.len()
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if s.len() <= max => Ok(s.clone()),
            Value::String(_) => Err(format!("an item of {name} is longer than {max} bytes")),
            _ => Err(format!("{name} must be a list of strings")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn fields_are_checked_for_presence_type_and_size() {
        let input = map(json!({"u": "alice", "e": "", "n": 3, "s": "12", "l": ["a", 1]}));
        assert_eq!(string(&input, "u", 10), Ok("alice"));
        assert_eq!(
            string(&input, "u", 3).unwrap_err(),
            "u is 5 bytes long; the limit is 3"
        );
        assert_eq!(string(&input, "x", 3).unwrap_err(), "x must be provided");
        assert_eq!(string(&input, "n", 3).unwrap_err(), "n must be a string");
        assert_eq!(name(&input, "e", 3).unwrap_err(), "e must not be empty");
        assert_eq!(count(&input, "n"), Ok(3));
        assert_eq!(count(&input, "s"), Ok(12));
        assert!(count(&input, "u").is_err());
        assert!(strings(&input, "l", 10, 10).is_err());
    }

    #[test]
    fn ids_accept_numbers_and_numeric_strings() {
        let input = map(
            json!({"a": 42, "b": "340282366920938463463374607431768211455",
                               "c": "12x", "d": -1, "e": 1.5}),
        );
        assert_eq!(id(&input, "a").unwrap(), "42");
        assert_eq!(
            id(&input, "b").unwrap(),
            "340282366920938463463374607431768211455"
        );
        for bad in ["c", "d", "e"] {
            assert!(id(&input, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(object(b"{}").is_ok());
        assert_eq!(
            object(b"[1]").unwrap_err(),
            "the request body must be a JSON object"
        );
        assert!(
            object(b"{")
                .unwrap_err()
                .starts_with("the request body is not JSON")
        );
    }
}
