//! `bar_ingest._native`: the Python extension module. A `Client` connects once and fetches bars
//! as `pyarrow.Table`s, handing the Arrow buffers built in Rust to pyarrow without copying them
//! (the Arrow C data interface); the GIL is released while connecting and fetching.
//!
//! The Python package `bar_ingest` (python/bar_ingest/__init__.py) wraps this module: it turns
//! dates and datetimes into the time strings [`parse_time`] reads and caches clients.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_pyarrow::{IntoPyArrow, Table};
use chrono_tz::Tz;
use futures_util::TryStreamExt;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use tokio::runtime::Runtime;

use bar_ingest::config::Settings;
mod coverage;
use bar_ingest::fetch::columnar::{BATCH_ROWS, Columns};
use bar_ingest::fetch::range::{RangeEnd, parse_time};
use bar_ingest::fetch::{
    FetchError as RustFetchError, FetchRequest, Fetcher, Interval, MAX_CONCURRENCY, SessionFilter,
};
use bar_ingest::model::Symbol;

create_exception!(
    bar_ingest,
    Error,
    PyRuntimeError,
    "Base class of the errors of bar_ingest (bad arguments raise ValueError or TypeError)."
);
create_exception!(
    bar_ingest,
    ConfigError,
    Error,
    "The configuration file cannot be read or holds an unusable value."
);
create_exception!(
    bar_ingest,
    ConnectError,
    Error,
    "No usable database session: the cluster is unreachable, or refused the credentials, the \
     TLS handshake or the permission to read the bars."
);
create_exception!(
    bar_ingest,
    FetchError,
    Error,
    "Reading the bars failed: the bars table is missing or differs, or a query failed."
);

/// How often a running fetch lets Python look at its signals (Ctrl-C interrupts a fetch).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The Tokio runtime of this process: created at the first use and again in a child process
/// after `fork()` (the parent's worker threads do not exist there).
static RUNTIME: Mutex<Option<ProcessRuntime>> = Mutex::new(None);

/// A runtime and the process it was started in.
struct ProcessRuntime {
    pid: u32,
    runtime: &'static Runtime,
}

/// This process's runtime (multi-threaded: every month of a fetch is queried concurrently).
fn runtime() -> PyResult<&'static Runtime> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if let Some(current) = slot.as_ref().filter(|r| r.pid == pid) {
        return Ok(current.runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bar-ingest")
        .build()
        .map_err(|e| Error::new_err(format!("cannot start the Tokio runtime: {e}")))?;
    // Never dropped: it lives as long as the process. A runtime inherited through fork() is
    // leaked too, as dropping it would wait for worker threads that are not in this process.
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some(ProcessRuntime { pid, runtime });
    Ok(runtime)
}

/// Runs `future` on the runtime with the GIL released, coming back every [`SIGNAL_POLL`] to let
/// Python handle signals: on `KeyboardInterrupt` (or any exception a signal handler raises) the
/// work is cancelled and the exception propagates.
fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let runtime = runtime()?;
    let mut task = runtime.spawn(future);
    loop {
        let finished = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut task).await })
        });
        match finished {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => {
                return Err(Error::new_err(format!(
                    "bar_ingest stopped unexpectedly: {e}"
                )));
            }
            Err(_still_running) => {
                if let Err(signal) = py.check_signals() {
                    task.abort();
                    return Err(signal);
                }
            }
        }
    }
}

/// The message of `error` and of every cause not already part of it, `outer: inner: ...` (the
/// errors of bar-ingest often print their source in their own message).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// A Python exception for a fetch error: `ValueError` for an unusable request, `ConnectError`
/// for no usable session, else `FetchError`.
fn fetch_error(error: &RustFetchError) -> PyErr {
    match error {
        RustFetchError::InvalidRequest(_) => PyValueError::new_err(chain(error)),
        RustFetchError::Session(_) => ConnectError::new_err(chain(error)),
        _ => FetchError::new_err(chain(error)),
    }
}

/// `ValueError`: `name` `value`: `reason`.
fn bad_argument(name: &str, value: &str, reason: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{name} `{value}`: {reason}"))
}

/// The symbols of a `symbols` argument: one `str` (`true`: a single symbol) or an iterable of
/// them.
fn symbols_argument(symbols: &Bound<'_, PyAny>) -> PyResult<(Vec<Symbol>, bool)> {
    let symbol = |text: &str| {
        Symbol::new(text.trim()).ok_or_else(|| {
            bad_argument(
                "symbols",
                text,
                format_args!(
                    "not a symbol (1 to {} ASCII letters, digits, `.` or `-`, starting with a \
                     letter or digit)",
                    Symbol::MAX_LEN
                ),
            )
        })
    };
    if let Ok(one) = symbols.cast::<PyString>() {
        return Ok((vec![symbol(&one.to_cow()?)?], true));
    }
    let items = symbols.try_iter().map_err(|_| {
        PyTypeError::new_err("symbols must be a str or an iterable of str (e.g. a list)")
    })?;
    let mut out = Vec::new();
    for item in items {
        let item = item?;
        let text = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "symbols must hold str values, not {}",
                item.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })?;
        out.push(symbol(&text.to_cow()?)?);
    }
    if out.is_empty() {
        return Err(PyValueError::new_err("symbols: no symbol given"));
    }
    Ok((out, false))
}

