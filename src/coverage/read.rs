//! Reading coverage from the store: day cells (the summary columns of every day, the time
//! column only of days the summary leaves open, whole cells only for price checks) or bar rows
//! (every bar), many partitions at once under one bound, symbol by symbol in day order.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use futures_util::{StreamExt, TryStreamExt};
use scylla::client::session::Session;

use super::{Calendar, CoverageRequest, DayData, MAX_CONCURRENCY, SymbolBuilder, SymbolReport};
use crate::cell::{self, DayColumns};
use crate::config::{Settings, StorageLayout};
use crate::exchange_time::start_of_day;
use crate::fetch::{FetchError, FetchRequest, Fetcher};
use crate::model::{Bucket, Symbol};
use crate::store::{self, Schema, StoreError};
use crate::store::{DayRow, DayStatements, DaySummaryRow};

/// Why a coverage report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("invalid coverage request: {0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading {symbol} month {bucket}: {detail}")]
    Query {
        symbol: String,
        bucket: String,
        detail: String,
    },
    #[error("the day cell of {symbol} on {day} is unreadable: {source}")]
    Cell {
        symbol: String,
        day: NaiveDate,
        source: cell::CellError,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Reads coverage from one keyspace in the layout it holds. Prepare once, run many times.
#[derive(Debug, Clone)]
pub struct Reader {
    session: Arc<Session>,
    schema: Schema,
    days: DayStatements,
    tz: Tz,
    layout: StorageLayout,
}

/// One partition's days with data.
type Partition = (usize, Vec<DayData>);

impl Reader {
    /// Connects with `settings` and prepares (the layout: configured, else what the keyspace
    /// holds).
    pub async fn connect(settings: &Settings) -> Result<Self, CoverageError> {
        let session = Arc::new(store::connect(settings).await?);
        let schema = Schema::from_config(&settings.database);
        Self::prepare(session, &schema, settings.timezone, settings.layout).await
    }

    /// Prepares the day-table statements and resolves the layout.
    pub async fn prepare(
        session: Arc<Session>,
        schema: &Schema,
        tz: Tz,
        configured: Option<StorageLayout>,
    ) -> Result<Self, CoverageError> {
        let layout = store::resolve_layout(&session, schema, configured).await?;
        let days = DayStatements::prepare(&session, schema).await?;
        Ok(Self {
            session,
            schema: schema.clone(),
            days,
            tz,
            layout,
        })
    }

    /// The layout read: `rows` reads bar rows, `days` and `both` read day cells.
    pub fn layout(&self) -> StorageLayout {
        self.layout
    }

    /// Every symbol the keyspace holds in the layout read (a scan of the partition keys).
    pub async fn all_symbols(&self) -> Result<Vec<Symbol>, CoverageError> {
        let table = match self.layout {
            StorageLayout::Rows => self.schema.bars(),
            _ => self.schema.days(),
        };
        let cql = format!("SELECT DISTINCT symbol, bucket FROM {table}");
        let failed = |detail: String| CoverageError::Query {
            symbol: "*".into(),
            bucket: "*".into(),
            detail,
        };
        let mut rows = self
            .session
            .query_iter(cql, ())
            .await
            .map_err(|e| failed(e.to_string()))?
            .rows_stream::<(String, String)>()
            .map_err(|e| failed(e.to_string()))?;
        let mut symbols = Vec::new();
        while let Some((symbol, _)) = rows.try_next().await.map_err(|e| failed(e.to_string()))? {
            symbols.extend(Symbol::new(&symbol));
        }
        symbols.sort_unstable();
        symbols.dedup();
        Ok(symbols)
    }

    /// Reports on `request`, one symbol at a time in ascending order, to `sink`.
    pub async fn run(
        &self,
        mut request: CoverageRequest,
        mut sink: impl FnMut(SymbolReport) -> std::io::Result<()>,
    ) -> Result<(), CoverageError> {
        check(&mut request)?;
        let calendar = Arc::new(Calendar::new(
            self.tz,
            request.from,
            request.to,
            request.session,
        ));
        let mut emitter = Emitter {
            calendar,
            anomalies: request.anomalies.then_some(request.bounds),
            symbols: request.symbols.clone(),
            index: 0,
            current: None,
            sink: &mut sink,
        };
        match self.layout {
            StorageLayout::Rows => self.read_rows(&request, &mut emitter).await?,
            _ => self.read_cells(&request, &mut emitter).await?,
        }
        emitter.push(request.symbols.len(), Vec::new())?;
        Ok(())
    }

    /// Day cells: every (symbol, month) partition, `concurrency` at once, in order.
    async fn read_cells<F: FnMut(SymbolReport) -> std::io::Result<()>>(
        &self,
        request: &CoverageRequest,
        emitter: &mut Emitter<'_, F>,
    ) -> Result<(), CoverageError> {
        let months = months(request.from, request.to);
        let calendar = Arc::clone(&emitter.calendar);
        let n = months.len();
        let parts = (0..request.symbols.len() * n).map(|k| {
            let (s, month) = (k / n, months[k % n]);
            self.read_partition(request, &calendar, s, month)
        });
        let mut stream = futures_util::stream::iter(parts).buffered(request.concurrency);
        while let Some(part) = stream.next().await {
            let (index, days) = part?;
            emitter.push(index, days)?;
        }
        Ok(())
    }

    /// One partition's days: summaries, then the cells of days the summaries leave open (all
    /// days with bars when prices are checked).
    async fn read_partition(
        &self,
        request: &CoverageRequest,
        calendar: &Calendar,
        index: usize,
        month: Bucket,
    ) -> Result<Partition, CoverageError> {
        let symbol = &request.symbols[index];
        let lo = month.first_day().max(request.from);
        let hi = month
            .next()
            .first_day()
            .pred_opt()
            .unwrap_or(lo)
            .min(request.to);
        let bucket = month.to_string();
        let values = (symbol.as_str(), bucket.as_str(), lo, hi);
        let failed = |e: &dyn std::fmt::Display| CoverageError::Query {
            symbol: symbol.to_string(),
            bucket: bucket.clone(),
            detail: e.to_string(),
        };
        if request.anomalies {
            let days = self.read_cells_of(&bucket, symbol, values, true).await?;
            return Ok((index, days));
        }
        let result = self
            .session
            .execute_unpaged(&self.days.select_summary, values)
            .await
            .map_err(|e| failed(&e))?
            .into_rows_result()
            .map_err(|e| failed(&e))?;
        let mut days = Vec::new();
        for row in result.rows::<DaySummaryRow>().map_err(|e| failed(&e))? {
            let row = row.map_err(|e| failed(&e))?;
            days.push(DayData {
                day: row.day,
                bars: row.bar_count.max(0) as u32,
                first: row.first_ts.0,
                last: row.last_ts.0,
                ..DayData::default()
            });
        }
        let open: Vec<NaiveDate> = days
            .iter()
            .filter(|d| calendar.needs_times(d))
            .map(|d| d.day)
            .collect();
        if let (Some(&first), Some(&last)) = (open.first(), open.last()) {
            let values = (symbol.as_str(), bucket.as_str(), first, last);
            let cells = self.read_cells_of(&bucket, symbol, values, false).await?;
            for cell in cells
                .into_iter()
                .filter(|c| open.binary_search(&c.day).is_ok())
            {
                if let Ok(i) = days.binary_search_by_key(&cell.day, |d| d.day) {
                    days[i] = cell;
                }
            }
        }
        Ok((index, days))
    }

    /// The cells of one partition over a range of days: times only, or whole.
    async fn read_cells_of(
        &self,
        bucket: &str,
        symbol: &Symbol,
        values: (&str, &str, NaiveDate, NaiveDate),
        whole: bool,
    ) -> Result<Vec<DayData>, CoverageError> {
        let failed = |e: &dyn std::fmt::Display| CoverageError::Query {
            symbol: symbol.to_string(),
            bucket: bucket.to_owned(),
            detail: e.to_string(),
        };
        let result = self
            .session
            .execute_unpaged(&self.days.select, values)
            .await
            .map_err(|e| failed(&e))?
            .into_rows_result()
            .map_err(|e| failed(&e))?;
        let mut days = Vec::new();
        for row in result.rows::<DayRow>().map_err(|e| failed(&e))? {
            let row = row.map_err(|e| failed(&e))?;
            days.push(decode_row(symbol, row, whole)?);
        }
        Ok(days)
    }

    /// Bar rows: every bar of the range (fetch's reader), grouped into days.
    async fn read_rows<F: FnMut(SymbolReport) -> std::io::Result<()>>(
        &self,
        request: &CoverageRequest,
        emitter: &mut Emitter<'_, F>,
    ) -> Result<(), CoverageError> {
        let calendar = Arc::clone(&emitter.calendar);
        let fetcher = Fetcher::prepare(Arc::clone(&self.session), &self.schema, self.tz).await?;
        let from = start_of_day(self.tz, request.from);
        let end = request.to.succ_opt().unwrap_or(request.to);
        let to = start_of_day(self.tz, end) - chrono::TimeDelta::milliseconds(1);
        let mut fetch = FetchRequest::symbols(request.symbols.clone(), from, to);
        fetch.concurrency = request.concurrency.min(crate::fetch::MAX_CONCURRENCY);
        let mut chunks = fetcher.fetch_chunks(fetch)?;
        let mut grouper = DayGrouper::default();
        while let Some(chunk) = chunks.try_next().await? {
            let index = request
                .symbols
                .binary_search(&chunk.symbol)
                .unwrap_or(request.symbols.len());
            if grouper.symbol != Some(index) {
                if let Some(previous) = grouper.symbol {
                    emitter.push(previous, grouper.take())?;
                }
                grouper.symbol = Some(index);
            }
            for bar in &chunk.bars {
                grouper.add(&calendar, bar);
            }
            if let Some(previous) = grouper.symbol {
                let done = grouper.take_complete();
                emitter.push(previous, done)?;
            }
        }
        if let Some(previous) = grouper.symbol {
            emitter.push(previous, grouper.take())?;
        }
        Ok(())
    }
}

/// Hands each symbol's days to its builder, and each finished report to the sink, in symbol
/// order (symbols with no days get a report of empty days).
struct Emitter<'s, F> {
    calendar: Arc<Calendar>,
    anomalies: Option<super::AnomalyBounds>,
    symbols: Vec<Symbol>,
    index: usize,
    current: Option<SymbolBuilder>,
    sink: &'s mut F,
}

