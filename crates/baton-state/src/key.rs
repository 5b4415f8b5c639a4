use crate::StateError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An object's full name: a namespace (a function or an application) and a name in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    /// Function or application name: `[a-z0-9][a-z0-9-]{0,62}`, as function names.
    pub namespace: String,
    /// 1 to 255 bytes of letters, digits and `-_.:/`.
    pub name: String,
}

impl ObjectKey {
    /// Validates both parts.
    pub fn new(namespace: &str, name: &str) -> Result<ObjectKey, StateError> {
        let ns_ok = !namespace.is_empty()
            && namespace.len() <= 63
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !namespace.starts_with('-');
        if !ns_ok {
            return Err(StateError::Invalid(format!(
                "namespace {namespace:?} must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'"
            )));
        }
        let name_ok = !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
        if !name_ok {
            return Err(StateError::Invalid(format!(
                "object name {name:?} must be 1-255 characters of letters, digits and -_.:/"
            )));
        }
        Ok(ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_namespace_and_name() {
        assert!(ObjectKey::new("counter", "hits").is_ok());
        assert!(ObjectKey::new("app-1", "users:42/likes").is_ok());
        for (ns, name) in [
            ("", "x"),
            ("Upper", "x"),
            ("-a", "x"),
            ("a", ""),
            ("a", "sp ace"),
        ] {
            let error = ObjectKey::new(ns, name).unwrap_err();
            assert!(matches!(error, StateError::Invalid(_)), "{ns:?}/{name:?}");
        }
        assert!(ObjectKey::new("a", &"x".repeat(256)).is_err());
    }
}
