//! Timelines: which posts a read of `[start, stop)` returns, newest first.

/// One entry of a timeline: a post and when it was written (seconds, fractional).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The post's id.
    pub post_id: String,
    /// When the post was written.
    pub timestamp: f64,
}

/// The most a read may ask for at once.
pub const MAX_PAGE: u64 = 1000;

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

/// The post ids of `[start, stop)` of `entries` ordered newest first (ties by post id, so
/// every replica pages alike), as Redis's `ZREVRANGE key start stop-1`.
pub fn page(mut entries: Vec<Entry>, start: u64, stop: u64) -> Vec<String> {
    entries.sort_by(|a, b| {
        b.timestamp
            .total_cmp(&a.timestamp)
            .then_with(|| b.post_id.cmp(&a.post_id))
    });
    entries
        .into_iter()
        .skip(start as usize)
        .take(stop.saturating_sub(start) as usize)
        .map(|e| e.post_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(post_id: &str, timestamp: f64) -> Entry {
        Entry {
            post_id: post_id.into(),
            timestamp,
        }
    }

    #[test]
    fn pages_are_newest_first_and_half_open() {
        let entries = vec![
            entry("a", 1.0),
            entry("c", 3.0),
            entry("b", 2.0),
            entry("d", 3.0),
        ];
        let cases: [(u64, u64, &[&str]); 5] = [
            (0, 10, &["d", "c", "b", "a"]),
            (0, 1, &["d"]),
            (1, 3, &["c", "b"]),
            (3, 3, &[]),
            (5, 9, &[]),
        ];
        for (start, stop, expected) in cases {
            assert_eq!(
                page(entries.clone(), start, stop),
                expected,
                "{start}..{stop}"
            );
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert!(check_bounds(0, 10).is_ok());
        assert!(check_bounds(5, 4).is_err());
        assert!(check_bounds(0, MAX_PAGE + 1).is_err());
    }
}
