//! Generic CSV with a header: columns found by name (any case, any order, other columns
//! ignored), times in any of the forms [`CsvSpec`] says how to read.
//!
//! Columns: the time is `timestamp` or `datetime`, else `date` and `time` together (a date
//! `YYYY-MM-DD` and a time `HH:MM[:SS]`), else `time` or `date` alone holding a whole
//! timestamp; prices `open`/`o`, `high`/`h`, `low`/`l`, `close`/`c`; `volume`/`vol`/`v`
//! (optional: index files have none, read as volume 0); the symbol `symbol` or `ticker`.
//!
//! A time field is an epoch count when it is all digits (unit per [`CsvSpec::epoch`]), else ISO
//! 8601 (see [`times::ISO_FORMS`]): with `Z` or an offset it is that instant, without one it is
//! read per [`CsvSpec::naive`].

use super::columns::{self, Columnar, Fields, SymbolCache, Values};
use super::times::{self, EpochUnit, NaiveTimes};
use super::{BarTime, Volume, text};
use crate::model::reject::Defect;

/// How to read a generic CSV file: what a config rule (or detection) sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvSpec {
    /// How to read times written without a zone (default: exchange-local).
    pub naive: NaiveTimes,
    /// What an all-digits time counts (default: decided by its magnitude).
    pub epoch: EpochUnit,
    /// Whether each line names its symbol in a `symbol`/`ticker` column (true) or the file's
    /// name gives it (false). A header that disagrees is refused: a symbol column where none
    /// is expected could hold several symbols that must not load under one name.
    pub symbol_column: bool,
}

/// The aliases of each column.
const TIMESTAMP: &[&str] = &["timestamp", "datetime"];
const DATE: &[&str] = &["date"];
const TIME: &[&str] = &["time"];
const OPEN: &[&str] = &["open", "o"];
const HIGH: &[&str] = &["high", "h"];
const LOW: &[&str] = &["low", "l"];
const CLOSE: &[&str] = &["close", "c"];
const VOLUME: &[&str] = &["volume", "vol", "v"];
const SYMBOL: &[&str] = &["symbol", "ticker"];

/// Shortest good line, its `\n` included: five one-byte fields (a one-digit epoch count and four
/// prices; the volume column is optional) and four commas.
pub const MIN_RECORD_BYTES: u64 = 10;

/// Where the time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeColumns {
    /// One column holds the whole timestamp.
    One(usize),
    /// A date column and a time-of-day column.
    Split { date: usize, time: usize },
}

/// Where each needed column is.
#[derive(Debug, Clone, Copy)]
pub struct CsvColumns {
    time: TimeColumns,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    /// None: no volume column (an index file), every volume 0.
    volume: Option<usize>,
    symbol: Option<usize>,
}

/// The time columns of a header.
fn time_columns(names: &[String]) -> Result<TimeColumns, String> {
    if let Some(i) = columns::find(names, TIMESTAMP)? {
        return Ok(TimeColumns::One(i));
    }
    match (columns::find(names, DATE)?, columns::find(names, TIME)?) {
        (Some(date), Some(time)) => Ok(TimeColumns::Split { date, time }),
        (Some(i), None) | (None, Some(i)) => Ok(TimeColumns::One(i)),
        (None, None) => Err("no time column (timestamp, datetime, date, time)".into()),
    }
}

impl Columnar for CsvSpec {
    type Map = CsvColumns;

    fn expected(&self) -> String {
        let symbol = if self.symbol_column {
            ", symbol|ticker"
        } else {
            ", no symbol column"
        };
        format!(
            "generic CSV (timestamp|datetime|date+time, open|o, high|h, low|l, close|c, \
             volume|vol|v (optional){symbol})"
        )
    }

    fn map(&self, names: &[String]) -> Result<CsvColumns, String> {
        let time = time_columns(names)?;
        let symbol = columns::find(names, SYMBOL)?;
        match (symbol, self.symbol_column) {
            (Some(i), false) => {
                return Err(format!(
                    "it has a symbol column {:?}, but the rule takes the symbol from the file \
                     name (set the symbol to come from the column)",
                    names[i]
                ));
            }
            (None, true) => return Err("no symbol column (symbol, ticker)".into()),
            _ => {}
        }
        Ok(CsvColumns {
            time,
            open: columns::require(names, OPEN)?,
            high: columns::require(names, HIGH)?,
            low: columns::require(names, LOW)?,
            close: columns::require(names, CLOSE)?,
            volume: columns::find(names, VOLUME)?,
            symbol,
        })
    }

