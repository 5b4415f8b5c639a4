//! `wasi:logging/logging@0.1.0-draft` (wasmCloud's) for components: each message becomes a
//! line of the function's logs, beside what it writes to stderr:
//! `[level] context: message` (`[level] message` without a context).

use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::p2::OutputStream;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/wasi-logging@0.1.0-draft",
        world: "wasi:logging/imports",
        imports: { default: trappable },
    });
}
use bindings::wasi::logging::logging;

/// A store's view of where its log lines go: the instance's captured stderr.
pub(crate) struct LogView<'a>(pub(crate) &'a mut MemoryOutputPipe);

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = LogView<'a>;
}

/// The line a message becomes.
fn line(level: logging::Level, context: &str, message: &str) -> String {
    let level = match level {
        logging::Level::Trace => "trace",
        logging::Level::Debug => "debug",
        logging::Level::Info => "info",
        logging::Level::Warn => "warn",
        logging::Level::Error => "error",
        logging::Level::Critical => "critical",
    };
    match context {
        "" => format!("[{level}] {message}\n"),
        context => format!("[{level}] {context}: {message}\n"),
    }
}

impl logging::Host for LogView<'_> {
    fn log(
        &mut self,
        level: logging::Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        // Past the capture's capacity the line is dropped, as stderr output would be.
        let _ = self.0.write(line(level, &context, &message).into());
        Ok(())
    }
}

/// Adds `wasi:logging/logging` to `linker`.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LogView<'_>,
) -> wasmtime::Result<()> {
    logging::add_to_linker::<T, HasLog>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_level_context_message() {
        assert_eq!(
            line(logging::Level::Warn, "db", "slow query"),
            "[warn] db: slow query\n"
        );
        assert_eq!(
            line(logging::Level::Info, "", "started"),
            "[info] started\n"
        );
    }
}