/// The request the arguments of [`Client::fetch`] describe, or a `ValueError` naming the first
/// unusable one.
fn request_from_arguments(
    symbols: Vec<Symbol>,
    start: &str,
    end: &str,
    session: &str,
    interval: &str,
    concurrency: i64,
    tz: Tz,
) -> PyResult<FetchRequest> {
    let time = |end_of_range: RangeEnd, name: &str, text: &str| {
        parse_time(end_of_range, text, tz).map_err(|e| bad_argument(name, text, e.reason))
    };
    let from = time(RangeEnd::From, "start", start)?;
    let to = time(RangeEnd::To, "end", end)?;
    if from > to {
        return Err(bad_argument(
            "start",
            start,
            format_args!("is after end `{end}`"),
        ));
    }
    let session_filter = SessionFilter::from_name(session).ok_or_else(|| {
        bad_argument(
            "session",
            session,
            "expected `regular`, `extended` or `all`",
        )
    })?;
    let bar_interval = Interval::from_name(interval).ok_or_else(|| {
        bad_argument(
            "interval",
            interval,
            "expected `1m`, `5m`, `15m`, `30m`, `1h` or `1d`",
        )
    })?;
    if bar_interval == Interval::Day1 && session_filter == SessionFilter::Extended {
        return Err(bad_argument(
            "interval",
            interval,
            "daily bars come from the regular session only; use session `regular` or `all`",
        ));
    }
    let concurrency = usize::try_from(concurrency)
        .ok()
        .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
        .ok_or_else(|| {
            bad_argument(
                "concurrency",
                &concurrency.to_string(),
                format_args!("expected a number from 1 to {MAX_CONCURRENCY}"),
            )
        })?;
    let mut request = FetchRequest::symbols(symbols, from, to);
    request.session = session_filter;
    request.interval = bar_interval;
    request.concurrency = concurrency;
    Ok(request)
}

