//! The read side: bars of one or more symbols over a time range, every month bucket queried
//! concurrently, merged in order (symbol, then time), filtered to a trading session and
//! optionally aggregated.
//!
//! Submodules: [`range`] parses `--from`/`--to` and plans the month buckets; `day` knows each
//! exchange-local day's open and close as instants; `read` runs the bucket queries and merges
//! them; `cells` reads a month of the day-cell table (the `days` and `both` layouts: see
//! `docs/reading-speed.md`); [`resample`] aggregates; [`output`] writes CSV or JSON lines; [`columnar`] builds Arrow
//! record batches and writes them as Parquet or Arrow IPC; the command itself lives in the binary.
//!
//! # Sessions
//! - [`SessionFilter::Regular`]: bars opening in `[09:30, 16:00)` exchange time on NYSE trading
//!   days, and only until 13:00 on early-close days (see [`crate::calendar`]).
//! - [`SessionFilter::Extended`]: bars of trading days outside the regular session (pre- and
//!   post-market; on a half day, from 13:00 on).
//! - [`SessionFilter::All`]: every stored bar, also on days that do not trade.
//!
//! The Python script this replaces kept bars from 09:30 through 16:00 *inclusive* (pandas
//! `between_time`) and ignored early closes; the regular session here ends before 16:00 (13:00 on
//! half days), as the exchange's does.

mod cells;
pub mod columnar;
mod day;
pub mod output;
pub mod range;
mod read;
pub mod resample;

use std::sync::Arc;

use arrow_array::RecordBatch;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use day::Segment;
pub use resample::Interval;

use crate::config::{Settings, StorageLayout};
use crate::model::{Bar, Bucket, Symbol};
use crate::store::{self, Schema, StoreError};

/// Bucket queries in flight at once, unless the request says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The most bucket queries a request may run at once (each holds a bounded buffer).
pub const MAX_CONCURRENCY: usize = 256;

/// Which bars of each day to keep (see the module docs for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionFilter {
    /// The regular session: `[09:30, 16:00)`, `[09:30, 13:00)` on half days, trading days only.
    Regular,
    /// Trading days outside the regular session: pre- and post-market.
    Extended,
    /// Every bar.
    #[default]
    All,
}

impl SessionFilter {
    /// The filter of a command-line name: `regular`, `extended` or `all`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "regular" => Some(Self::Regular),
            "extended" => Some(Self::Extended),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// Whether bars of `segment` pass.
    fn keeps(self, segment: Segment) -> bool {
        match self {
            Self::Regular => segment == Segment::Regular,
            Self::Extended => matches!(segment, Segment::Pre | Segment::Post),
            Self::All => true,
        }
    }
}

/// What to fetch. Build it with [`FetchRequest::new`] (or [`FetchRequest::symbols`]) and adjust
/// the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The symbols (at least one; duplicates are read once), emitted in ascending order; one with
    /// no rows contributes nothing.
    pub symbols: Vec<Symbol>,
    /// First instant included (a bar is included when it *opens* in the range).
    pub from: DateTime<Utc>,
    /// Last instant included.
    pub to: DateTime<Utc>,
    /// Which part of each day (default: all).
    pub session: SessionFilter,
    /// Bar length of the output (default: the stored one-minute bars).
    pub interval: Interval,
    /// Month buckets queried at once (default [`DEFAULT_CONCURRENCY`], 1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
}

impl FetchRequest {
    /// Every one-minute bar of `symbol` opening in `[from, to]`, 8 months queried at once.
    pub fn new(symbol: Symbol, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self::symbols(vec![symbol], from, to)
    }

