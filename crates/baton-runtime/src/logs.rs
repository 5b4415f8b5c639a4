//! The recent output of each function, kept on the host that ran it: bounded, numbered, and
//! watched by followers (`GET /system/logs?follow=true`).

use baton_api::LogQuery;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Baton's own note about the function (start, exit, restart).
    Platform,
}

impl LogStream {
    /// `stdout`, `stderr` or `baton`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Platform => "baton",
        }
    }
}

/// One line a function printed.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Its place in the function's output: increasing, never reused.
    pub seq: u64,
    /// When Baton read it.
    pub time: SystemTime,
    /// Where it came from.
    pub stream: LogStream,
    /// The sandbox that printed it.
    pub instance: Arc<str>,
    /// The text, without its newline.
    pub text: String,
}

impl LogLine {
    /// The line as `GET /system/logs` shows it, for `function`.
    pub fn entry(self, function: &str) -> baton_api::LogEntry {
        baton_api::LogEntry {
            name: function.to_owned(),
            namespace: "baton".into(),
            instance: self.instance.to_string(),
            timestamp: baton_api::rfc3339(self.time),
            text: self.text,
            stream: self.stream.as_str().into(),
        }
    }
}

/// The recent output of one function, bounded so a chatty function cannot grow the node.
#[derive(Debug)]
pub struct FunctionLogs {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    /// The sequence number the next line gets; followers wait for it to move.
    next: watch::Sender<u64>,
}

/// Longest line kept; longer ones are cut and marked.
const MAX_LINE: usize = 4096;

/// Where one sandbox writes: its function's logs, tagged with the sandbox.
#[derive(Debug, Clone)]
pub struct LogSink {
    logs: Arc<FunctionLogs>,
    instance: Arc<str>,
}

impl LogSink {
    /// Appends every line of `text`.
    pub fn push_text(&self, stream: LogStream, text: &[u8]) {
        self.logs.push(&self.instance, stream, text);
    }

    /// The last `tail` lines of this sandbox, oldest first.
    pub fn tail(&self, tail: usize) -> Vec<LogLine> {
        let lines = self.logs.lines.lock().unwrap();
        select(&lines, None, |l| l.instance == self.instance, tail)
    }
}

impl FunctionLogs {
    /// Keeps the last `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        FunctionLogs {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity,
            next: watch::Sender::new(0),
        }
    }

    /// The sink of sandbox `instance`.
    pub fn sink(self: &Arc<Self>, instance: &str) -> LogSink {
        LogSink {
            logs: self.clone(),
            instance: instance.into(),
        }
    }

    fn push(&self, instance: &Arc<str>, stream: LogStream, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(text);
        let time = SystemTime::now();
        let mut lines = self.lines.lock().unwrap();
        let mut seq = *self.next.borrow();
        for line in text.lines() {
            let text = if line.len() > MAX_LINE {
                let mut end = MAX_LINE;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}… [cut]", &line[..end])
            } else {
                line.to_owned()
            };
            if lines.len() == self.capacity {
                lines.pop_front();
            }
            lines.push_back(LogLine {
                seq,
                time,
                stream,
                instance: instance.clone(),
                text,
            });
            seq += 1;
        }
        // Under the lock: followers never see a number before its line.
        self.next.send_replace(seq);
    }

    /// The last `tail` lines, oldest first.
    pub fn tail(&self, tail: usize) -> Vec<LogLine> {
        select(&self.lines.lock().unwrap(), None, |_| true, tail)
    }

    /// The lines `query` asks for (its `tail`, `since` and `instance`); with `follow`, the
    /// stream then stays open and yields each new line as it is printed. Lines printed
    /// faster than a follower reads them, beyond the kept capacity, are skipped.
    pub fn query(
        self: &Arc<Self>,
        query: &LogQuery,
    ) -> impl futures_core::Stream<Item = LogLine> + Send + 'static {
        let keep = {
            let query = query.clone();
            move |line: &LogLine| query.matches(&line.instance, line.time)
        };
        let mut changes = self.next.subscribe();
        // The tail and the point following starts from, read together.
        let (first, next) = {
            let lines = self.lines.lock().unwrap();
            let next = *changes.borrow_and_update();
            (select(&lines, None, &keep, query.tail), next)
        };
        let follow = query.follow;
        let state = (VecDeque::from(first), next, self.clone(), changes, keep);
        futures_util::stream::unfold(
            state,
            move |(mut ready, mut next, logs, mut changes, keep)| async move {
                loop {
                    if let Some(line) = ready.pop_front() {
                        return Some((line, (ready, next, logs, changes, keep)));
                    }
                    if !follow {
                        return None;
                    }
                    changes.changed().await.ok()?;
                    let lines = logs.lines.lock().unwrap();
                    ready.extend(select(&lines, next.checked_sub(1), &keep, usize::MAX));
                    next = *changes.borrow_and_update();
                }
            },
        )
    }
}

