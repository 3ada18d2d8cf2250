//! Logs and metrics: tracing set up for a terminal or for log shippers; the metric catalogue.

pub mod exporter;
pub mod health;
pub mod metrics;
pub mod systemd;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (timestamps omitted under systemd, where journald adds them).
    Text,
    /// One JSON object per line.
    Json,
}

/// Default filter: our info, the driver's warnings only (its info lines are per connection).
const DEFAULT_FILTER: &str = "info,scylla=warn";

/// Installs the global subscriber. The level comes from `RUST_LOG` (default [`DEFAULT_FILTER`]). Logs go to
/// stderr so that stdout stays clean for command output (`fetch`).
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // journald stamps every line itself; JOURNAL_STREAM is set when stderr goes to the journal.
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let result = match (format, under_journald) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        // Colour only for a person at a terminal, and not when NO_COLOR is set.
        (LogFormat::Text, false) => {
            use std::io::IsTerminal;
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).try_init()
        }
    };
    // A second init (tests) keeps the first subscriber; nothing to report.
    let _ = result;
}
