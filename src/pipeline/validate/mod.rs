//! Validate: each record a source yields into a [`Bar`] with its UTC instant and month bucket,
//! or a [`Rejection`] with a stable reason code; every record ends up as exactly one [`Row`].
//!
//! Layout-free: [`time`] places a record's time in the exchange zone, [`rules`] checks its
//! values and order, [`reader`] chains a [`Source`](crate::source::Source) into rows (and owns
//! the blank-line policy). The accepted path allocates nothing.

pub mod reader;
pub mod rules;
pub mod time;

#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use chrono_tz::Tz;

pub use self::reader::BarReader;
use crate::model::reject::Defect;
pub use crate::model::reject::{MAX_RAW_BYTES, RejectReason, Rejection};
use crate::model::{Bar, Bucket, Stamp, Symbol, VolumeColumn};
use crate::source::Record;

/// An accepted bar.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidBar {
    /// 1-based line number in the file.
    pub line: u64,
    /// The symbol the record named; None = the delivery's symbol (from its file name), always
    /// None for single-symbol layouts such as FirstRate.
    pub symbol: Option<Symbol>,
    /// The exchange-local date of the bar open (what the bucket and session filters go by).
    pub local_date: NaiveDate,
    /// The partition month, from `local_date`.
    pub bucket: Bucket,
    pub bar: Bar,
}

/// What became of one record (one physical line for text layouts).
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Bar(ValidBar),
    Rejected(Rejection),
}

impl Row {
    /// The 1-based line number the row came from.
    pub fn line(&self) -> u64 {
        match self {
            Row::Bar(b) => b.line,
            Row::Rejected(r) => r.line,
        }
    }
}

/// Checks records one by one, keeping what the checks need across records: the last accepted
/// instant per symbol (ordering, ambiguous local times) and the zone-offset caches.
#[derive(Debug, Clone)]
pub struct Validator {
    clock: time::ExchangeClock,
    last: rules::LastBars,
    /// Whether a record's time is its bar's open or its end (then the bar is placed a minute
    /// earlier, at its open).
    stamp: Stamp,
    /// The bar table's volume column: a `bigint` one takes whole volumes only.
    volumes: VolumeColumn,
}

impl Validator {
    /// A validator for times in the exchange zone `tz`.
    pub fn new(tz: Tz) -> Self {
        Self::with_clock(time::ExchangeClock::new(tz))
    }

    /// A validator for the exchange zone `exchange`, reading naive times as wall times of
    /// `naive` (the exchange's own zone, UTC, or a vendor's).
    pub fn with_naive_zone(exchange: Tz, naive: Tz) -> Self {
        Self::with_clock(time::ExchangeClock::with_naive_zone(exchange, naive))
    }

    fn with_clock(clock: time::ExchangeClock) -> Self {
        Self {
            clock,
            last: rules::LastBars::default(),
            stamp: Stamp::Start,
            volumes: VolumeColumn::Double,
        }
    }

    /// The same validator for records stamped at `stamp` (the default: the bar's open).
    pub fn stamped(mut self, stamp: Stamp) -> Self {
        self.stamp = stamp;
        self
    }

    /// The same validator for a bar table whose volume column is `volumes` (the default:
    /// `double`, which takes fractional volumes).
    pub fn storing(mut self, volumes: VolumeColumn) -> Self {
        self.volumes = volumes;
        self
    }

    /// Checks one record: an accepted bar (which then becomes its symbol's last one) or a
    /// rejection. Checks run in the order time, values, ordering.
    #[inline]
    pub fn validate(&mut self, record: Record<'_>) -> Row {
        match self.check(&record) {
            Ok((ts_millis, local_date, volume)) => Row::Bar(ValidBar {
                line: record.line,
                symbol: record.symbol,
                local_date,
                bucket: Bucket::of_local_date(local_date),
                bar: Bar {
                    ts_millis,
                    open: record.open,
                    high: record.high,
                    low: record.low,
                    close: record.close,
                    volume,
                },
            }),
            Err(defect) => Row::Rejected(defect.at(record.line, record.raw.text())),
        }
    }

    /// The open instant, its local date and the volume of an acceptable record.
    #[inline]
    fn check(&mut self, r: &Record<'_>) -> Result<(i64, NaiveDate, f64), Defect> {
        let symbol = r.symbol.as_ref();
        let previous = self.last.last(symbol).map(|t| (t, self.last.direction()));
        let placed = match self.stamp {
            Stamp::Start => self.clock.place(r.time, previous)?,
            Stamp::End => self.clock.place_end(r.time, previous)?,
        };
        let volume = rules::check_values(r, self.volumes)?;
        self.last
            .advance(symbol, placed.millis, || r.time.to_string())?;
        Ok((placed.millis, placed.local_date, volume))
    }
}
