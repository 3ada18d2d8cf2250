//! Layouts: the generated bars written in each vendor layout the product reads (FirstRate,
//! Polygon flat files, Databento OHLCV-1m CSV, Kibot, generic CSV in UTC or in epoch
//! milliseconds), so tests can compare what is stored with the bars meant.
//!
//! The bars are those of [`SymbolBars`] whatever the layout; times that a layout writes as
//! instants are the bars' New York wall times in UTC.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs;
use std::io::{self, Write};
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::{
    GenBar, GenSpec, SymbolBars, Variant, file_name, write_each_symbol, write_file, write_price,
    write_symbol_variant, write_two_digits, write_uint,
};
use bar_ingest::model::Symbol;

/// The exchange the generator's calendar and session hours are those of.
pub const EXCHANGE_TZ: Tz = chrono_tz::America::New_York;

/// Polygon's header.
const POLYGON_HEADER: &[u8] = b"ticker,volume,open,close,high,low,window_start,transactions\n";
/// Databento's header, with symbols mapped.
const DATABENTO_HEADER: &[u8] =
    b"ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume,symbol\n";
/// Databento's record type of a one-minute bar, and a publisher id (XNAS.ITCH).
const DATABENTO_RTYPE_OHLCV_1M: u32 = 33;
const DATABENTO_PUBLISHER_ID: u32 = 2;
/// Fixed-point units (10^-9) per generated tick (10^-4).
const FIXED_PER_TICK: u64 = 100_000;
/// The generic CSV header.
const CSV_HEADER: &[u8] = b"timestamp,open,high,low,close,volume\n";
/// Shares per trade, for Polygon's `transactions` column.
const SHARES_PER_TRANSACTION: u64 = 100;

/// The layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutLayout {
    /// `{SYM}_full_1min_adjsplit.txt`, the default (byte-identical to [`write_all`]).
    FirstRate,
    /// One `YYYY-MM-DD.csv` per trading day with every symbol, times in UTC nanoseconds.
    Polygon,
    /// One `bars.ohlcv-1m.csv` with a symbol column, fixed-point prices, UTC nanoseconds.
    Databento,
    /// `{SYM}.txt`, `MM/DD/YYYY,HH:MM,...` in exchange time.
    Kibot,
    /// `{SYM}_1min_utc.csv` with a header, times `2024-01-02T14:30:00Z`.
    CsvUtc,
    /// `{SYM}_1min_epoch_ms.csv` with a header, times in epoch milliseconds.
    CsvEpochMs,
}

impl OutLayout {
    /// Every layout and its command-line name.
    pub const ALL: [(OutLayout, &'static str); 6] = [
        (OutLayout::FirstRate, "firstrate"),
        (OutLayout::Polygon, "polygon"),
        (OutLayout::Databento, "databento"),
        (OutLayout::Kibot, "kibot"),
        (OutLayout::CsvUtc, "csv-utc"),
        (OutLayout::CsvEpochMs, "csv-epoch-ms"),
    ];

    /// The layout of a command-line name.
    pub fn from_name(name: &str) -> Option<OutLayout> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(l, _)| *l)
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(l, _)| *l == self)
            .map_or("", |(_, n)| n)
    }
}

/// Writes the spec's bars in `layout` into `dir` (created if missing); returns (path, rows) per
/// file written, in a stable order.
pub fn write_layout(
    spec: &GenSpec,
    layout: OutLayout,
    dir: &Path,
) -> io::Result<Vec<(PathBuf, u64)>> {
    write_layout_variant(spec, layout, Variant::default(), dir)
}

/// [`write_layout`] of a [`Variant`]: end stamps in every layout, decimal volumes in the
/// Polygon layout (an error in another).
pub fn write_layout_variant(
    spec: &GenSpec,
    layout: OutLayout,
    variant: Variant,
    dir: &Path,
) -> io::Result<Vec<(PathBuf, u64)>> {
    if variant.decimal_volumes && layout != OutLayout::Polygon {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "decimal volumes are written in the polygon layout only, not {}",
                layout.name()
            ),
        ));
    }
    let lines = |header, format| {
        move |spec: &GenSpec, s: &str, out: &mut dyn Write| {
            write_lines(spec, variant, s, out, header, format)
        }
    };
    match layout {
        OutLayout::FirstRate => write_each_symbol(spec, dir, file_name, &|spec, s, out| {
            write_symbol_variant(spec, variant, s, out)
        }),
        OutLayout::Polygon => write_polygon(spec, variant, dir),
        OutLayout::Databento => write_databento(spec, variant, dir),
        OutLayout::Kibot => write_each_symbol(
            spec,
            dir,
            |s| format!("{s}.txt"),
            &lines(None, format_kibot),
        ),
        OutLayout::CsvUtc => write_each_symbol(
            spec,
            dir,
            |s| format!("{s}_1min_utc.csv"),
            &lines(Some(CSV_HEADER), format_csv_utc),
        ),
        OutLayout::CsvEpochMs => write_each_symbol(
            spec,
            dir,
            |s| format!("{s}_1min_epoch_ms.csv"),
            &lines(Some(CSV_HEADER), format_csv_epoch_ms),
        ),
    }
}