    fn read(
        &self,
        c: &CsvColumns,
        f: &Fields<'_>,
        symbols: &mut SymbolCache,
    ) -> Result<Values, Defect> {
        Ok(Values {
            symbol: match c.symbol {
                Some(i) => Some(symbols.symbol("symbol", f.get(i))?),
                None => None,
            },
            time: match c.time {
                TimeColumns::One(i) => self.timestamp(f.get(i))?,
                TimeColumns::Split { date, time } => {
                    self.date_and_time(f.get(date), f.get(time))?
                }
            },
            open: text::parse_price("open", f.get(c.open))?,
            high: text::parse_price("high", f.get(c.high))?,
            low: text::parse_price("low", f.get(c.low))?,
            close: text::parse_price("close", f.get(c.close))?,
            volume: match c.volume {
                Some(i) => text::parse_volume(f.get(i))?,
                None => Volume::Shares(0),
            },
        })
    }
}

impl CsvSpec {
    /// A whole timestamp: an epoch count, or ISO 8601.
    fn timestamp(&self, b: &[u8]) -> Result<BarTime, Defect> {
        let count = b.strip_prefix(b"-").unwrap_or(b);
        if !count.is_empty() && count.iter().all(u8::is_ascii_digit) {
            return times::parse_epoch(b, self.epoch);
        }
        times::parse_iso(b, self.naive)
            .map_err(|_| times::bad(b, &format!("an epoch count or {}", times::ISO_FORMS)))
    }

