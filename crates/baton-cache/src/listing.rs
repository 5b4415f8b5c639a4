//! One page of a bucket listing, built the way S3 pages: keys after a marker, those with the
//! delimiter past the prefix rolled up into one common prefix each, at most `limit` entries
//! (keys and prefixes together) and the marker of the next page.
//!
//! A page holds only its own entries however large the bucket: keys may arrive in any order
//! and only the `limit + 1` smallest are kept. The store's listing is read to its end for every
//! page (the local filesystem lists unordered, and the store's order is that of encoded paths,
//! which differs from the keys' order for keys holding characters such as `{` or `~`): time
//! grows with the bucket, memory does not.

use crate::ObjectInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Keys one listing page holds at most (S3's default and maximum).
pub const MAX_KEYS: usize = 1000;

/// What a listing asks for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only keys that start with this.
    #[serde(default)]
    pub prefix: String,
    /// Keys with this after the prefix are rolled up into one common prefix each.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Only keys (and prefixes) after this one: the previous page's `next`.
    #[serde(default)]
    pub after: Option<String>,
    /// Entries at most; [`MAX_KEYS`] when unset or larger.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl ListQuery {
    /// Every key under `prefix`, one page at a time.
    pub fn prefix(prefix: &str) -> ListQuery {
        ListQuery {
            prefix: prefix.to_string(),
            ..ListQuery::default()
        }
    }

    /// The query of the page after `listing`, if there is one.
    pub fn next(&self, listing: &Listing) -> Option<ListQuery> {
        listing.next.as_ref().map(|next| ListQuery {
            after: Some(next.clone()),
            ..self.clone()
        })
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(MAX_KEYS).clamp(1, MAX_KEYS)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Listing {
    /// The keys of this page, in order.
    pub objects: Vec<ObjectInfo>,
    /// The common prefixes of this page, in order.
    pub prefixes: Vec<String>,
    /// The last key or prefix of this page, when more follow: the next page's `after`.
    pub next: Option<String>,
}

enum Entry {
    Object(ObjectInfo),
    Prefix,
}

/// A page being built from keys offered in any order.
pub(crate) struct Page<'q> {
    query: &'q ListQuery,
    limit: usize,
    /// The smallest `limit + 1` entries seen, by key or prefix.
    entries: BTreeMap<String, Entry>,
}

impl<'q> Page<'q> {
    pub(crate) fn new(query: &'q ListQuery) -> Page<'q> {
        Page {
            query,
            limit: query.limit(),
            entries: BTreeMap::new(),
        }
    }

    /// The entry `key` is listed under: itself, its common prefix, or nothing (outside the
    /// prefix, or not after the marker).
    fn entry_of(&self, key: &str) -> Option<(String, bool)> {
        let rest = key.strip_prefix(self.query.prefix.as_str())?;
        let rolled = self
            .query
            .delimiter
            .as_deref()
            .filter(|d| !d.is_empty())
            .and_then(|d| {
                rest.find(d)
                    .map(|at| &key[..self.query.prefix.len() + at + d.len()])
            });
        let (name, is_prefix) = match rolled {
            Some(common) => (common, true),
            None => (key, false),
        };
        if self.query.after.as_deref().is_some_and(|a| name <= a) {
            return None;
        }
        Some((name.to_string(), is_prefix))
    }

    /// Offers an object; a later offer of the same key replaces an earlier one (unflushed
    /// writes are offered after the store's copies).
    pub(crate) fn offer(&mut self, info: ObjectInfo) {
        let Some((name, is_prefix)) = self.entry_of(&info.key) else {
            return;
        };
        if self.full()
            && self
                .entries
                .last_key_value()
                .is_some_and(|(last, _)| &name > last)
        {
            return;
        }
        let entry = match is_prefix {
            true => Entry::Prefix,
            false => Entry::Object(info),
        };
        self.entries.insert(name, entry);
        if self.entries.len() > self.limit + 1 {
            self.entries.pop_last();
        }
    }

    fn full(&self) -> bool {
        self.entries.len() > self.limit
    }

    /// The page: its first `limit` entries, and the marker after them when more follow.
    pub(crate) fn finish(self) -> Listing {
        let mut listing = Listing::default();
        let more = self.entries.len() > self.limit;
        for (name, entry) in self.entries.into_iter().take(self.limit) {
            match entry {
                Entry::Object(info) => listing.objects.push(info),
                Entry::Prefix => listing.prefixes.push(name.clone()),
            }
            if more {
                listing.next = Some(name);
            }
        }
        listing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size: 1,
            last_modified_ms: 0,
            etag: None,
        }
    }

    fn page(keys: &[&str], query: &ListQuery) -> Listing {
        let mut page = Page::new(query);
        for key in keys {
            page.offer(info(key));
        }
        page.finish()
    }

    fn keys(listing: &Listing) -> Vec<&str> {
        listing.objects.iter().map(|o| o.key.as_str()).collect()
    }

    fn query(
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> ListQuery {
        ListQuery {
            prefix: prefix.to_string(),
            delimiter: delimiter.map(str::to_string),
            after: after.map(str::to_string),
            limit: Some(limit),
        }
    }

    #[test]
    fn listings_page_and_roll_up_as_s3_does() {
        // Offered out of order, as the local filesystem lists.
        let all = ["e", "b/2", "a", "d/x/1", "c", "b/1"];
        let whole = page(&all, &query("", Some("/"), None, 1000));
        assert_eq!(keys(&whole), ["a", "c", "e"]);
        assert_eq!(whole.prefixes, ["b/", "d/"]);
        assert_eq!(whole.next, None);

        // Three entries a page, keys and prefixes together; the next page starts after the
        // last one.
        let q = query("", Some("/"), None, 3);
        let first = page(&all, &q);
        assert_eq!(
            (keys(&first), first.prefixes.clone()),
            (vec!["a", "c"], vec!["b/".into()])
        );
        assert_eq!(first.next.as_deref(), Some("c"));
        let second = page(&all, &q.next(&first).unwrap());
        assert_eq!(
            (keys(&second), second.prefixes.clone()),
            (vec!["e"], vec!["d/".into()])
        );
        assert_eq!(second.next, None);
        assert_eq!(q.next(&second), None);

        // Under a prefix, without a delimiter: every key under it, one a page.
        let q = query("b/", None, None, 1);
        let first = page(&all, &q);
        assert_eq!(
            (keys(&first), first.next.as_deref()),
            (vec!["b/1"], Some("b/1"))
        );
        let second = page(&all, &q.next(&first).unwrap());
        assert_eq!((keys(&second), second.next.clone()), (vec!["b/2"], None));

        // A marker inside a rolled-up prefix skips the prefix, as S3 does.
        let after = page(&all, &query("", Some("/"), Some("b/1"), 10));
        assert_eq!(
            (keys(&after), after.prefixes.clone()),
            (vec!["c", "e"], vec!["d/".to_string()])
        );
    }

    #[test]
    fn a_page_keeps_only_its_own_entries() {
        let q = query("", None, None, 2);
        let mut page = Page::new(&q);
        for i in (0..10_000).rev() {
            page.offer(info(&format!("k{i:05}")));
            assert!(page.entries.len() <= 3);
        }
        let listing = page.finish();
        assert_eq!(keys(&listing), ["k00000", "k00001"]);
        assert_eq!(listing.next.as_deref(), Some("k00001"));
    }

    #[test]
    fn a_later_offer_of_a_key_replaces_the_earlier() {
        let q = query("", None, None, 10);
        let mut page = Page::new(&q);
        page.offer(info("a"));
        page.offer(ObjectInfo {
            size: 7,
            ..info("a")
        });
        assert_eq!(
            page.finish().objects,
            vec![ObjectInfo {
                size: 7,
                ..info("a")
            }]
        );
    }

    #[test]
    fn limits_are_clamped_to_what_s3_allows() {
        assert_eq!(query("", None, None, 0).limit(), 1);
        assert_eq!(query("", None, None, 5000).limit(), MAX_KEYS);
        assert_eq!(ListQuery::default().limit(), MAX_KEYS);
    }
}
