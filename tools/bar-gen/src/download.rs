//! Download: what a FirstRate download of a ticker holds, one file per bar interval
//! (`{SYMBOL}_full_{1min,5min,30min,1hour,1day}_adjsplit.txt`), the coarser files aggregated from
//! the same minute bars [`write_all`](crate::write_all) writes; and any of them newest first, as
//! Alpha Vantage writes its files.
//!
//! Aggregation: an intraday bar of `n` minutes covers the minutes `[k·n, (k+1)·n)` of the local
//! day (an hourly bar at 09:00 holds 09:00-09:59), and exists when one of its minutes has a bar;
//! a daily bar covers the regular session `[09:30, 16:00)` (or the early close) and is written
//! date-only (`2024-03-07,o,h,l,c,v`). Open is the first minute's, close the last's, high and
//! low the extremes, volume the sum.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{
    GenBar, GenSpec, SymbolBars, format_bar, write_file, write_price, write_two_digits, write_uint,
};
use chrono::Datelike;

/// A bar interval of a FirstRate download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenInterval {
    OneMinute,
    FiveMinutes,
    ThirtyMinutes,
    OneHour,
    OneDay,
}

impl GenInterval {
    /// Every interval, with its name in FirstRate's file names.
    pub const ALL: [(GenInterval, &'static str); 5] = [
        (Self::OneMinute, "1min"),
        (Self::FiveMinutes, "5min"),
        (Self::ThirtyMinutes, "30min"),
        (Self::OneHour, "1hour"),
        (Self::OneDay, "1day"),
    ];

    /// The name in file names (`5min`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(i, _)| *i == self)
            .map_or("1min", |(_, n)| n)
    }

    /// The interval a name gives, None for an unknown one.
    pub fn from_name(name: &str) -> Option<GenInterval> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
    }

    /// Minutes per bar of an intraday interval (None: daily).
    fn minutes(self) -> Option<u32> {
        match self {
            Self::OneMinute => Some(1),
            Self::FiveMinutes => Some(5),
            Self::ThirtyMinutes => Some(30),
            Self::OneHour => Some(60),
            Self::OneDay => None,
        }
    }
}

/// The order of a file's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first (every vendor but a few).
    #[default]
    OldestFirst,
    /// Newest first, the whole file (Alpha Vantage).
    NewestFirst,
}

/// FirstRate's name of a symbol's file of `interval`: `{SYMBOL}_full_{interval}_adjsplit.txt`.
pub fn download_file_name(symbol: &str, interval: GenInterval) -> String {
    format!("{symbol}_full_{}_adjsplit.txt", interval.name())
}

/// The bars of one symbol at `interval`, in time order (aggregated from its minute bars).
pub fn interval_bars(spec: &GenSpec, symbol: &str, interval: GenInterval) -> Vec<GenBar> {
    let mut out: Vec<GenBar> = Vec::new();
    for bar in SymbolBars::new(spec, symbol) {
        let start = match interval.minutes() {
            Some(n) => bar.minute / n * n,
            None if in_regular_session(&bar) => 0,
            None => continue,
        };
        match out.last_mut() {
            Some(last) if last.date == bar.date && last.minute == start => {
                last.high = last.high.max(bar.high);
                last.low = last.low.min(bar.low);
                last.close = bar.close;
                last.volume += bar.volume;
            }
            _ => out.push(GenBar {
                minute: start,
                ..bar
            }),
        }
    }
    out
}

/// Whether a minute bar is in its day's regular session (the early close ends it sooner).
fn in_regular_session(bar: &GenBar) -> bool {
    let end = bar_ingest::calendar::early_close(bar.date).map_or(16 * 60, |t| {
        chrono::Timelike::hour(&t) * 60 + chrono::Timelike::minute(&t)
    });
    (9 * 60 + 30..end).contains(&bar.minute)
}

/// Appends a daily bar as a FirstRate date-only line (`2024-03-07,o,h,l,c,v\n`).
fn format_daily(out: &mut Vec<u8>, bar: &GenBar) {
    out.extend_from_slice(format!("{:04}-", bar.date.year()).as_bytes());
    write_two_digits(out, bar.date.month());
    out.push(b'-');
    write_two_digits(out, bar.date.day());
    for ticks in [bar.open, bar.high, bar.low, bar.close] {
        out.push(b',');
        write_price(out, ticks);
    }
    out.push(b',');
    write_uint(out, bar.volume);
    out.push(b'\n');
}