    /// A `YYYY-MM-DD` date and an `HH:MM[:SS]` time of day.
    fn date_and_time(&self, date: &[u8], clock: &[u8]) -> Result<BarTime, Defect> {
        let day = times::iso_date(date).ok_or_else(|| times::bad(date, "a date YYYY-MM-DD"))?;
        let at = times::time_of_day(clock).ok_or_else(|| times::bad(clock, "a time HH:MM[:SS]"))?;
        Ok(times::naive_time(day.and_time(at), self.naive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reject::RejectReason;
    use crate::source::columns::HeaderSource;
    use crate::source::{Source, Volume};
    use chrono::NaiveDateTime;

    type Item =
        Result<(u64, Option<String>, BarTime, [f64; 4], Volume), (u64, RejectReason, String)>;

    fn items(spec: CsvSpec, input: &str) -> Vec<Item> {
        let mut source = HeaderSource::new(input.as_bytes(), spec);
        let mut out = Vec::new();
        while let Some(p) = source.next_record().unwrap() {
            out.push(
                p.map(|r| {
                    (
                        r.line,
                        r.symbol.map(|s| s.to_string()),
                        r.time,
                        [r.open, r.high, r.low, r.close],
                        r.volume,
                    )
                })
                .map_err(|r| (r.line, r.reason, r.message)),
            );
        }
        assert_eq!(source.bytes_read(), input.len() as u64);
        out
    }

    /// The times of every record (rejections as their reason).
    fn times_of(spec: CsvSpec, input: &str) -> Vec<Result<BarTime, RejectReason>> {
        items(spec, input)
            .into_iter()
            .map(|i| i.map(|r| r.2).map_err(|r| r.1))
            .collect()
    }

    const MS: i64 = 1_688_995_800_000; // 2023-07-10T13:30:00Z

    fn local(s: &str) -> BarTime {
        BarTime::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
    }

    #[test]
    fn every_timestamp_form_in_one_column() {
        let input = "timestamp,open,high,low,close,volume\n\
                     2023-07-10 09:30:00,1,2,0.5,1.5,7\n\
                     2023-07-10T09:31,1,2,0.5,1.5,7\n\
                     2023-07-10T13:32:00Z,1,2,0.5,1.5,7\n\
                     2023-07-10T09:33:00-04:00,1,2,0.5,1.5,7\n\
                     1688996040,1,2,0.5,1.5,7\n\
                     1688996100000,1,2,0.5,1.5,7\n\
                     1688996160000000,1,2,0.5,1.5,7\n\
                     1688996220000000000,1,2,0.5,1.5,7\n";
        let minute = |n: i64| BarTime::Utc(MS + n * 60_000);
        assert_eq!(
            times_of(CsvSpec::default(), input),
            [
                Ok(local("2023-07-10 09:30:00")),
                Ok(local("2023-07-10 09:31:00")),
                Ok(minute(2)),
                Ok(minute(3)),
                Ok(minute(4)),
                Ok(minute(5)),
                Ok(minute(6)),
                Ok(minute(7)),
            ]
        );
        // Naive times read as UTC by the rule; offsets and counts unchanged.
        let utc = CsvSpec {
            naive: NaiveTimes::Utc,
            ..CsvSpec::default()
        };
        let got = times_of(utc, input);
        assert_eq!(got[0], Ok(BarTime::Utc(MS - 4 * 3_600_000)));
        assert_eq!(got[3], Ok(minute(3)));
        // A forced unit reads the same counts otherwise.
        let ms = CsvSpec {
            epoch: EpochUnit::Millis,
            ..CsvSpec::default()
        };
        let got = times_of(ms, input);
        assert_eq!(got[4], Ok(BarTime::Utc(1_688_996_040)));
        assert_eq!(got[5], Ok(minute(5)));
        assert_eq!(got[6], Ok(BarTime::Utc(1_688_996_160_000_000)));
    }

    #[test]
    fn short_names_any_case_any_order_date_and_time_columns_extra_ignored() {
        let input = "V,Time,Note,C,L,H,O,DATE\n\
                     200.0,09:30,x,1.5,0.5,2,1,2023-07-10\n";
        assert_eq!(
            items(CsvSpec::default(), input),
            [Ok((
                2,
                None,
                local("2023-07-10 09:30:00"),
                [1.0, 2.0, 0.5, 1.5],
                Volume::Decimal(200.0)
            ))]
        );
    }

    #[test]
    fn symbol_column_when_the_spec_says_so() {
        let spec = CsvSpec {
            symbol_column: true,
            ..CsvSpec::default()
        };
        let input = "ticker,datetime,open,high,low,close,volume\n\
                     msft,2023-07-10T13:30:00Z,1,2,0.5,1.5,7\n\
                     A B,2023-07-10T13:30:00Z,1,2,0.5,1.5,7\n";
        let got = items(spec, input);
        assert_eq!(got[0].as_ref().unwrap().1.as_deref(), Some("MSFT"));
        assert!(matches!(got[1], Err((3, RejectReason::BadSymbol, _))));
        // The spec and the header disagree either way: refused.
        let got = items(CsvSpec::default(), input);
        let Err((1, RejectReason::BadHeader, message)) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(message.contains("symbol column \"ticker\""), "{message}");
        let got = items(spec, "timestamp,open,high,low,close,volume\n");
        assert!(
            matches!(&got[..], [Err((1, RejectReason::BadHeader, m))] if m.contains("no symbol column"))
        );
    }

    #[test]
    fn rejections_and_refused_headers() {
        let got = times_of(
            CsvSpec::default(),
            "timestamp,open,high,low,close,volume\n\
             2023-07-10,1,2,0.5,1.5,7\n\
             1688995800000000001,1,2,0.5,1.5,7\n\
             2023-07-10 09:30:00,1,2,0.5,1.5\n\
             2023-07-10 09:30:00,1,2,0.5,1.5,seven\n",
        );
        use RejectReason::*;
        assert_eq!(
            got,
            [
                Err(BadTimestamp),
                Err(BadTimestamp),
                Err(FieldCount),
                Err(BadNumber)
            ]
        );
        for (header, why) in [
            ("open,high,low,close,volume", "no time column"),
            (
                "timestamp,open,high,close",
                "no column named any of [\"low\"",
            ),
            ("timestamp,open,high,low,close,volume,Volume", "named twice"),
            (
                "timestamp,open,high,low,close,volume,vol",
                "name the same thing",
            ),
            (
                "timestamp,datetime,open,high,low,close,volume",
                "name the same thing",
            ),
            ("2023-07-10 09:30:00,1,2,0.5,1.5,7", "not a header"),
        ] {
            let got = items(CsvSpec::default(), &format!("{header}\n"));
            assert!(
                matches!(&got[..], [Err((1, BadHeader, m))] if m.contains(why)),
                "{header}: {got:?}"
            );
        }
    }

    #[test]
    fn a_header_without_a_volume_column_reads_volume_0() {
        let got = items(
            CsvSpec::default(),
            "timestamp,open,high,low,close\n2023-07-10 09:30:00,1,2,0.5,1.5\n",
        );
        let [Ok((2, None, _, prices, volume))] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(
            (*prices, *volume),
            ([1.0, 2.0, 0.5, 1.5], Volume::Shares(0))
        );
    }
}
