//! Bars written as CSV or JSON lines (with a `symbol` column for several symbols), timestamps in
//! exchange time or UTC, prices that round-trip.

use std::io::{self, Write};

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use chrono_tz::Tz;

use super::BarChunk;
use crate::model::Bar;

/// The CSV header line (without the newline).
pub(crate) const CSV_HEADER: &str = "timestamp,open,high,low,close,volume";

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `timestamp,open,high,low,close,volume` with a header line.
    #[default]
    Csv,
    /// One JSON object per line: `{"timestamp":...,"open":...,...,"volume":...}`.
    Jsonl,
}

/// How timestamps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Exchange-local wall time like the input files, `2005-01-03 08:00:00`.
    Exchange(Tz),
    /// UTC RFC 3339, `2005-01-03T13:00:00Z`.
    Utc,
}

/// Writes bars to `out` in one format. Call [`BarWriter::header`] once, [`BarWriter::bar`] per
/// bar (or [`BarWriter::chunk`] per chunk), then [`BarWriter::finish`].
#[derive(Debug)]
pub struct BarWriter<W: Write> {
    out: W,
    format: Format,
    clock: Clock,
    /// Whether each line starts with the bar's symbol (results of several symbols).
    symbol_column: bool,
    /// Reused line buffer (one allocation for the whole run).
    line: String,
}

impl<W: Write> BarWriter<W> {
    pub fn new(out: W, format: Format, clock: Clock) -> Self {
        Self {
            out,
            format,
            clock,
            symbol_column: false,
            line: String::with_capacity(128),
        }
    }

    /// The same writer with a first column `symbol` (CSV) or a first key `"symbol"` (JSON lines).
    pub fn with_symbol_column(mut self) -> Self {
        self.symbol_column = true;
        self
    }

    /// The header (CSV only; JSON lines have none).
    pub fn header(&mut self) -> io::Result<()> {
        match (self.format, self.symbol_column) {
            (Format::Csv, false) => writeln!(self.out, "{CSV_HEADER}"),
            (Format::Csv, true) => writeln!(self.out, "symbol,{CSV_HEADER}"),
            (Format::Jsonl, _) => Ok(()),
        }
    }

    /// One bar, one line (without a symbol: for a writer without the symbol column).
    pub fn bar(&mut self, bar: &Bar) -> io::Result<()> {
        self.line(None, bar)
    }

    /// Every bar of a chunk, a line each (with the chunk's symbol when the writer has the column).
    pub fn chunk(&mut self, chunk: &BarChunk) -> io::Result<()> {
        let symbol = self.symbol_column.then_some(chunk.symbol.as_str());
        for bar in &chunk.bars {
            self.line(symbol, bar)?;
        }
        Ok(())
    }