    /// Every one-minute bar of each of `symbols` opening in `[from, to]`, 8 months (of any
    /// symbols) queried at once.
    pub fn symbols(symbols: Vec<Symbol>, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            symbols,
            from,
            to,
            session: SessionFilter::All,
            interval: Interval::Minute1,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Bars in order (symbol by symbol, each in strictly increasing time); an `Err` item ends the
/// stream.
pub type BarStream = BoxStream<'static, Result<Bar, FetchError>>;

/// Consecutive bars of one symbol, in time order (never empty).
#[derive(Debug, Clone, PartialEq)]
pub struct BarChunk {
    pub symbol: Symbol,
    pub bars: Vec<Bar>,
}

/// Chunks in order: symbol by symbol (ascending), each symbol's bars in strictly increasing
/// time; an `Err` item ends the stream.
pub type ChunkStream = BoxStream<'static, Result<BarChunk, FetchError>>;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request itself is unusable (e.g. `from` after `to`).
    #[error("invalid fetch request: {0}")]
    InvalidRequest(String),
    /// No usable session: the cluster is unreachable, or refused the credentials, the TLS
    /// handshake or the permission to read the bars.
    #[error(transparent)]
    Session(StoreError),
    /// The bars query could not be prepared: the keyspace or table is missing or differs.
    #[error(
        "{0}\n(does the bars table exist? `bar-ingest init-schema` creates it; check \
         database.keyspace, database.bars_table, and database.days_table for the days and both \
         layouts)"
    )]
    Prepare(#[source] StoreError),
    /// A bucket's query failed (after the driver's retries).
    #[error("query for {symbol} month {bucket} failed: {source}")]
    Query {
        symbol: String,
        bucket: Bucket,
        source: Box<scylla::errors::PagerExecutionError>,
    },
    /// The table's columns do not have the types of a bars table.
    #[error("rows of {symbol} month {bucket} do not have the expected types: {source}")]
    Types {
        symbol: String,
        bucket: Bucket,
        source: Box<scylla::errors::TypeCheckError>,
    },
    /// Fetching or decoding a later page failed.
    #[error("reading rows of {symbol} month {bucket} failed: {source}")]
    Rows {
        symbol: String,
        bucket: Bucket,
        source: Box<scylla::client::pager::NextRowError>,
    },
    /// A bar's time cannot be a nanosecond timestamp (columnar output holds 1677 to 2262).
    #[error(
        "a bar of {symbol} at {ts_millis} ms since 1970 is outside the range of nanosecond \
         timestamps (1677-09-21 to 2262-04-11) that columnar output holds"
    )]
    TimestampRange { symbol: String, ts_millis: i64 },
    /// Building a record batch failed (a bug: the columns are built to match the schema).
    #[error("building a record batch: {0}")]
    Arrow(#[source] arrow_schema::ArrowError),
    /// A day cell cannot be read: damaged, of an unknown format version, or not matching its
    /// row or its day.
    #[error("the day cell of {symbol} on {day} cannot be read: {reason}")]
    Cell {
        symbol: String,
        day: NaiveDate,
        reason: String,
    },
    /// A bucket's reader task ended without finishing (a bug: it panicked).
    #[error("the reader of {symbol} month {bucket} stopped unexpectedly: {reason}")]
    ReaderStopped {
        symbol: String,
        bucket: Bucket,
        reason: String,
    },
}

/// Fetches bars from one table (the bars table, or the day-cell table in the `days` and `both`
/// layouts): the prepared query, the session and the exchange time zone. Prepare once, then call
/// [`Fetcher::fetch`] as often as needed.
#[derive(Debug, Clone)]
pub struct Fetcher {
    session: Arc<Session>,
    select: PreparedStatement,
    tz: Tz,
    /// `Rows` reads the bars table; `Days` and `Both` read the day cells.
    layout: StorageLayout,
}

/// A record batch stream (see [`Fetcher::record_batches`]).
pub type BatchStream = BoxStream<'static, Result<RecordBatch, FetchError>>;

impl Fetcher {
    /// Connects with `settings`, resolves the keyspace's layout (`store::resolve_layout`),
    /// checks the permission to read its table and prepares the query: everything a reader
    /// (`bar-ingest fetch`, the Python package) does before fetching.
    pub async fn connect(settings: &Settings) -> Result<Self, FetchError> {
        let session = store::connect(settings)
            .await
            .map_err(FetchError::Session)?;
        let schema = Schema::from_config(&settings.database);
        let layout = store::resolve_layout(&session, &schema, settings.layout)
            .await
            .map_err(FetchError::Session)?;
        let access = match layout {
            StorageLayout::Rows => store::Access::Fetch,
            StorageLayout::Days | StorageLayout::Both => store::Access::FetchDays,
        };
        let user = settings.database.user();
        store::check_access(&session, &schema, access, user)
            .await
            .map_err(FetchError::Session)?;
        Self::prepare_layout(Arc::new(session), &schema, settings.timezone, layout).await
    }