/// The last `limit` of `lines` numbered after `after` (all when `None`) that `keep` accepts,
/// oldest first.
fn select(
    lines: &VecDeque<LogLine>,
    after: Option<u64>,
    keep: impl Fn(&LogLine) -> bool,
    limit: usize,
) -> Vec<LogLine> {
    let mut found: Vec<LogLine> = lines
        .iter()
        .rev()
        .take_while(|l| after.is_none_or(|a| l.seq > a))
        .filter(|l| keep(l))
        .take(limit)
        .cloned()
        .collect();
    found.reverse();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::Duration;

    fn query(tail: usize) -> LogQuery {
        LogQuery {
            name: "f".into(),
            tail,
            since: None,
            instance: None,
            follow: false,
        }
    }

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn keeps_only_the_most_recent_lines() {
        let logs = Arc::new(FunctionLogs::new(3));
        logs.sink("a").push_text(LogStream::Stdout, b"a\nb\nc\nd\n");
        assert_eq!(texts(logs.tail(10)), ["b", "c", "d"]);
        assert_eq!(logs.tail(1)[0].text, "d");
        assert_eq!(logs.tail(1)[0].seq, 3);
    }

    #[test]
    fn cuts_overlong_lines() {
        let logs = Arc::new(FunctionLogs::new(3));
        logs.sink("a")
            .push_text(LogStream::Stderr, "é".repeat(5000).as_bytes());
        let line = &logs.tail(1)[0];
        assert!(line.text.ends_with("[cut]") && line.text.len() < 4200);
    }

    #[tokio::test]
    async fn queries_filter_by_instance_and_time_then_take_the_tail() {
        let logs = Arc::new(FunctionLogs::new(100));
        logs.sink("a").push_text(LogStream::Stdout, b"a1\na2\n");
        logs.sink("b").push_text(LogStream::Stdout, b"b1\n");
        let middle = SystemTime::now();
        std::thread::sleep(Duration::from_millis(5));
        logs.sink("a").push_text(LogStream::Stderr, b"a3\n");
        let cases = [
            (query(10), vec!["a1", "a2", "b1", "a3"]),
            (query(2), vec!["b1", "a3"]),
            (
                LogQuery {
                    instance: Some("a".into()),
                    ..query(10)
                },
                vec!["a1", "a2", "a3"],
            ),
            (
                LogQuery {
                    instance: Some("b".into()),
                    ..query(10)
                },
                vec!["b1"],
            ),
            (
                LogQuery {
                    since: Some(middle),
                    ..query(10)
                },
                vec!["a3"],
            ),
        ];
        for (query, expected) in cases {
            let got: Vec<LogLine> = logs.query(&query).collect().await;
            assert_eq!(texts(got), expected, "{query:?}");
        }
    }

    #[tokio::test]
    async fn a_follower_gets_the_tail_then_each_new_line_once() {
        let logs = Arc::new(FunctionLogs::new(100));
        let sink = logs.sink("a");
        sink.push_text(LogStream::Stdout, b"old1\nold2\n");
        let mut follow = Box::pin(logs.query(&LogQuery {
            follow: true,
            ..query(1)
        }));
        assert_eq!(follow.next().await.unwrap().text, "old2");
        sink.push_text(LogStream::Stdout, b"new1\nnew2\n");
        sink.push_text(LogStream::Stderr, b"new3\n");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(follow.next().await.unwrap().text);
        }
        assert_eq!(got, ["new1", "new2", "new3"]);
        // Nothing more until something is printed.
        let waiting = tokio::time::timeout(Duration::from_millis(50), follow.next()).await;
        assert!(waiting.is_err(), "a line that was never printed");
    }
}