impl<F: FnMut(SymbolReport) -> std::io::Result<()>> Emitter<'_, F> {
    /// Adds `days` of symbol `index`, finishing every symbol before it.
    fn push(&mut self, index: usize, days: Vec<DayData>) -> std::io::Result<()> {
        while self.index < index {
            let builder = self.current.take().unwrap_or_else(|| self.builder());
            (self.sink)(builder.finish())?;
            self.index += 1;
        }
        if index < self.symbols.len() {
            if self.current.is_none() {
                self.current = Some(self.builder());
            }
            if let Some(b) = self.current.as_mut() {
                days.into_iter().for_each(|d| b.push(d));
            }
        }
        Ok(())
    }

    fn builder(&self) -> SymbolBuilder {
        let symbol = &self.symbols[self.index];
        SymbolBuilder::new(Arc::clone(&self.calendar), symbol, self.anomalies)
    }
}

/// Bars of one symbol grouped into exchange-local days as they arrive.
#[derive(Default)]
struct DayGrouper {
    symbol: Option<usize>,
    done: Vec<DayData>,
    open: Option<(i64, DayData)>,
}

impl DayGrouper {
    fn add(&mut self, calendar: &Calendar, bar: &crate::model::Bar) {
        let t = bar.ts_millis;
        if self.open.as_ref().is_none_or(|(end, _)| t >= *end) {
            let date = crate::exchange_time::local_date(calendar.tz, t);
            let end = calendar.get(date).map_or(i64::MAX, |f| f.end);
            if let Some((_, d)) = self.open.take() {
                self.done.push(d);
            }
            let day = DayData {
                day: date,
                first: t,
                columns: Some(DayColumns::default()),
                ..DayData::default()
            };
            self.open = Some((end, day));
        }
        if let Some((_, d)) = self.open.as_mut() {
            d.bars += 1;
            d.last = t;
            if let Some(c) = d.columns.as_mut() {
                c.push(t, bar.open, bar.high, bar.low, bar.close, bar.volume);
            }
        }
    }

