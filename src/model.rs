//! The types every stage shares: a bar, a symbol, a month bucket, a rejected row.

pub mod reject;

use std::fmt;

use chrono::{Datelike, NaiveDate};

pub use reject::{RejectReason, Rejection};

/// One one-minute OHLCV bar, as stored: the bar's open instant in UTC milliseconds and its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Bar open, milliseconds since the Unix epoch, UTC (CQL `timestamp` precision).
    pub ts_millis: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Shares traded in the minute, as delivered: whole, or fractional (Polygon flat files carry
    /// six decimals since 2026-02-23). Finite, non-negative and at most [`MAX_VOLUME`].
    pub volume: f64,
}

/// The largest volume kept: 2^53, up to which every whole number is an exact `f64`. A larger
/// volume is rejected (`bad_number`) rather than stored rounded.
pub const MAX_VOLUME: f64 = 9_007_199_254_740_992.0;

/// The type of the bar table's `volume` column, which decides the volumes it can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VolumeColumn {
    /// `double` (tables created by this version): every volume, whole or fractional.
    #[default]
    Double,
    /// `bigint` (tables created before fractional volumes were kept): whole volumes only; a
    /// fractional one is rejected `fractional_volume`, never truncated.
    BigInt,
}

/// Where a vendor stamps a bar: at its open (most vendors) or at its end (NinjaTrader,
/// Bloomberg, TradeStation, older Alpha Vantage: the 09:30-09:31 bar reads `09:31`). A
/// `[[source]]` rule's `stamp`; the store keeps every bar at its open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stamp {
    #[default]
    Start,
    End,
}

impl Stamp {
    /// The names a `[[source]]` rule uses: `start`, `end`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::End => "end",
        }
    }
}

/// A ticker symbol as it appears in file names (`AAPL`, `BRK.B`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    /// Longest symbol accepted; real tickers are far shorter.
    pub const MAX_LEN: usize = 32;

    /// A symbol: 1 to [`Self::MAX_LEN`] ASCII letters, digits, `.`, `-` or `_`... but `_`
    /// separates the symbol from the rest in vendor file names, so it is refused here.
    pub fn new(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && raw
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        ok.then(|| Self(raw.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The partition's month: the exchange-local calendar month of the bar, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    year: i32,
    month: u32,
}

impl Bucket {
    /// The bucket of an exchange-local date.
    pub fn of_local_date(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The bucket from its text form, `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        (1..=12).contains(&month).then_some(Self { year, month })
    }

    /// First day of the month (exchange-local).
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("month 1..=12, day 1")
    }

    /// The following month.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_round_trips_and_steps() {
        let b = Bucket::of_local_date(NaiveDate::from_ymd_opt(2005, 12, 30).unwrap());
        assert_eq!(b.to_string(), "2005-12");
        assert_eq!(Bucket::parse("2005-12"), Some(b));
        assert_eq!(b.next().to_string(), "2006-01");
        assert_eq!(b.first_day(), NaiveDate::from_ymd_opt(2005, 12, 1).unwrap());
        for bad in ["2005-13", "2005-1", "05-01", "2005/01", ""] {
            assert_eq!(Bucket::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn symbols() {
        assert_eq!(Symbol::new("BRK.B").unwrap().as_str(), "BRK.B");
        assert_eq!(Symbol::new("aapl").unwrap().as_str(), "AAPL");
        for bad in ["", "A B", "A_B", ".A", "Ä"] {
            assert!(Symbol::new(bad).is_none(), "{bad}");
        }
    }
}
