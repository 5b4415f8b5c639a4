use crate::{LogSink, LogStream};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Reads at most `limit` bytes of `reader`; `Err(())` if there was more.
pub(crate) async fn read_bounded(
    reader: impl AsyncRead + Unpin,
    limit: u64,
) -> std::io::Result<Result<Vec<u8>, ()>> {
    let mut buffer = Vec::new();
    let read = reader.take(limit + 1).read_to_end(&mut buffer).await?;
    if read as u64 > limit {
        return Ok(Err(()));
    }
    Ok(Ok(buffer))
}

/// Copies each line of `reader` into `logs` until it closes.
pub(crate) fn pump_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    stream: LogStream,
    logs: LogSink,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            // A line longer than this is logged in pieces rather than buffered without bound.
            match (&mut lines)
                .take(64 * 1024)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => logs.push_text(stream, &line),
            }
        }
    })
}
