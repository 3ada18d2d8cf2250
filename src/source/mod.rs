//! Source: turns a delivery's bytes, whatever their layout, into [`Record`]s (symbol, time,
//! OHLCV) or rejections; nothing after a source knows the layout.
//!
//! The contract, [`Source::next_record`]: one item per input record (one physical line for text
//! layouts), in input order, each either a [`Record`] or a [`Rejection`] with its reason code
//! (a line the source cannot read: too long, not text, wrong field count, a field that is not a
//! timestamp or a number, a blank line); `Ok(None)` at the end; an I/O error ends the source.
//! A source only reads: it checks no bar rules (prices, ordering) and resolves no time zones:
//! validation does both, the same way for every layout.
//!
//! Layouts ([`layout::Layout`] names them, opens their source and [`layout::detect`]s them):
//! [`firstrate`] (`2005-01-03 08:00:00,o,h,l,c,v`, exchange-local times, no header; daily files
//! date-only), [`polygon`] (flat files `minute_aggs_v1`, every ticker, UTC nanoseconds),
//! [`databento`] (OHLCV-1m CSV, fixed-point prices, UTC nanoseconds), [`kibot`]
//! (`MM/DD/YYYY,HH:MM,o,h,l,c,v`, exchange-local) and [`csv`] (generic, with a header).
//! [`naming`] reads what a file name states (interval, adjustment).
//! [`lines`] splits text into numbered lines, [`text`] and [`times`] parse the field forms the
//! layouts share, [`columns`] reads the layouts with a header line. [`container`] unpacks a delivery (gzip,
//! zstd, zip) into units of decoded bytes, before any layout sees them.

pub mod binary;
pub mod columns;
pub mod container;
pub mod csv;
pub mod databento;
pub mod firstrate;
pub mod kibot;
pub mod layout;
pub mod lines;
pub mod naming;
pub mod polygon;
pub mod text;
pub mod times;

use std::{fmt, io};

use chrono::{DateTime, NaiveDateTime};

use crate::model::Symbol;
use crate::model::reject::{Rejection, dead_letter_text};
pub use naming::{Adjustment, Interval};

/// When a bar opens, as the layout gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarTime {
    /// A naive exchange-local wall time: validation resolves it in the exchange's zone
    /// (rejecting times in a spring-forward gap, keeping a file increasing across a fall-back).
    /// Whole seconds: a fraction of a second is dropped.
    Local(NaiveDateTime),
    /// An instant: milliseconds since the Unix epoch, UTC.
    Utc(i64),
}

impl fmt::Display for BarTime {
    /// `2024-01-02 10:00:00` for a local time, `2024-01-02T15:00:00.000Z` for an instant (the
    /// millisecond count when it is out of chrono's range).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BarTime::Local(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S")),
            BarTime::Utc(millis) => match DateTime::from_timestamp_millis(millis) {
                Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
                None => write!(f, "{millis} ms after the Unix epoch"),
            },
        }
    }
}

/// The volume as the layout wrote it, before the rules on it (sign, whole number, range) run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Volume {
    /// An integer (exact, whatever its size).
    Shares(i64),
    /// A number written another way (`100.0`, `1e3`, `1.5`, `nan`), as the nearest `f64`:
    /// validation accepts it when it is finite, non-negative and at most 2^53 (and whole, for a
    /// `bigint` volume column).
    Decimal(f64),
}

/// The input text of a record, kept borrowed so an accepted record costs nothing; turned into
/// an owned, bounded string only for the dead-letter log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// The record's text, or a prefix of it when the source cut an over-long line.
    pub kept: &'a [u8],
    /// The whole text's length in bytes.
    pub len: u64,
}

impl RawLine<'_> {
    /// The text for the dead-letter log (lossy, at most `MAX_RAW_BYTES` and a truncation note).
    pub fn text(&self) -> String {
        dead_letter_text(self.kept, self.len)
    }
}

/// One bar as a layout gave it, not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// 1-based line number in the file (what an editor shows; for non-text layouts the record's
    /// ordinal).
    pub line: u64,
    /// Where the record came from, for the dead-letter log.
    pub raw: RawLine<'a>,
    /// The symbol, when the layout names it per record (multi-symbol files); None = the
    /// delivery's symbol (from its file name). A source fills it for all its records or none.
    pub symbol: Option<Symbol>,
    pub time: BarTime,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: Volume,
}

/// What a source makes of one input record.
pub type Parsed<'a> = Result<Record<'a>, Rejection>;

/// A delivery's records, in input order (see the module docs for the contract). A lending
/// iterator: a [`Record`] borrows the source's buffer until the next call, so an accepted
/// record is never copied.
pub trait Source {
    /// The next record or rejection; `Ok(None)` at the end of the input.
    fn next_record(&mut self) -> io::Result<Option<Parsed<'_>>>;

    /// Bytes consumed from the input so far (for progress).
    fn bytes_read(&self) -> u64;
}

/// The symbol a vendor file name stands for: the part before the first `_`
/// (`BRK.B_full_1min_adjsplit.txt` → `BRK.B`), or, with no `_`, the name without its last
/// extension (`MSFT.txt` → `MSFT`). A leading directory path is ignored. None if what is left is
/// not a valid [`Symbol`].
pub fn symbol_from_file_name(name: &str) -> Option<Symbol> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = match base.split_once('_') {
        Some((before, _)) => before,
        None => base.rsplit_once('.').map_or(base, |(stem, _ext)| stem),
    };
    Symbol::new(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_from_file_names() {
        let cases = [
            ("BRK.B_full_1min_adjsplit.txt", Some("BRK.B")),
            ("AAPL_full_1min_adjsplit.txt", Some("AAPL")),
            ("MSFT.txt", Some("MSFT")),
            ("msft.txt", Some("MSFT")),
            ("MSFT", Some("MSFT")),
            ("inbox/dir_x/SPY_update.txt", Some("SPY")),
            ("_full_1min.txt", None),
            (".hidden.txt", None),
            ("A B_full.txt", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                symbol_from_file_name(name).as_ref().map(Symbol::as_str),
                want,
                "{name}"
            );
        }
    }
}