/// Writes one symbol's bars, one line each by `format`, after `header` if any.
fn write_lines(
    spec: &GenSpec,
    variant: Variant,
    symbol: &str,
    out: &mut dyn Write,
    header: Option<&[u8]>,
    format: fn(&mut Vec<u8>, &GenBar),
) -> io::Result<u64> {
    if let Some(header) = header {
        out.write_all(header)?;
    }
    let mut line = Vec::with_capacity(128);
    let mut rows = 0;
    for bar in SymbolBars::new(spec, symbol).end_stamped(variant.end_stamps) {
        line.clear();
        format(&mut line, &bar);
        out.write_all(&line)?;
        rows += 1;
    }
    out.flush()?;
    Ok(rows)
}

/// The UTC instant of a bar's open, in milliseconds. The generator's bars are 04:00–19:59
/// local, never in a DST gap or overlap.
pub fn utc_millis(bar: &GenBar) -> i64 {
    let local = NaiveDateTime::new(bar.date, bar.time());
    EXCHANGE_TZ
        .from_local_datetime(&local)
        .earliest()
        .map_or(0, |t| t.timestamp_millis())
}

/// `07/10/2023,09:30,189.84,189.95,189.8,189.9,4930`.
fn format_kibot(out: &mut Vec<u8>, bar: &GenBar) {
    write_two_digits(out, bar.date.month());
    out.push(b'/');
    write_two_digits(out, bar.date.day());
    out.push(b'/');
    out.extend_from_slice(bar.date.year().to_string().as_bytes());
    out.push(b',');
    write_two_digits(out, bar.minute / 60);
    out.push(b':');
    write_two_digits(out, bar.minute % 60);
    write_ohlcv(out, bar, [bar.open, bar.high, bar.low, bar.close]);
}

/// `,o,h,l,c,v\n` with prices in the order given.
fn write_ohlcv(out: &mut Vec<u8>, bar: &GenBar, prices: [u64; 4]) {
    for ticks in prices {
        out.push(b',');
        write_price(out, ticks);
    }
    out.push(b',');
    write_uint(out, bar.volume);
    out.push(b'\n');
}

/// `2023-07-10T13:30:00Z,o,h,l,c,v`.
fn format_csv_utc(out: &mut Vec<u8>, bar: &GenBar) {
    let at = chrono::DateTime::from_timestamp_millis(utc_millis(bar)).unwrap_or_default();
    out.extend_from_slice(at.format("%Y-%m-%dT%H:%M:%SZ").to_string().as_bytes());
    write_ohlcv(out, bar, [bar.open, bar.high, bar.low, bar.close]);
}

/// `1688995800000,o,h,l,c,v`.
fn format_csv_epoch_ms(out: &mut Vec<u8>, bar: &GenBar) {
    out.extend_from_slice(utc_millis(bar).to_string().as_bytes());
    write_ohlcv(out, bar, [bar.open, bar.high, bar.low, bar.close]);
}

/// The spec's symbols, checked and upper-cased, with their bar iterators.
fn symbol_bars(
    spec: &GenSpec,
    variant: Variant,
) -> io::Result<Vec<(String, Peekable<SymbolBars>)>> {
    spec.symbols
        .iter()
        .map(|s| match Symbol::new(s) {
            Some(symbol) => Ok((
                symbol.as_str().to_owned(),
                SymbolBars::new(spec, symbol.as_str())
                    .end_stamped(variant.end_stamps)
                    .peekable(),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{s:?} is not a valid symbol (letters, digits, '.', '-')"),
            )),
        })
        .collect()
}

