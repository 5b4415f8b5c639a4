//! What the text service finds in a post: mentions and URLs, and the text with each URL
//! replaced by its short form.
//!
//! URLs match the original's pattern
//! `http[s]?://(?:[a-zA-Z]|[0-9]|[$-_@.&+]|[!*\(\),]|(?:%[0-9a-fA-F][0-9a-fA-F]))+`, whose
//! `[$-_]` is the range from `$` to `_`. Mentions match DeathStarBench's `@[a-zA-Z0-9-_]+`
//! rather than DeathStarFaaS's `@[a-zA-Z0-9]+`, which stops at the `_` of every
//! `@username_<i>` the workload writes and so resolved none of them.

use std::ops::Range;

fn mention_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn url_char(c: u8) -> bool {
    c.is_ascii_lowercase() || (b'$'..=b'_').contains(&c) || c == b'!'
}

/// The usernames mentioned (`@name`, without the `@`), in order, repeats kept.
pub fn mentions(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' {
            let end = (i + 1..bytes.len())
                .find(|&j| !mention_char(bytes[j]))
                .unwrap_or(bytes.len());
            if end > i + 1 {
                found.push(text[i + 1..end].to_string());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// Where each URL is in `text`, in order.
pub fn url_spans(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let scheme = if rest.starts_with(b"https://") {
            8
        } else if rest.starts_with(b"http://") {
            7
        } else {
            0
        };
        if scheme == 0 {
            i += 1;
            continue;
        }
        let start = i + scheme;
        let end = (start..bytes.len())
            .find(|&j| !url_char(bytes[j]))
            .unwrap_or(bytes.len());
        if end > start {
            spans.push(i..end);
            i = end;
        } else {
            i += 1;
        }
    }
    spans
}

/// The URLs in `text`, in order.
pub fn urls(text: &str) -> Vec<String> {
    url_spans(text)
        .into_iter()
        .map(|span| text[span].to_string())
        .collect()
}

/// `text` with its i-th URL replaced by `replacements[i]` (URLs beyond the replacements stay).
pub fn replace_urls(text: &str, replacements: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (span, replacement) in url_spans(text).into_iter().zip(replacements) {
        out.push_str(&text[last..span.start]);
        out.push_str(replacement);
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_take_names_with_underscores_and_dashes() {
        let cases: [(&str, &[&str]); 5] = [
            ("hi @username_12 and @bob-x!", &["username_12", "bob-x"]),
            ("mail a@b.c", &["b"]),
            ("@ alone and @@twice", &["twice"]),
            ("@a @a", &["a", "a"]),
            ("nothing", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(mentions(text), expected, "{text}");
        }
    }

    #[test]
    fn urls_follow_the_originals_character_class() {
        let cases: [(&str, &[&str]); 5] = [
            ("see http://a.b/c?d=1 now", &["http://a.b/c?d=1"]),
            (
                "https://X.Y/%20_z! and http://q",
                &["https://X.Y/%20_z!", "http://q"],
            ),
            (
                "stop at quote http://a\"b and brace http://c{d}",
                &["http://a", "http://c"],
            ),
            ("http:// bare", &[]),
            ("httpx://no", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(urls(text), expected, "{text}");
        }
    }

    #[test]
    fn urls_are_replaced_in_place() {
        let text = "a http://one b https://two c";
        let short = vec!["S1".to_string(), "S2".to_string()];
        assert_eq!(replace_urls(text, &short), "a S1 b S2 c");
        assert_eq!(replace_urls(text, &short[..1]), "a S1 b https://two c");
        assert_eq!(replace_urls("no urls", &short), "no urls");
    }
}
