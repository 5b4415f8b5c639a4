//! Request bodies that vary per request: `{{seq}}` becomes the request's sequence number and
//! `{{random}}` a random 64-bit number, so a load can create distinct keys or records.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Seq,
    Random,
}

/// A parsed body template; clones share one sequence counter.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    parts: Vec<Part>,
    next: Arc<AtomicU64>,
}

impl BodyTemplate {
    /// Parses `text`; an unknown `{{name}}` is an error that names it.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let Some(length) = rest[start..].find("}}") else {
                anyhow::bail!(
                    "body template: `{{{{` at byte {} is never closed",
                    text.len() - rest.len() + start
                );
            };
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            parts.push(match rest[start + 2..start + length].trim() {
                "seq" => Part::Seq,
                "random" => Part::Random,
                other => anyhow::bail!("body template: unknown placeholder {{{{{other}}}}} (use {{{{seq}}}} or {{{{random}}}})"),
            });
            rest = &rest[start + length + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(BodyTemplate {
            parts,
            next: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The next request's body.
    pub fn render(&self) -> Bytes {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Seq => out.push_str(&seq.to_string()),
                Part::Random => out.push_str(&fastrand::u64(..).to_string()),
            }
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_sequence_and_random_numbers() {
        let template = BodyTemplate::parse(r#"{"id": {{seq}}, "nonce": {{ random }}}"#).unwrap();
        let first = String::from_utf8(template.render().to_vec()).unwrap();
        let second = String::from_utf8(template.clone().render().to_vec()).unwrap();
        assert!(first.starts_with(r#"{"id": 0, "nonce": "#), "{first}");
        assert!(
            second.starts_with(r#"{"id": 1, "nonce": "#),
            "clones share the counter: {second}"
        );
        assert_eq!(BodyTemplate::parse("plain").unwrap().render(), "plain");
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_errors() {
        assert!(
            BodyTemplate::parse("{{uuid}}")
                .unwrap_err()
                .to_string()
                .contains("{{uuid}}")
        );
        assert!(
            BodyTemplate::parse("x {{seq")
                .unwrap_err()
                .to_string()
                .contains("never closed")
        );
    }
}
