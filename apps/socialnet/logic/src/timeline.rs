//! Timelines: a map from a sortable key (the post's time, then its id) to the time, so the
//! newest posts are the map's greatest keys and a read of `[start, stop)` is one page of the
//! map read from its end (Redis's `ZREVRANGE key start stop-1` over a sorted set).

/// The most a read may ask for at once.
pub const MAX_PAGE: u64 = 1000;

/// Timestamps (seconds) below this keep their order as keys: 18 digits before the point.
pub const MAX_TIMESTAMP: f64 = 1e18;

/// Checks a read's bounds: `start <= stop` and at most [`MAX_PAGE`] posts.
pub fn check_bounds(start: u64, stop: u64) -> Result<(), String> {
    if stop < start {
        return Err(format!("stop ({stop}) is before start ({start})"));
    }
    if stop - start > MAX_PAGE {
        return Err(format!("a read may ask for at most {MAX_PAGE} posts"));
    }
    Ok(())
}

/// The key of `post_id` written at `timestamp` (finite, `0 <= timestamp <` [`MAX_TIMESTAMP`]):
/// the time zero-padded to a fixed width, so keys sort as times do, then the post id, so
/// posts of one instant sort by id (alike on every replica).
pub fn key(timestamp: f64, post_id: &str) -> String {
    format!("{timestamp:025.6}/{post_id}")
}

/// The post id of a timeline key.
pub fn post_of(key: &str) -> Option<&str> {
    key.split_once('/').map(|(_, post)| post)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_newest_last_with_ties_by_post_id() {
        // (timestamp, post id), oldest first as the keys must sort.
        let posts = [
            (0.0, "9"),
            (1.5, "1"),
            (9.999_999, "1"),
            (10.0, "1"),
            (10.0, "2"),
            (1_733_456_789.123_456, "100"),
            (1_733_456_789.123_457, "1"),
            (9.9e17, "1"),
        ];
        let keys: Vec<String> = posts.iter().map(|(t, id)| key(*t, id)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for ((_, id), key) in posts.iter().zip(&keys) {
            assert_eq!(post_of(key), Some(*id), "{key}");
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert!(check_bounds(0, 10).is_ok());
        assert!(check_bounds(5, 4).is_err());
        assert!(check_bounds(0, MAX_PAGE + 1).is_err());
    }
}
