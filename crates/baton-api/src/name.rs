use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated function name: `[a-z0-9][a-z0-9-]{0,62}`.
///
/// Names become URL path segments, file names and metric labels, so anything else (`../x`,
/// upper case, over 63 characters) is refused before it reaches any of those.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FunctionName(String);

/// Why a string is not a function name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("function name is empty")]
    Empty,
    /// The name is longer than 63 characters.
    #[error("function name {0:?} is longer than 63 characters")]
    TooLong(String),
    /// The name has a character outside `[a-z0-9-]` or starts with `-`.
    #[error(
        "function name {0:?} must match [a-z0-9][a-z0-9-]{{0,62}} (lower-case letters, digits and '-', not starting with '-')"
    )]
    Invalid(String),
}

impl FunctionName {
    /// Longest accepted name, as for a DNS label.
    pub const MAX_LEN: usize = 63;

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(NameError::TooLong(name.chars().take(80).collect()));
        }
        let bytes = name.as_bytes();
        let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        if bytes[0] == b'-' || !bytes.iter().all(allowed) {
            return Err(NameError::Invalid(name.to_owned()));
        }
        Ok(FunctionName(name.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FunctionName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        FunctionName::new(&raw).map_err(serde::de::Error::custom)
    }
}

/// The label naming a function's write-back buckets (of its namespace; comma-separated, or
/// `*`): their writes are acknowledged once in the node's memory and pending log.
pub const LABEL_WRITE_BACK: &str = "baton.objects.write-back";

/// Checks an object bucket name by S3's rules (the ones that matter for paths and hosts):
/// 3-63 characters of `a-z`, `0-9`, `-` and `.`, starting and ending with a letter or digit,
/// no `..`.
pub fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let bytes = bucket.as_bytes();
    let ok = (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(b))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    match ok {
        true => Ok(()),
        false => Err(format!(
            "bucket name {bucket:?} must be 3-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit"
        )),
    }
}

/// Checks a [`LABEL_WRITE_BACK`] value: `*` or bucket names, comma-separated.
pub fn check_write_back_label(label: &str) -> Result<(), String> {
    for bucket in label.split(',').map(str::trim) {
        if bucket != "*" {
            check_bucket_name(bucket).map_err(|e| format!("label {LABEL_WRITE_BACK}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_what_could_escape_a_path_or_label() {
        assert_eq!(FunctionName::new(""), Err(NameError::Empty));
        assert!(matches!(
            FunctionName::new("../x"),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(
            FunctionName::new("Hello"),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(
            FunctionName::new("-a"),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(
            FunctionName::new("a_b"),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(
            FunctionName::new(&"a".repeat(64)),
            Err(NameError::TooLong(_))
        ));
        assert_eq!(
            FunctionName::new(&"a".repeat(63)).unwrap().as_str().len(),
            63
        );
        assert_eq!(FunctionName::new("hello-2").unwrap().as_str(), "hello-2");
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_documented_grammar(s in "\\PC{0,70}") {
            let valid = regex_like(&s);
            prop_assert_eq!(FunctionName::new(&s).is_ok(), valid);
        }
    }

    fn regex_like(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    }
}
