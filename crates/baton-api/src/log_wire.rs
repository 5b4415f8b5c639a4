//! Log queries and lines on the cluster protocol: what a gateway asks each worker for and
//! what the workers send back.

use crate::cluster::{LogLine, LogRequest};
use crate::{LogEntry, LogQuery};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (0 before it).
pub fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `query` as a worker is asked it.
pub fn query_to_wire(query: &LogQuery) -> LogRequest {
    LogRequest {
        function: query.name.clone(),
        tail: u32::try_from(query.tail).unwrap_or(u32::MAX),
        since_unix_micros: query.since.map_or(0, unix_micros),
        instance: query.instance.clone().unwrap_or_default(),
        follow: query.follow,
    }
}

/// The query a worker received.
pub fn query_from_wire(request: &LogRequest) -> LogQuery {
    LogQuery {
        name: request.function.clone(),
        tail: request.tail as usize,
        since: (request.since_unix_micros > 0)
            .then(|| UNIX_EPOCH + Duration::from_micros(request.since_unix_micros)),
        instance: (!request.instance.is_empty()).then(|| request.instance.clone()),
        follow: request.follow,
    }
}

/// RFC 3339 with milliseconds, in UTC: how log lines and creation times are shown. Times the
/// format cannot show (before 1970, after 9999, as a peer may send) are clamped to its range.
pub fn rfc3339(time: SystemTime) -> String {
    // 9999-12-31T23:59:59.999Z.
    let last = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    humantime::format_rfc3339_millis(time.clamp(UNIX_EPOCH, last)).to_string()
}

/// A worker's line as `GET /system/logs` shows it.
pub fn entry_from_wire(line: LogLine) -> LogEntry {
    LogEntry {
        name: line.function,
        namespace: "baton".into(),
        instance: line.instance,
        timestamp: rfc3339(UNIX_EPOCH + Duration::from_micros(line.unix_micros)),
        text: line.text,
        stream: line.stream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_any_time_are_shown_clamped_to_the_formats_range() {
        // Found by the fuzz target `cluster_messages`: a worker's line stamped past year 9999
        // made the gateway panic.
        let line = |unix_micros| LogLine {
            unix_micros,
            ..LogLine::default()
        };
        assert_eq!(
            entry_from_wire(line(u64::MAX)).timestamp,
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            entry_from_wire(line(0)).timestamp,
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_query_survives_the_wire() {
        let since = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let queries = [
            LogQuery {
                name: "f".into(),
                tail: 100,
                since: None,
                instance: None,
                follow: false,
            },
            LogQuery {
                name: "g".into(),
                tail: 0,
                since: Some(since),
                instance: Some("g-1".into()),
                follow: true,
            },
        ];
        for query in queries {
            assert_eq!(query_from_wire(&query_to_wire(&query)), query);
        }
    }
}
