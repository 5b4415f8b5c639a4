//! Secrets as OpenFaaS's API carries them (`/system/secrets`, faas-provider's `Secret`): a
//! name and a value, given as text (`value`) or bytes (`rawValue`, base64 in JSON, as Go
//! writes `[]byte`). Values are never listed, logged or shown by `Debug`.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Largest secret value, as Kubernetes allows.
pub const MAX_SECRET_BYTES: usize = 1 << 20;

/// Most secrets a node keeps.
pub const MAX_SECRETS: usize = 10_000;

/// One secret, as `POST`, `PUT` and `DELETE /system/secrets` take it and `GET` lists it (name
/// and namespace only).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// The name functions list in `secrets` and read as a file of that name.
    pub name: String,
    /// Always Baton's one namespace in answers; another one in a request is refused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The value as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value as bytes (base64 in JSON); wins over `value`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "to_base64",
        deserialize_with = "from_base64"
    )]
    pub raw_value: Option<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// The value's bytes: `rawValue`, else `value`.
    pub fn bytes(&self) -> Vec<u8> {
        match (&self.raw_value, &self.value) {
            (Some(raw), _) => raw.clone(),
            (None, Some(text)) => text.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        }
    }

    /// Checks what a create or update needs: a valid name, Baton's namespace, a value within
    /// the limit. The error says which.
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        if !self.namespace.is_empty() && self.namespace != crate::NAMESPACE {
            return Err(format!(
                "namespace {:?} does not exist (Baton has one: {:?})",
                self.namespace,
                crate::NAMESPACE
            ));
        }
        if self.value.is_none() && self.raw_value.is_none() {
            return Err(format!("secret {:?} has no value or rawValue", self.name));
        }
        let size = self.bytes().len();
        if size > MAX_SECRET_BYTES {
            return Err(format!(
                "secret {:?} is {size} bytes; at most {MAX_SECRET_BYTES} bytes",
                self.name
            ));
        }
        Ok(())
    }
}

/// A secret's name: what Kubernetes takes (a DNS subdomain: lower-case letters, digits, `-`
/// and `.`, starting and ending with a letter or digit, at most 253 characters), so it is
/// also a safe file name.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && ok_edge(name.chars().next())
        && ok_edge(name.chars().last())
        && !name.contains("..");
    match valid {
        true => Ok(()),
        false => Err(format!(
            "secret name {name:?} is invalid: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
        )),
    }
}

/// The values of the secrets one function lists, by name: what a runtime gives the function.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues(pub BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

fn to_base64<S: Serializer>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(bytes) => {
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => serializer.serialize_none(),
    }
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|t| {
        base64::engine::general_purpose::STANDARD
            .decode(t.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("rawValue is not base64: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_read_as_faas_cli_sends_them() {
        let text: Secret =
            serde_json::from_str(r#"{"name":"api-key","namespace":"baton","value":"s3cr3t"}"#)
                .unwrap();
        assert_eq!(text.bytes(), b"s3cr3t");
        assert_eq!(text.validate(), Ok(()));
        // Go's []byte is base64 in JSON.
        let raw: Secret = serde_json::from_str(r#"{"name":"blob","rawValue":"AAEC/w=="}"#).unwrap();
        assert_eq!(raw.bytes(), [0, 1, 2, 255]);
        let back: Secret = serde_json::from_str(&serde_json::to_string(&raw).unwrap()).unwrap();
        assert_eq!(back, raw);
        assert!(serde_json::from_str::<Secret>(r#"{"name":"b","rawValue":"!!"}"#).is_err());
        // Debug never shows a value.
        assert!(!format!("{text:?}").contains("s3cr3t"));
        let values = SecretValues(BTreeMap::from([("api-key".into(), b"s3cr3t".to_vec())]));
        assert_eq!(format!("{values:?}"), r#"["api-key"]"#);
    }

    #[test]
    fn bad_secrets_are_refused_with_the_reason() {
        let secret = |name: &str, namespace: &str, value: Option<&str>| Secret {
            name: name.into(),
            namespace: namespace.into(),
            value: value.map(str::to_owned),
            raw_value: None,
        };
        for (bad, why) in [
            (secret("", "", Some("v")), "invalid"),
            (secret("../etc", "", Some("v")), "invalid"),
            (secret("A", "", Some("v")), "invalid"),
            (secret("a..b", "", Some("v")), "invalid"),
            (secret("-a", "", Some("v")), "invalid"),
            (secret("a", "openfaas-fn", Some("v")), "does not exist"),
            (secret("a", "", None), "no value"),
            (
                secret("a", "", Some(&"x".repeat(MAX_SECRET_BYTES + 1))),
                "at most",
            ),
        ] {
            let error = bad.validate().unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        for good in ["a", "api-key", "db.password", "0"] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
    }
}
