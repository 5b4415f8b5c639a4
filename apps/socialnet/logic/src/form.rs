//! HTML form bodies (`application/x-www-form-urlencoded`) and the page session cookie.

/// Decodes `+` and `%XX`; an invalid escape is kept as written.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && text.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a form body or query string.
pub fn field(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

/// `text` percent-encoded for a URL query or a cookie.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        assert_eq!(decode("a+b%20c%2Bd"), "a b c+d");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        let body = "username=al+ice&text=%3Cb%3E&empty=";
        assert_eq!(field(body, "username").as_deref(), Some("al ice"));
        assert_eq!(field(body, "text").as_deref(), Some("<b>"));
        assert_eq!(field(body, "empty").as_deref(), Some(""));
        assert_eq!(field(body, "none"), None);
    }

    #[test]
    fn encoding_round_trips_through_decoding() {
        for text in ["plain", "a b&c=d", "ünïcode/?#", "%+"] {
            assert_eq!(decode(&encode(text)), text);
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let header = "a=1; session=abc:def; b=2";
        assert_eq!(cookie(header, "session").as_deref(), Some("abc:def"));
        assert_eq!(cookie(header, "c"), None);
    }
}