    /// Prepares the bucket query against `schema`'s bars table (the `rows` layout). `tz` is the
    /// exchange time zone (buckets are exchange-local months; the sessions are exchange-local
    /// times).
    pub async fn prepare(
        session: Arc<Session>,
        schema: &Schema,
        tz: Tz,
    ) -> Result<Self, FetchError> {
        Self::prepare_layout(session, schema, tz, StorageLayout::Rows).await
    }

    /// Prepares the bucket query of `layout`: against the bars table for `Rows`, the day-cell
    /// table for `Days` and `Both`.
    pub async fn prepare_layout(
        session: Arc<Session>,
        schema: &Schema,
        tz: Tz,
        layout: StorageLayout,
    ) -> Result<Self, FetchError> {
        let (cql, page) = match layout {
            StorageLayout::Rows => (read::select_cql(&schema.bars()), read::PAGE_ROWS),
            StorageLayout::Days | StorageLayout::Both => {
                (cells::select_cql(&schema.days()), cells::PAGE_DAYS)
            }
        };
        let mut select = store::prepare_idempotent(&session, &cql)
            .await
            .map_err(FetchError::Prepare)?;
        select.set_page_size(page);
        Ok(Self {
            session,
            select,
            tz,
            layout,
        })
    }

    /// The layout this fetcher reads.
    pub fn layout(&self) -> StorageLayout {
        self.layout
    }

    /// The bars `request` asks for, as a stream: symbol by symbol, each in time order (use
    /// [`Fetcher::fetch_chunks`] to know which symbol a bar belongs to). Queries start when the
    /// stream is first polled (inside a Tokio runtime) and stop when it is dropped.
    pub fn fetch(&self, request: FetchRequest) -> Result<BarStream, FetchError> {
        let chunks = self.fetch_chunks(request)?;
        Ok(chunks
            .map_ok(|chunk| futures_util::stream::iter(chunk.bars.into_iter().map(Ok)))
            .try_flatten()
            .boxed())
    }

    /// The bars `request` asks for, in chunks labelled with their symbol: symbols in ascending
    /// order, each symbol's bars in time order. Every partition (symbol and month) of the request
    /// is queried under the one bound `request.concurrency`. Queries start when the stream is
    /// first polled (inside a Tokio runtime) and stop when it is dropped.
    pub fn fetch_chunks(&self, request: FetchRequest) -> Result<ChunkStream, FetchError> {
        let (plan, concurrency) = self.plan(request)?;
        let reader: read::Reader<Vec<Bar>> = match self.layout {
            StorageLayout::Rows => read::rows_reader,
            StorageLayout::Days | StorageLayout::Both => cells::bars_reader,
        };
        let merge = read::Merge::new(plan, concurrency, reader);
        Ok(futures_util::stream::unfold(merge, |mut merge| async move {
            merge.next().await.map(|item| (item, merge))
        })
        .boxed())
    }

    /// The bars `request` asks for as Arrow record batches of `columns`, in the order of
    /// [`Fetcher::fetch_chunks`]. From day cells at the one-minute interval, each partition's
    /// cells decode straight into the batch's columns (one batch per symbol and month, handed to
    /// Arrow without a copy); otherwise batches of `batch_rows` rows are built from the chunks.
    pub fn record_batches(
        &self,
        request: FetchRequest,
        columns: columnar::Columns,
        batch_rows: usize,
    ) -> Result<BatchStream, FetchError> {
        if self.layout == StorageLayout::Rows || request.interval != Interval::Minute1 {
            let chunks = self.fetch_chunks(request)?;
            return Ok(columnar::record_batches(chunks, columns, batch_rows));
        }
        let (plan, concurrency) = self.plan(request)?;
        let merge = read::Merge::new(plan, concurrency, cells::columns_reader);
        Ok(
            futures_util::stream::unfold(merge, move |mut merge| async move {
                let item = merge.next_item().await?.and_then(|(symbol, month)| {
                    let symbol = &merge.symbols()[symbol];
                    columnar::columns_batch(columns, symbol, month)
                });
                Some((item, merge))
            })
            .boxed(),
        )
    }

