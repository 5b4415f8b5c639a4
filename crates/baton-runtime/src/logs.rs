use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

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
    /// When Baton read it.
    pub time: SystemTime,
    /// Where it came from.
    pub stream: LogStream,
    /// The text, without its newline.
    pub text: String,
}

/// The recent output of one function, bounded so a chatty function cannot grow the node.
#[derive(Debug)]
pub struct FunctionLogs {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
}

/// Longest line kept; longer ones are cut and marked.
const MAX_LINE: usize = 4096;

impl FunctionLogs {
    /// Keeps the last `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        FunctionLogs {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity,
        }
    }

    /// Appends every line of `text`.
    pub fn push_text(&self, stream: LogStream, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(text);
        let time = SystemTime::now();
        let mut lines = self.lines.lock().unwrap();
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
            lines.push_back(LogLine { time, stream, text });
        }
    }

    /// The last `tail` lines, oldest first.
    pub fn tail(&self, tail: usize) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .skip(lines.len().saturating_sub(tail))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_most_recent_lines() {
        let logs = FunctionLogs::new(3);
        logs.push_text(LogStream::Stdout, b"a\nb\nc\nd\n");
        let tail: Vec<String> = logs.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(tail, ["b", "c", "d"]);
        assert_eq!(logs.tail(1)[0].text, "d");
    }

    #[test]
    fn cuts_overlong_lines() {
        let logs = FunctionLogs::new(3);
        logs.push_text(LogStream::Stderr, "é".repeat(5000).as_bytes());
        let line = &logs.tail(1)[0];
        assert!(line.text.ends_with("[cut]") && line.text.len() < 4200);
    }
}