    fn take_complete(&mut self) -> Vec<DayData> {
        std::mem::take(&mut self.done)
    }

    fn take(&mut self) -> Vec<DayData> {
        let mut days = std::mem::take(&mut self.done);
        days.extend(self.open.take().map(|(_, d)| d));
        days
    }
}

/// One cell row as a day: its times, or all its columns.
fn decode_row(symbol: &Symbol, row: DayRow, whole: bool) -> Result<DayData, CoverageError> {
    let bad = |source| CoverageError::Cell {
        symbol: symbol.to_string(),
        day: row.day,
        source,
    };
    let mut data = DayData {
        day: row.day,
        bars: row.bar_count.max(0) as u32,
        first: row.first_ts.0,
        last: row.last_ts.0,
        ..DayData::default()
    };
    if whole {
        let mut cols = DayColumns::default();
        cell::decode_into(&row.cell, &mut cols).map_err(bad)?;
        data.columns = Some(cols);
    } else {
        let mut times = Vec::new();
        cell::decode_times(&row.cell, &mut times).map_err(bad)?;
        data.times = Some(times);
    }
    Ok(data)
}

/// Checks the request and puts its symbols in order.
fn check(request: &mut CoverageRequest) -> Result<(), CoverageError> {
    if request.from > request.to {
        return Err(CoverageError::InvalidRequest(format!(
            "from ({}) is after to ({})",
            request.from, request.to
        )));
    }
    if !(1..=MAX_CONCURRENCY).contains(&request.concurrency) {
        return Err(CoverageError::InvalidRequest(format!(
            "concurrency {} is not in 1..={MAX_CONCURRENCY}",
            request.concurrency
        )));
    }
    request.symbols.sort_unstable();
    request.symbols.dedup();
    Ok(())
}

/// The exchange-local months of `[from, to]`.
fn months(from: NaiveDate, to: NaiveDate) -> Vec<Bucket> {
    let last = Bucket::of_local_date(to);
    let mut m = Bucket::of_local_date(from);
    let mut out = vec![m];
    while m < last {
        m = m.next();
        out.push(m);
    }
    out
}