/// One `YYYY-MM-DD.csv` per day with bars, every ticker's bars of the day in ticker order.
fn write_polygon(spec: &GenSpec, variant: Variant, dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut symbols = symbol_bars(spec, variant)?;
    symbols.sort_by(|a, b| a.0.cmp(&b.0));
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    while let Some(day) = symbols
        .iter_mut()
        .filter_map(|(_, b)| b.peek())
        .map(|b| b.date)
        .min()
    {
        let name = format!("{}.csv", day.format("%Y-%m-%d"));
        written.push(write_file(dir, &name, |out| {
            out.write_all(POLYGON_HEADER)?;
            let mut line = Vec::with_capacity(128);
            let mut rows = 0;
            for (ticker, bars) in &mut symbols {
                while let Some(bar) = bars.next_if(|b| b.date == day) {
                    line.clear();
                    format_polygon(&mut line, ticker, &bar, variant.decimal_volumes);
                    out.write_all(&line)?;
                    rows += 1;
                }
            }
            out.flush()?;
            Ok(rows)
        })?);
    }
    Ok(written)
}

/// `AAPL,4930,189.84,189.9,189.95,189.8,1688995800000000000,50`, or with `decimal` volumes
/// `AAPL,4930.123456,...` (Massive's flat files since 2026-02-23).
fn format_polygon(out: &mut Vec<u8>, ticker: &str, bar: &GenBar, decimal: bool) {
    out.extend_from_slice(ticker.as_bytes());
    out.push(b',');
    if decimal {
        let micros = bar.decimal_volume();
        write_uint(out, micros / 1_000_000);
        out.extend_from_slice(format!(".{:06}", micros % 1_000_000).as_bytes());
    } else {
        write_uint(out, bar.volume);
    }
    for ticks in [bar.open, bar.close, bar.high, bar.low] {
        out.push(b',');
        write_price(out, ticks);
    }
    out.push(b',');
    out.extend_from_slice(
        (i128::from(utc_millis(bar)) * 1_000_000)
            .to_string()
            .as_bytes(),
    );
    out.push(b',');
    write_uint(out, bar.volume / SHARES_PER_TRANSACTION + 1);
    out.push(b'\n');
}

/// One `bars.ohlcv-1m.csv`: every symbol's bars merged in time order (then by instrument id, the
/// symbol's position in the spec plus one).
fn write_databento(
    spec: &GenSpec,
    variant: Variant,
    dir: &Path,
) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut symbols = symbol_bars(spec, variant)?;
    fs::create_dir_all(dir)?;
    let mut next = BinaryHeap::new();
    for (i, (_, bars)) in symbols.iter_mut().enumerate() {
        if let Some(bar) = bars.peek() {
            next.push(Reverse((utc_millis(bar), i)));
        }
    }
    let written = write_file(dir, "bars.ohlcv-1m.csv", |out| {
        out.write_all(DATABENTO_HEADER)?;
        let mut line = Vec::with_capacity(160);
        let mut rows = 0;
        while let Some(Reverse((_, i))) = next.pop() {
            let (symbol, bars) = &mut symbols[i];
            let Some(bar) = bars.next() else { continue };
            line.clear();
            format_databento(&mut line, symbol, i as u64 + 1, &bar);
            out.write_all(&line)?;
            rows += 1;
            if let Some(bar) = bars.peek() {
                next.push(Reverse((utc_millis(bar), i)));
            }
        }
        out.flush()?;
        Ok(rows)
    })?;
    Ok(vec![written])
}

/// `1688995800000000000,33,2,1,189840000000,189950000000,189800000000,189900000000,4930,AAPL`.
fn format_databento(out: &mut Vec<u8>, symbol: &str, instrument_id: u64, bar: &GenBar) {
    out.extend_from_slice(
        (i128::from(utc_millis(bar)) * 1_000_000)
            .to_string()
            .as_bytes(),
    );
    for n in [
        u64::from(DATABENTO_RTYPE_OHLCV_1M),
        u64::from(DATABENTO_PUBLISHER_ID),
        instrument_id,
    ] {
        out.push(b',');
        write_uint(out, n);
    }
    for ticks in [bar.open, bar.high, bar.low, bar.close] {
        out.push(b',');
        write_uint(out, ticks * FIXED_PER_TICK);
    }
    out.push(b',');
    write_uint(out, bar.volume);
    out.push(b',');
    out.extend_from_slice(symbol.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests;