    /// The checked request as the plan every partition reader shares, and its concurrency.
    fn plan(&self, request: FetchRequest) -> Result<(read::Plan, usize), FetchError> {
        let FetchRequest {
            mut symbols,
            from,
            to,
            session,
            interval,
            concurrency,
        } = request;
        let range = range::TimeRange::new(from, to).ok_or_else(|| {
            FetchError::InvalidRequest(format!("from ({from}) is after to ({to})"))
        })?;
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(FetchError::InvalidRequest(format!(
                "concurrency {concurrency} is not in 1..={MAX_CONCURRENCY}"
            )));
        }
        if symbols.is_empty() {
            return Err(FetchError::InvalidRequest("no symbol to fetch".into()));
        }
        symbols.sort_unstable();
        symbols.dedup();
        let filter = match (interval, session) {
            (Interval::Day1, SessionFilter::Extended) => {
                return Err(FetchError::InvalidRequest(
                    "daily bars are built from the regular session; extended hours have none"
                        .into(),
                ));
            }
            (Interval::Day1, _) => SessionFilter::Regular,
            (_, s) => s,
        };
        let plan = read::Plan {
            session: Arc::clone(&self.session),
            select: self.select.clone(),
            symbols: symbols.into(),
            range,
            tz: self.tz,
            filter,
            interval,
        };
        Ok((plan, concurrency))
    }
}

/// Bars of the symbols of `request` over an inclusive time range, symbol by symbol in time order,
/// as a stream: every month bucket of the range is queried (up to `request.concurrency` at once, each paged by the
/// driver), filtered to `request.session` and aggregated to `request.interval`. Memory stays
/// bounded whatever the range. An unknown symbol gives an empty stream.
///
/// This resolves the keyspace's layout (`store::resolve_layout` with none configured) and
/// prepares the query each time; to fetch repeatedly, keep a [`Fetcher`].
///
/// # Example
/// ```no_run
/// use std::sync::Arc;
/// use bar_ingest::config::Settings;
/// use bar_ingest::fetch::{fetch_bars, FetchRequest, Interval, SessionFilter};
/// use bar_ingest::model::Symbol;
/// use bar_ingest::store::{self, Schema};
/// use futures_util::TryStreamExt;
///
/// # async fn example() -> anyhow::Result<()> {
/// let settings = Settings::defaults(None)?;
/// let session = Arc::new(store::connect(&settings).await?);
/// let schema = Schema::from_config(&settings.database);
/// let symbol = Symbol::new("AAPL").expect("a valid symbol");
/// let mut request = FetchRequest::new(
///     symbol,
///     "2024-03-01T00:00:00-05:00".parse()?,
///     "2024-03-31T23:59:59-04:00".parse()?,
/// );
/// request.session = SessionFilter::Regular;
/// request.interval = Interval::Minutes5;
///
/// let mut bars = fetch_bars(session, &schema, settings.timezone, request).await?;
/// while let Some(bar) = bars.try_next().await? {
///     println!("{} {} {}", bar.ts_millis, bar.close, bar.volume);
/// }
/// # Ok(())
/// # }
/// ```
pub async fn fetch_bars(
    session: Arc<Session>,
    schema: &Schema,
    tz: Tz,
    request: FetchRequest,
) -> Result<BarStream, FetchError> {
    let layout = store::resolve_layout(&session, schema, None)
        .await
        .map_err(FetchError::Session)?;
    Fetcher::prepare_layout(session, schema, tz, layout)
        .await?
        .fetch(request)
}

/// UTC milliseconds of a New York wall time that exists once (tests of the fetch modules).
#[cfg(test)]
pub(crate) fn ny(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> i64 {
    use chrono::TimeZone;
    chrono_tz::America::New_York
        .with_ymd_and_hms(y, m, d, hh, mm, 0)
        .single()
        .expect("a New York time that exists once")
        .timestamp_millis()
}
