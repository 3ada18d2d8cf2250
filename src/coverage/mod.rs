//! Coverage and data quality: for each symbol and exchange-local day, the minutes expected in a
//! session, the bars present, what is missing and the longest gap, bars on days that do not
//! trade, and price anomalies (suspected unadjusted splits, jumps, runs of identical bars, bars
//! after a half day's close).
//!
//! Submodules: `day` knows each day's expected window and turns bar times (or a day's summary)
//! into counts; [`anomalies`] checks a day's prices; `read` gets the days from the store (day
//! cells: the summary columns, the time column only where needed, whole cells only for
//! anomalies; bar rows: every bar); [`output`] writes the table, CSV and JSON lines.

pub mod anomalies;
mod day;
pub mod output;
mod read;
pub mod staleness;

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

pub use anomalies::{AnomalyBounds, AnomalyKind};
pub use day::CoverageSession;
use day::{DayFacts, TimeStats};
pub use read::{CoverageError, Reader};

use crate::cell::DayColumns;
use crate::model::Symbol;

/// Partitions (symbol and month) read at once, unless the request says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// The most partitions a request may read at once.
pub const MAX_CONCURRENCY: usize = 256;

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageRequest {
    /// The symbols, reported in ascending order (duplicates once).
    pub symbols: Vec<Symbol>,
    /// First and last exchange-local day, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Which minutes of a trading day are expected (default: regular).
    pub session: CoverageSession,
    /// Whether to check prices (reads whole cells; default false: counts and times only).
    pub anomalies: bool,
    /// The bounds of the price checks.
    pub bounds: AnomalyBounds,
    /// Partitions read at once (1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
}

impl CoverageRequest {
    /// The regular session of `symbols` over `[from, to]`, no price checks.
    pub fn new(symbols: Vec<Symbol>, from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            symbols,
            from,
            to,
            session: CoverageSession::Regular,
            anomalies: false,
            bounds: AnomalyBounds::default(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// One symbol-day: every trading day of the range, and each other day that has bars.
#[derive(Debug, Clone, PartialEq)]
pub struct DayCoverage {
    pub symbol: String,
    /// `YYYY-MM-DD`, exchange-local.
    pub day: NaiveDate,
    pub trading_day: bool,
    pub half_day: bool,
    /// Minutes in the session (0 on a day that does not trade).
    pub expected: u32,
    /// Minutes of the session with a bar (on a day that does not trade: its bars).
    pub present: u32,
    pub missing: u32,
    /// The longest run of missing session minutes.
    pub longest_gap_minutes: u32,
    /// Every bar stored for the day, in the session or not.
    pub bars: u32,
    /// First and last stored bar of the day, UTC milliseconds.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// One anomaly of one symbol-day.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub symbol: String,
    pub day: NaiveDate,
    pub kind: AnomalyKind,
}

/// One symbol's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolSummary {
    pub symbol: String,
    pub trading_days: u32,
    /// Trading days with at least one bar in the session.
    pub days_with_data: u32,
    /// Trading days with every expected minute present.
    pub complete_days: u32,
    pub expected: u64,
    pub present: u64,
    /// `present / expected` in percent (100 when nothing is expected).
    pub completeness_pct: f64,
    /// Days that do not trade but hold bars.
    pub non_trading_days_with_bars: u32,
    pub anomalies: u32,
}

/// Everything about one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolReport {
    pub summary: SymbolSummary,
    pub days: Vec<DayCoverage>,
    pub anomalies: Vec<Anomaly>,
}

/// What the store holds for one day of one symbol: the summary, and the times or whole bars
/// when they were read.
#[derive(Debug, Clone, Default)]
pub(crate) struct DayData {
    pub day: NaiveDate,
    pub bars: u32,
    pub first: i64,
    pub last: i64,
    pub times: Option<Vec<i64>>,
    pub columns: Option<DayColumns>,
}

/// The facts of every day of a range, computed once for all symbols.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub tz: Tz,
    from: NaiveDate,
    days: Vec<DayFacts>,
}

impl Calendar {
    pub fn new(tz: Tz, from: NaiveDate, to: NaiveDate, session: CoverageSession) -> Self {
        let days = from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| DayFacts::of(tz, d, session))
            .collect();
        Self { tz, from, days }
    }

    pub fn get(&self, date: NaiveDate) -> Option<&DayFacts> {
        let i = usize::try_from((date - self.from).num_days()).ok()?;
        self.days.get(i)
    }

    /// Whether the summary of a day leaves its counts open (its times are needed).
    pub fn needs_times(&self, d: &DayData) -> bool {
        self.get(d.day)
            .is_some_and(|f| day::stats_from_summary(f, d.bars, d.first, d.last).is_none())
    }
}