/// Writes one symbol's file of `interval` in `order` to `out`; returns the rows written.
pub fn write_interval<W: Write + ?Sized>(
    spec: &GenSpec,
    symbol: &str,
    interval: GenInterval,
    order: Order,
    out: &mut W,
) -> io::Result<u64> {
    let mut bars = interval_bars(spec, symbol, interval);
    if order == Order::NewestFirst {
        bars.reverse();
    }
    let mut line = Vec::with_capacity(128);
    for bar in &bars {
        line.clear();
        match interval {
            GenInterval::OneDay => format_daily(&mut line, bar),
            _ => format_bar(&mut line, bar),
        }
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(bars.len() as u64)
}

/// Writes, for each symbol of `spec`, one file per interval of `intervals` into `dir` (each as
/// `NAME.part`, then renamed), in `order`. Returns (path, rows), symbol by symbol, intervals in
/// the order given. A newest-first file is built in memory (a dev tool's files are small).
pub fn write_download(
    spec: &GenSpec,
    intervals: &[GenInterval],
    order: Order,
    dir: &Path,
) -> io::Result<Vec<(PathBuf, u64)>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for symbol in &spec.symbols {
        if bar_ingest::model::Symbol::new(symbol).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{symbol:?} is not a valid symbol (letters, digits, '.', '-')"),
            ));
        }
        for &interval in intervals {
            let name = download_file_name(symbol, interval);
            written.push(write_file(dir, &name, |out| {
                write_interval(spec, symbol, interval, order, out)
            })?);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn spec() -> GenSpec {
        GenSpec {
            symbols: vec!["AAA".into()],
            start: NaiveDate::from_ymd_opt(2024, 3, 7).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 3, 12).unwrap(),
            seed: 3,
        }
    }

    #[test]
    fn coarser_bars_aggregate_the_minute_bars() {
        let spec = spec();
        let minutes = interval_bars(&spec, "AAA", GenInterval::OneMinute);
        let fives = interval_bars(&spec, "AAA", GenInterval::FiveMinutes);
        let days = interval_bars(&spec, "AAA", GenInterval::OneDay);
        assert_eq!(minutes, SymbolBars::new(&spec, "AAA").collect::<Vec<_>>());
        assert!(fives.iter().all(|b| b.minute % 5 == 0));
        assert!(fives.len() < minutes.len() && fives.len() * 5 >= minutes.len());
        let volume = |bars: &[GenBar]| bars.iter().map(|b| b.volume).sum::<u64>();
        assert_eq!(volume(&fives), volume(&minutes));
        assert_eq!(days.len(), 4, "Thu, Fri, Mon, Tue");
        // The first five-minute bar: the first minute bar's open, the extremes of its minutes.
        let first: Vec<&GenBar> = minutes
            .iter()
            .filter(|b| b.date == fives[0].date && b.minute / 5 == fives[0].minute / 5)
            .collect();
        assert_eq!(fives[0].open, first[0].open);
        assert_eq!(fives[0].close, first[first.len() - 1].close);
        assert_eq!(fives[0].high, first.iter().map(|b| b.high).max().unwrap());
        assert_eq!(fives[0].low, first.iter().map(|b| b.low).min().unwrap());
    }

    #[test]
    fn a_download_writes_every_interval_and_newest_first_reverses_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let all: Vec<GenInterval> = GenInterval::ALL.iter().map(|(i, _)| *i).collect();
        let written = write_download(&spec, &all, Order::OldestFirst, dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "AAA_full_1min_adjsplit.txt",
                "AAA_full_5min_adjsplit.txt",
                "AAA_full_30min_adjsplit.txt",
                "AAA_full_1hour_adjsplit.txt",
                "AAA_full_1day_adjsplit.txt"
            ]
        );
        let minute_file = std::fs::read_to_string(&written[0].0).unwrap();
        let mut plain = Vec::new();
        crate::write_symbol(&spec, "AAA", &mut plain).unwrap();
        assert_eq!(
            minute_file.as_bytes(),
            plain,
            "the 1min file is write_all's"
        );
        let daily = std::fs::read_to_string(&written[4].0).unwrap();
        assert!(daily.starts_with("2024-03-07,"), "{daily}");
        let newest = tempfile::tempdir().unwrap();
        let reversed = write_download(&spec, &all[..1], Order::NewestFirst, newest.path()).unwrap();
        let text = std::fs::read_to_string(&reversed[0].0).unwrap();
        let mut lines: Vec<&str> = minute_file.lines().collect();
        lines.reverse();
        assert_eq!(text.lines().collect::<Vec<_>>(), lines);
    }
}