    fn line(&mut self, symbol: Option<&str>, bar: &Bar) -> io::Result<()> {
        use std::fmt::Write as _;
        let line = &mut self.line;
        line.clear();
        // Writing into a String cannot fail; the results are ignored on purpose. Symbols are
        // letters, digits, `.` and `-`: nothing to quote or escape.
        match self.format {
            Format::Csv => {
                if let Some(symbol) = symbol {
                    line.push_str(symbol);
                    line.push(',');
                }
                push_timestamp(line, self.clock, bar.ts_millis);
                let _ = write!(
                    line,
                    ",{},{},{},{},{}",
                    bar.open, bar.high, bar.low, bar.close, bar.volume
                );
            }
            Format::Jsonl => {
                line.push('{');
                if let Some(symbol) = symbol {
                    let _ = write!(line, "\"symbol\":\"{symbol}\",");
                }
                line.push_str("\"timestamp\":\"");
                push_timestamp(line, self.clock, bar.ts_millis);
                line.push('"');
                for (name, value) in [
                    ("open", bar.open),
                    ("high", bar.high),
                    ("low", bar.low),
                    ("close", bar.close),
                    ("volume", bar.volume),
                ] {
                    let _ = write!(line, ",\"{name}\":");
                    push_json_number(line, value);
                }
                line.push('}');
            }
        }
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends `ms` as the clock's text: seconds always, milliseconds only when not zero.
fn push_timestamp(line: &mut String, clock: Clock, ms: i64) {
    let Some(utc) = DateTime::from_timestamp_millis(ms) else {
        // Out of chrono's range (not a real bar): print the raw number rather than lie.
        line.push_str(&ms.to_string());
        return;
    };
    match clock {
        Clock::Exchange(tz) => {
            push_naive(line, utc.with_timezone(&tz).naive_local(), ' ');
        }
        Clock::Utc => {
            push_naive(line, utc.naive_utc(), 'T');
            line.push('Z');
        }
    }
}

/// `YYYY-MM-DD?HH:MM:SS[.mmm]`, with `sep` between date and time.
fn push_naive(line: &mut String, t: NaiveDateTime, sep: char) {
    fn digits(line: &mut String, value: u32, width: u32) {
        for i in (0..width).rev() {
            let d = (value / 10u32.pow(i)) % 10;
            line.push(char::from(b'0' + d as u8));
        }
    }
    let year = t.year();
    if (0..=9999).contains(&year) {
        digits(line, year.unsigned_abs(), 4);
    } else {
        line.push_str(&format!("{year:+}"));
    }
    line.push('-');
    digits(line, t.month(), 2);
    line.push('-');
    digits(line, t.day(), 2);
    line.push(sep);
    digits(line, t.hour(), 2);
    line.push(':');
    digits(line, t.minute(), 2);
    line.push(':');
    digits(line, t.second(), 2);
    let millis = t.nanosecond() / 1_000_000;
    if millis != 0 {
        line.push('.');
        digits(line, millis, 3);
    }
}

/// A JSON number for a finite f64 (Rust's shortest round-trip form), `null` otherwise.
fn push_json_number(line: &mut String, value: f64) {
    use std::fmt::Write as _;
    if value.is_finite() {
        let _ = write!(line, "{value}");
    } else {
        line.push_str("null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn render(format: Format, clock: Clock, bars: &[Bar]) -> String {
        let mut w = BarWriter::new(Vec::new(), format, clock);
        w.header().unwrap();
        for b in bars {
            w.bar(b).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    const BAR: Bar = Bar {
        ts_millis: 1_104_757_200_000, // 2005-01-03 08:00 EST
        open: 0.9911,
        high: 0.9911,
        low: 0.9839,
        close: 0.1 + 0.2,
        volume: 19209.0,
    };

    #[test]
    fn csv_in_exchange_time_like_the_input_files() {
        let out = render(Format::Csv, Clock::Exchange(New_York), &[BAR]);
        assert_eq!(
            out,
            "timestamp,open,high,low,close,volume\n\
             2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.30000000000000004,19209\n"
        );
    }

    /// A whole volume prints as an integer, a fractional one as its decimal text (the shortest
    /// that reads back as the same `f64`: Polygon's six decimals come out as written).
    #[test]
    fn volumes_print_as_delivered() {
        let bars = [
            BAR,
            Bar {
                volume: 1234.567891,
                ..BAR
            },
            Bar {
                volume: 0.000001,
                ..BAR
            },
            Bar {
                volume: 9_007_199_254_740_992.0,
                ..BAR
            },
        ];
        let csv = render(Format::Csv, Clock::Utc, &bars);
        let volumes: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        assert_eq!(
            volumes,
            ["19209", "1234.567891", "0.000001", "9007199254740992"]
        );
        let jsonl = render(Format::Jsonl, Clock::Utc, &bars[1..2]);
        assert!(jsonl.ends_with(",\"volume\":1234.567891}\n"), "{jsonl}");
    }

    #[test]
    fn jsonl_in_utc() {
        let out = render(Format::Jsonl, Clock::Utc, &[BAR]);
        assert_eq!(
            out,
            "{\"timestamp\":\"2005-01-03T13:00:00Z\",\"open\":0.9911,\"high\":0.9911,\
             \"low\":0.9839,\"close\":0.30000000000000004,\"volume\":19209}\n"
        );
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(v["close"].as_f64(), Some(0.1 + 0.2));
    }

    #[test]
    fn a_symbol_column_comes_first_in_both_formats() {
        let chunk = BarChunk {
            symbol: crate::model::Symbol::new("BRK.B").unwrap(),
            bars: vec![BAR, BAR],
        };
        let mut w = BarWriter::new(Vec::new(), Format::Csv, Clock::Utc).with_symbol_column();
        w.header().unwrap();
        w.chunk(&chunk).unwrap();
        let csv = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            csv,
            "symbol,timestamp,open,high,low,close,volume\n\
             BRK.B,2005-01-03T13:00:00Z,0.9911,0.9911,0.9839,0.30000000000000004,19209\n\
             BRK.B,2005-01-03T13:00:00Z,0.9911,0.9911,0.9839,0.30000000000000004,19209\n"
        );
        let mut w = BarWriter::new(Vec::new(), Format::Jsonl, Clock::Utc).with_symbol_column();
        w.chunk(&chunk).unwrap();
        let jsonl = String::from_utf8(w.finish().unwrap()).unwrap();
        let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first["symbol"], "BRK.B");
        assert_eq!(first["volume"], 19209);
        // Without the column, a chunk writes what `bar` writes.
        let mut w = BarWriter::new(Vec::new(), Format::Csv, Clock::Utc);
        w.chunk(&chunk).unwrap();
        let plain = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            plain,
            render(Format::Csv, Clock::Utc, &[BAR, BAR])
                .split_once('\n')
                .unwrap()
                .1
        );
    }

    #[test]
    fn prices_round_trip_and_milliseconds_show_only_when_set() {
        let awkward = [
            1e-7,
            12345.678901234567,
            5e-324,
            1.7976931348623157e308,
            0.0,
        ];
        for p in awkward {
            let b = Bar {
                ts_millis: BAR.ts_millis + 250,
                open: p,
                ..BAR
            };
            let out = render(Format::Csv, Clock::Utc, &[b]);
            let row = out.lines().nth(1).unwrap();
            let fields: Vec<&str> = row.split(',').collect();
            assert_eq!(fields[0], "2005-01-03T13:00:00.250Z");
            assert_eq!(fields[1].parse::<f64>().unwrap().to_bits(), p.to_bits());
        }
    }
}