/// Builds one symbol's report from its days with data, in day order.
pub(crate) struct SymbolBuilder {
    calendar: Arc<Calendar>,
    anomalies: Option<AnomalyBounds>,
    next: usize,
    previous_close: Option<f64>,
    report: SymbolReport,
}

impl SymbolBuilder {
    pub fn new(calendar: Arc<Calendar>, symbol: &Symbol, anomalies: Option<AnomalyBounds>) -> Self {
        let summary = SymbolSummary {
            symbol: symbol.as_str().to_owned(),
            trading_days: 0,
            days_with_data: 0,
            complete_days: 0,
            expected: 0,
            present: 0,
            completeness_pct: 100.0,
            non_trading_days_with_bars: 0,
            anomalies: 0,
        };
        Self {
            calendar,
            anomalies,
            next: 0,
            previous_close: None,
            report: SymbolReport {
                summary,
                days: Vec::new(),
                anomalies: Vec::new(),
            },
        }
    }

    /// Adds a day with data (days come in ascending order; days outside the range are ignored).
    pub fn push(&mut self, data: DayData) {
        let Some(i) = self
            .calendar
            .get(data.day)
            .map(|f| (f.date - self.calendar.from).num_days() as usize)
        else {
            return;
        };
        self.fill_until(i);
        let facts = self.calendar.days[i];
        let stats = stats_of(&facts, &data);
        if let (Some(bounds), Some(cols)) = (self.anomalies, &data.columns) {
            for kind in anomalies::price_anomalies(cols, self.previous_close, &bounds) {
                self.anomaly(facts.date, kind);
            }
            self.previous_close = cols.close.last().copied().or(self.previous_close);
        }
        if stats.after_early_close > 0 {
            let bars = stats.after_early_close;
            self.anomaly(facts.date, AnomalyKind::AfterEarlyClose { bars });
        }
        self.row(&facts, stats, &data);
        self.next = i + 1;
    }

    /// The report, with every remaining trading day as empty.
    pub fn finish(mut self) -> SymbolReport {
        self.fill_until(self.calendar.days.len());
        let s = &mut self.report.summary;
        s.anomalies = self.report.anomalies.len() as u32;
        if s.expected > 0 {
            s.completeness_pct = s.present as f64 * 100.0 / s.expected as f64;
        }
        self.report
    }

    fn fill_until(&mut self, end: usize) {
        for i in self.next..end {
            let facts = self.calendar.days[i];
            if facts.trading {
                let stats = day::stats_from_times(&facts, &[]);
                self.row(&facts, stats, &DayData::default());
            }
        }
        self.next = self.next.max(end);
    }

    fn anomaly(&mut self, day: NaiveDate, kind: AnomalyKind) {
        let symbol = self.report.summary.symbol.clone();
        self.report.anomalies.push(Anomaly { symbol, day, kind });
    }

    fn row(&mut self, facts: &DayFacts, stats: TimeStats, data: &DayData) {
        if !facts.trading && data.bars == 0 {
            return;
        }
        let s = &mut self.report.summary;
        let present = if facts.trading {
            stats.present
        } else {
            data.bars
        };
        if facts.trading {
            s.trading_days += 1;
            s.days_with_data += u32::from(stats.present > 0);
            s.complete_days += u32::from(stats.missing == 0);
            s.expected += u64::from(facts.expected());
            s.present += u64::from(stats.present);
        } else {
            s.non_trading_days_with_bars += 1;
        }
        let with_bars = data.bars > 0;
        self.report.days.push(DayCoverage {
            symbol: s.symbol.clone(),
            day: facts.date,
            trading_day: facts.trading,
            half_day: facts.half_day,
            expected: facts.expected(),
            present,
            missing: stats.missing,
            longest_gap_minutes: stats.longest_gap,
            bars: data.bars,
            first_ms: with_bars.then_some(data.first),
            last_ms: with_bars.then_some(data.last),
        });
    }
}

/// A day's stats from the most detailed data read.
fn stats_of(facts: &DayFacts, data: &DayData) -> TimeStats {
    if !facts.trading {
        return TimeStats::default();
    }
    if let Some(cols) = &data.columns {
        return day::stats_from_times(facts, &cols.times);
    }
    if let Some(times) = &data.times {
        return day::stats_from_times(facts, times);
    }
    day::stats_from_summary(facts, data.bars, data.first, data.last)
        .unwrap_or_else(|| day::stats_from_times(facts, &[]))
}
