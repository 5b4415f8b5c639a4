//! `GET /system/logs` in cluster mode: output stays on the workers that ran the function;
//! the gateway asks every live worker and merges what they send.

use baton_api::cluster::{self as proto};
use baton_api::cluster_auth::{ClientAuth, worker_conn};
use baton_api::{ApiError, LogEntries, LogQuery, entry_from_wire, query_to_wire};
use futures_util::StreamExt;
use std::time::Duration;

/// Deadline for one worker's tail; a worker that does not answer in time is left out.
const WORKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The lines `query` asks for from `workers` (gRPC addresses). Without `follow`: each
/// worker's tail, merged by time, the last `tail` of them. With `follow`: every worker's
/// stream as lines arrive (each worker's in order), open while the client listens; workers
/// that join later are not followed.
pub(crate) async fn gather(
    workers: Vec<String>,
    auth: &ClientAuth,
    query: &LogQuery,
) -> Result<LogEntries, ApiError> {
    let request = query_to_wire(query);
    let opened = futures_util::future::join_all(workers.iter().map(|address| {
        let request = request.clone();
        async move {
            let mut client = worker_conn(address, auth).ok()?;
            let mut call = tonic::Request::new(request);
            if !query.follow {
                call.set_timeout(WORKER_TIMEOUT);
            }
            let opened = tokio::time::timeout(WORKER_TIMEOUT, client.logs(call));
            match opened.await {
                Ok(Ok(stream)) => Some(stream.into_inner()),
                Ok(Err(status)) => {
                    tracing::debug!(worker = %address, error = %status.message(), "no logs from worker");
                    None
                }
                Err(_) => None,
            }
        }
    }))
    .await;
    let streams: Vec<_> = opened
        .into_iter()
        .flatten()
        // A worker that fails mid-stream ends its part, not the others'.
        .map(|s| {
            s.take_while(|line| std::future::ready(line.is_ok()))
                .map(Result::unwrap)
        })
        .collect();
    if query.follow {
        let merged = futures_util::stream::select_all(streams.into_iter().map(Box::pin));
        return Ok(Box::pin(merged.map(entry_from_wire)));
    }
    let tails = futures_util::future::join_all(streams.into_iter().map(|stream| async move {
        tokio::time::timeout(WORKER_TIMEOUT, stream.collect::<Vec<_>>())
            .await
            .unwrap_or_default()
    }))
    .await;
    let lines = merge_tails(tails, query.tail);
    Ok(Box::pin(futures_util::stream::iter(
        lines.into_iter().map(entry_from_wire),
    )))
}

/// The last `tail` lines of several workers' tails, oldest first (by time; by worker on a
/// tie, so the order is stable).
fn merge_tails(tails: Vec<Vec<proto::LogLine>>, tail: usize) -> Vec<proto::LogLine> {
    let mut lines: Vec<(u64, usize, usize, proto::LogLine)> = tails
        .into_iter()
        .enumerate()
        .flat_map(|(worker, lines)| {
            lines
                .into_iter()
                .enumerate()
                .map(move |(n, line)| (line.unix_micros, worker, n, line))
        })
        .collect();
    lines.sort_by_key(|(time, worker, n, _)| (*time, *worker, *n));
    let skip = lines.len().saturating_sub(tail);
    lines
        .into_iter()
        .skip(skip)
        .map(|(.., line)| line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: u64, text: &str) -> proto::LogLine {
        proto::LogLine {
            function: "f".into(),
            instance: "f-1".into(),
            stream: "stdout".into(),
            unix_micros: time,
            text: text.into(),
        }
    }

    #[test]
    fn tails_merge_by_time_and_keep_the_last() {
        let tails = || {
            vec![
                vec![line(1, "a1"), line(5, "a5"), line(9, "a9")],
                vec![line(2, "b2"), line(5, "b5")],
                vec![],
            ]
        };
        let cases: [(usize, &[&str]); 4] = [
            (10, &["a1", "b2", "a5", "b5", "a9"]),
            (3, &["a5", "b5", "a9"]),
            (1, &["a9"]),
            (0, &[]),
        ];
        for (tail, expected) in cases {
            let texts: Vec<String> = merge_tails(tails(), tail)
                .into_iter()
                .map(|l| l.text)
                .collect();
            assert_eq!(texts, expected, "tail {tail}");
        }
    }
}
