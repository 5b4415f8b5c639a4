//! Which buckets acknowledge writes before they reach the store: the node's configuration
//! (`ns/bucket`, `ns/*`, `*`) and the `baton.objects.write-back` label of the functions that
//! run here (bucket names of their namespace, comma-separated, or `*`). A bucket is
//! write-back when any rule names it; everything else is write-through.

use crate::name::{BucketId, check_bucket, check_namespace};
use std::collections::HashSet;

/// The rules; a pure model.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WriteBackRules {
    /// Every bucket of every namespace.
    all: bool,
    /// Every bucket of these namespaces.
    namespaces: HashSet<String>,
    /// These buckets.
    buckets: HashSet<BucketId>,
}

impl WriteBackRules {
    /// Rules from the configuration; a malformed entry is an error naming it.
    pub fn parse(entries: &[String]) -> anyhow::Result<WriteBackRules> {
        let mut rules = WriteBackRules::default();
        for entry in entries {
            let entry = entry.trim();
            if entry == "*" {
                rules.all = true;
                continue;
            }
            let Some((namespace, bucket)) = entry.split_once('/') else {
                anyhow::bail!(
                    "objects.write_back entry {entry:?}: expected namespace/bucket, namespace/* or *"
                );
            };
            check_namespace(namespace).map_err(|e| anyhow::anyhow!("objects.write_back: {e}"))?;
            if bucket == "*" {
                rules.namespaces.insert(namespace.to_string());
            } else {
                check_bucket(bucket).map_err(|e| anyhow::anyhow!("objects.write_back: {e}"))?;
                rules.buckets.insert(BucketId::new(namespace, bucket)?);
            }
        }
        Ok(rules)
    }

    /// Adds a function's label: bucket names of `namespace`, comma-separated, or `*`. Names
    /// that are not bucket names are ignored (the deploy checks them first).
    pub fn declare(&mut self, namespace: &str, label: &str) {
        for bucket in label.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            if bucket == "*" {
                self.namespaces.insert(namespace.to_string());
            } else if let Ok(id) = BucketId::new(namespace, bucket) {
                self.buckets.insert(id);
            }
        }
    }

    /// Whether `bucket` is write-back.
    pub fn matches(&self, bucket: &BucketId) -> bool {
        self.all || self.namespaces.contains(&bucket.namespace) || self.buckets.contains(bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(ns: &str, b: &str) -> BucketId {
        BucketId::new(ns, b).unwrap()
    }

    #[test]
    fn configuration_and_labels_name_write_back_buckets() {
        let mut rules = WriteBackRules::parse(&["app/photos".into(), "batch/*".into()]).unwrap();
        rules.declare("thumbs", "out, scratch");
        // (namespace, bucket, write-back).
        let cases = [
            ("app", "photos", true),
            ("app", "other", false),
            ("batch", "anything", true),
            ("thumbs", "out", true),
            ("thumbs", "scratch", true),
            ("thumbs", "input", false),
            ("photos", "app", false),
        ];
        for (ns, b, expected) in cases {
            assert_eq!(rules.matches(&bucket(ns, b)), expected, "{ns}/{b}");
        }
        let all = WriteBackRules::parse(&["*".into()]).unwrap();
        assert!(all.matches(&bucket("any", "bucket")));
        assert!(!WriteBackRules::default().matches(&bucket("any", "bucket")));
    }

    #[test]
    fn malformed_entries_and_labels_are_refused() {
        for entry in ["photos", "App/photos", "app/Ph", "app/", "/photos"] {
            assert!(WriteBackRules::parse(&[entry.into()]).is_err(), "{entry}");
        }
        let check = baton_api::check_write_back_label;
        assert!(check("out, scratch").is_ok());
        assert!(check("*").is_ok());
        assert!(check("ok,No").is_err());
        assert!(check("").is_err());
    }
}