/// A connection to the bars table, made once (the configuration loaded, the session opened, the
/// read permission checked and the query prepared); `fetch` can then be called any number of
/// times, from any thread.
///
/// `config` is the path of a bar-ingest configuration file; without it, `$BAR_INGEST_CONFIG`,
/// else the built-in defaults (`127.0.0.1:9042`, keyspace `market_data`).
/// `$BAR_INGEST_CONTACT_POINTS` overrides `database.contact_points`.
///
/// Raises `ConfigError` for an unusable configuration, `ConnectError` when no usable session
/// opens (unreachable, credentials, TLS, permission), `FetchError` when the bars table is
/// missing or differs.
#[pyclass(module = "bar_ingest._native", frozen)]
struct Client {
    fetcher: Fetcher,
    /// The settings connected with (coverage opens its own reader with them).
    settings: Settings,
    /// The exchange time zone (`input.timezone`).
    tz: Tz,
    /// The configuration file read, if any.
    config: Option<PathBuf>,
    /// The process that connected: the session's connections do not survive a `fork()`.
    pid: u32,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (config=None))]
    fn new(py: Python<'_>, config: Option<PathBuf>) -> PyResult<Self> {
        let settings = Settings::from_environment(config.as_deref())
            .map_err(|e| ConfigError::new_err(chain(&e)))?;
        let tz = settings.timezone;
        let source = settings.source.clone();
        let kept = settings.clone();
        let fetcher = block_on(py, async move {
            Fetcher::connect(&settings)
                .await
                .map_err(|e| fetch_error(&e))
        })??;
        Ok(Self {
            fetcher,
            settings: kept,
            tz,
            config: source,
            pid: std::process::id(),
        })
    }

    /// The bars of `symbols` whose open time lies in `[start, end]` (both included), as a
    /// `pyarrow.Table`.
    ///
    /// - `symbols`: one symbol (`str`; the table has no `symbol` column) or an iterable of them
    ///   (a `symbol` column first; rows ordered by symbol, then time). An unknown symbol has no
    ///   rows.
    /// - `start`, `end`: `YYYY-MM-DD` (as `start` the start of that exchange day, as `end` its
    ///   end), `YYYY-MM-DD HH:MM[:SS[.f]]` in exchange time, or RFC 3339 with an offset.
    /// - `session`: `regular`, `extended` or `all`; `interval`: `1m`, `5m`, `15m`, `30m`, `1h`
    ///   or `1d`.
    /// - `exchange_time`: annotate `timestamp` with the exchange's zone instead of UTC (the
    ///   instants are the same).
    /// - `concurrency`: month partitions queried at once (1 to 256).
    ///
    /// Columns: [`symbol` (string)], `timestamp` (timestamp[ns, tz]), `open`, `high`, `low`,
    /// `close`, `volume` (float64; volumes as delivered, fractional ones included). Bad
    /// arguments raise `ValueError` naming the argument.
    #[pyo3(signature = (
        symbols, start, end, session="regular", interval="1m", exchange_time=false, concurrency=8
    ))]
    #[allow(clippy::too_many_arguments)]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        symbols: &Bound<'py, PyAny>,
        start: &str,
        end: &str,
        session: &str,
        interval: &str,
        exchange_time: bool,
        concurrency: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.pid != std::process::id() {
            return Err(Error::new_err(format!(
                "this Client was connected in process {} and cannot be used after a fork(); \
                 create a new Client in this process",
                self.pid
            )));
        }
        let (symbols, single) = symbols_argument(symbols)?;
        let request = request_from_arguments(
            symbols,
            start.trim(),
            end.trim(),
            session,
            interval,
            concurrency,
            self.tz,
        )?;
        let columns = Columns {
            zone: exchange_time.then_some(self.tz),
            symbol: !single,
        };
        let batches = self
            .fetcher
            .record_batches(request, columns, BATCH_ROWS)
            .map_err(|e| fetch_error(&e))?;
        let batches: Vec<RecordBatch> = block_on(py, async move { batches.try_collect().await })?
            .map_err(|e| fetch_error(&e))?;
        // pyarrow.Table.from_batches(batches, schema): the schema holds for an empty result too.
        let table = Table::try_new(batches, columns.schema())
            .map_err(|e| Error::new_err(format!("assembling the table: {e}")))?;
        table.into_pyarrow(py)
    }

    /// The coverage report of `symbols` over the exchange days `[start, end]` (`YYYY-MM-DD`), as
    /// a `pyarrow.Table` with one row per symbol-day: the rows of `bar-ingest coverage --format
    /// json` (columns symbol, day, trading_day, half_day, expected, present, missing,
    /// longest_gap_minutes, bars, anomalies). `session`: `regular`, `extended` or `all`;
    /// `anomalies`: also check prices (reads whole day cells).
    #[pyo3(signature = (symbols, start, end, session="regular", anomalies=false))]
    fn coverage<'py>(
        &self,
        py: Python<'py>,
        symbols: &Bound<'py, PyAny>,
        start: &str,
        end: &str,
        session: &str,
        anomalies: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        use bar_ingest::coverage::{CoverageRequest, CoverageSession, Reader};
        let (symbols, _) = symbols_argument(symbols)?;
        let day = |name: &str, text: &str| {
            text.trim()
                .parse::<chrono::NaiveDate>()
                .map_err(|e| bad_argument(name, text, format_args!("expected YYYY-MM-DD: {e}")))
        };
        let mut request = CoverageRequest::new(symbols, day("start", start)?, day("end", end)?);
        request.session = CoverageSession::from_name(session)
            .ok_or_else(|| bad_argument("session", session, "expected regular, extended or all"))?;
        request.anomalies = anomalies;
        let settings = self.settings.clone();
        let reports = block_on(py, async move {
            let reader = Reader::connect(&settings).await?;
            let mut reports = Vec::new();
            reader
                .run(request, |r| {
                    reports.push(r);
                    Ok(())
                })
                .await?;
            Ok::<_, bar_ingest::coverage::CoverageError>(reports)
        })?
        .map_err(|e| FetchError::new_err(chain(&e)))?;
        let batch = coverage::batch(&reports)
            .map_err(|e| Error::new_err(format!("assembling the table: {e}")))?;
        let table = Table::try_new(vec![batch], coverage::schema())
            .map_err(|e| Error::new_err(format!("assembling the table: {e}")))?;
        table.into_pyarrow(py)
    }

    /// The exchange time zone of the configuration (`input.timezone`), e.g. `America/New_York`.
    #[getter]
    fn timezone(&self) -> &'static str {
        self.tz.name()
    }

    /// The configuration file read, or None for the built-in defaults.
    #[getter]
    fn config(&self) -> Option<PathBuf> {
        self.config.clone()
    }

    fn __repr__(&self) -> String {
        match &self.config {
            Some(path) => format!("Client(config={:?})", path.display().to_string()),
            None => "Client(config=None)".to_owned(),
        }
    }
}

/// Bars stored by bar-ingest, fetched as pyarrow Tables (use the package `bar_ingest`).
#[pymodule]
mod _native {
    #[pymodule_export]
    use super::{Client, ConfigError, ConnectError, Error, FetchError};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("MAX_CONCURRENCY", bar_ingest::fetch::MAX_CONCURRENCY)?;
        Ok(())
    }
}
