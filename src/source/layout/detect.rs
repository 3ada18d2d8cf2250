//! Detection: the layout of a file from its name and its first decoded bytes, in the cases that
//! are unambiguous; anything else is an error saying what was seen and asking for a rule.
//!
//! The rule, on the first line (a UTF-8 BOM and a `\r` dropped):
//! - a header (every comma-separated field starts with a letter, `_` or `"`): with a
//!   `window_start` column, Polygon; with `ts_event`, Databento; else generic CSV if it names a
//!   time and the five values ([`CsvSpec`] with naive times exchange-local, epoch units by
//!   magnitude, the symbol from a `symbol`/`ticker` column when there is one). The header must
//!   be complete for its layout.
//! - no header: six fields (five without a volume, as in index files), a `YYYY-MM-DD HH:MM[:SS]`
//!   time and five numbers (four), FirstRate with the
//!   interval the file name states (one minute when it states none; `_1day_` is refused with
//!   such lines); six fields with a `YYYY-MM-DD` date, a daily FirstRate file (unless the name
//!   states an intraday interval); seven fields `MM/DD/YYYY,HH:MM` and five numbers (six and
//!   four without a volume), Kibot.

use std::path::Path;

use super::Layout;
use crate::names::Shown;
use crate::source::columns::{self, Columnar};
use crate::source::csv::CsvSpec;
use crate::source::databento::Databento;
use crate::source::polygon::Polygon;
use crate::source::text::{self, LocalTimestamps};
use crate::source::{Interval, firstrate, kibot, times};

/// The layout of a file could not be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot tell the layout of {file}: {why} (first line {first_line:?}); add a [[source]] rule \
     naming its layout ({names})",
    names = Layout::NAMES.join(", ")
)]
pub struct DetectError {
    /// The file's name, escaped for logs.
    pub file: String,
    /// What detection saw and why it does not decide.
    pub why: String,
    /// Whether the first line has a header's shape (else it is no known bar line: blank,
    /// garbage, another vendor's data).
    pub header: bool,
    /// The first line (lossy, at most [`SHOWN_LINE_BYTES`] bytes).
    pub first_line: String,
}

/// Most bytes of the first line an error shows.
pub const SHOWN_LINE_BYTES: usize = 200;

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The layout of the file named `file_name` whose content starts with `head` (decoded: after
/// any decompression), when unambiguous. See the module docs for the rule.
pub fn detect(file_name: &str, head: &[u8]) -> Result<Layout, DetectError> {
    let head = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let header = columns::looks_like_header(line);
    let found = if header {
        from_header(line)
    } else {
        from_data_line(file_name, line)
    };
    found.map_err(|why| DetectError {
        file: Shown(Path::new(file_name)).to_string(),
        why,
        header,
        first_line: text::lossy(&line[..line.len().min(SHOWN_LINE_BYTES)]).into_owned(),
    })
}

/// The layout a header names.
fn from_header(line: &[u8]) -> Result<Layout, String> {
    let names = columns::header_names(line)?;
    let has = |name: &str| names.iter().any(|n| n == name);
    let complete = |expected: String, mapped: Result<(), String>| {
        mapped.map_err(|why| format!("the header looks like {expected} but {why}"))
    };
    if has("window_start") {
        complete(Polygon.expected(), Polygon.map(&names).map(drop))?;
        return Ok(Layout::Polygon);
    }
    if has("ts_event") {
        complete(Databento.expected(), Databento.map(&names).map(drop))?;
        return Ok(Layout::Databento);
    }
    let spec = CsvSpec {
        symbol_column: columns::find(&names, &["symbol", "ticker"])?.is_some(),
        ..CsvSpec::default()
    };
    spec.map(&names)
        .map(|_| Layout::Csv(spec))
        .map_err(|why| format!("a header, but not one of a known layout: {why}"))
}

/// The header-less layout a first data line has the shape of.
fn from_data_line(file_name: &str, line: &[u8]) -> Result<Layout, String> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b',').map(<[u8]>::trim_ascii).collect();
    let named = Interval::from_file_name(file_name);
    match fields[..] {
        [time, ref values @ ..] if matches!(values.len(), 4 | 5) && numbers(values) => {
            firstrate_interval(time, named).map(|interval| Layout::FirstRate { interval })
        }
        [date, clock, ref values @ ..] if matches!(values.len(), 4 | 5) && numbers(values) => {
            if times::us_date(date).is_some() && times::time_of_day(clock).is_some() {
                Ok(Layout::Kibot)
            } else {
                Err(format!(
                    "{} fields, but not Kibot's {} (it starts {:?})",
                    fields.len(),
                    kibot::LINE_FORM,
                    text::lossy(date)
                ))
            }
        }
        _ => Err(format!(
            "no header, and the line is neither FirstRate's {} nor Kibot's {}",
            firstrate::LINE_FORM,
            kibot::LINE_FORM
        )),
    }
}

/// The interval of a FirstRate file whose first line starts with `time`, given the interval its
/// name states.
fn firstrate_interval(time: &[u8], named: Option<Interval>) -> Result<Interval, String> {
    let mut timestamps = LocalTimestamps::default();
    let dated = timestamps.parse_date(time).is_ok();
    let timed = timestamps.parse(time).is_ok();
    match (dated, timed, named) {
        (true, _, None | Some(Interval::OneDay)) => Ok(Interval::OneDay),
        (true, _, Some(other)) => Err(format!(
            "date-only lines (a daily file) but the name says {other}"
        )),
        (_, true, Some(Interval::OneDay)) => {
            Err("lines with times of day but the name says 1day".into())
        }
        (_, true, named) => Ok(named.unwrap_or(Interval::OneMinute)),
        _ => Err(format!(
            "six fields, but {:?} is not FirstRate's YYYY-MM-DD HH:MM[:SS] or YYYY-MM-DD",
            text::lossy(time)
        )),
    }
}

/// Whether the fields are four prices and a volume, or four prices (no volume).
fn numbers(values: &[&[u8]]) -> bool {
    let (prices, volume) = values.split_at(values.len().min(4));
    prices.iter().all(|p| text::parse_price("price", p).is_ok())
        && volume.iter().all(|v| text::parse_volume(v).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::times::{EpochUnit, NaiveTimes};

    fn firstrate(interval: Interval) -> Layout {
        Layout::FirstRate { interval }
    }

    #[test]
    fn detects_each_layout_from_its_first_line_and_name() {
        let csv = |symbol_column| {
            Layout::Csv(CsvSpec {
                naive: NaiveTimes::Local,
                epoch: EpochUnit::Auto,
                symbol_column,
            })
        };
        let cases = [
            (
                "AAPL_full_1min_adjsplit.txt",
                "2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n",
                firstrate(Interval::OneMinute),
            ),
            (
                "AAPL.txt",
                "2005-01-03 08:00,1,2,0.5,1.5,7",
                firstrate(Interval::OneMinute),
            ),
            (
                "AAPL_full_5min_adjsplit.txt",
                "\u{FEFF}2005-01-03 08:00:00,1,2,0.5,1.5,7\r\n",
                firstrate(Interval::FiveMinutes),
            ),
            (
                "AAPL_full_1hour_adjsplit.txt",
                "2005-01-03 08:00:00,1,2,0.5,1.5,7\n",
                firstrate(Interval::OneHour),
            ),
            (
                "AAPL_full_1day_adjsplit.txt",
                "2005-01-03,1,2,0.5,1.5,7\n",
                firstrate(Interval::OneDay),
            ),
            (
                "AAPL.txt",
                "2005-01-03,1,2,0.5,1.5,7\n",
                firstrate(Interval::OneDay),
            ),
            // Index files: no volume.
            (
                "SPX_full_1min.txt",
                "2023-01-03 09:30:00,3853.29,3853.29,3849.3,3850.08\n",
                firstrate(Interval::OneMinute),
            ),
            ("SPX.csv", "timestamp,open,high,low,close\n", csv(false)),
            (
                "2023-07-10.csv",
                "ticker,volume,open,close,high,low,window_start,transactions\nA,1",
                Layout::Polygon,
            ),
            (
                "x.ohlcv-1m.csv",
                "ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume,symbol\n",
                Layout::Databento,
            ),
            (
                "AAPL.txt",
                "07/10/2023,09:30,1,2,0.5,1.5,7\n",
                Layout::Kibot,
            ),
            ("SPX.txt", "07/10/2023,09:30,1,2,0.5,1.5\n", Layout::Kibot),
            (
                "AAPL.csv",
                "timestamp,open,high,low,close,volume\n",
                csv(false),
            ),
            ("AAPL.csv", "Date,Time,O,H,L,C,V\n", csv(false)),
            (
                "day.csv",
                "datetime,ticker,open,high,low,close,volume\n",
                csv(true),
            ),
        ];
        for (name, head, want) in cases {
            assert_eq!(detect(name, head.as_bytes()), Ok(want), "{name}: {head:?}");
        }
    }

    #[test]
    fn ambiguous_or_unknown_is_an_error_that_asks_for_a_rule() {
        let cases = [
            ("AAPL.txt", "", "neither FirstRate's"),
            ("AAPL.txt", "\n2005-01-03 08:00,1,2,0.5,1.5,7\n", "neither"),
            (
                "AAPL.txt",
                "2005-01-03T08:00:00Z,1,2,0.5,1.5,7",
                "is not FirstRate's",
            ),
            ("AAPL.txt", "2005-01-03 08:00,1,2,0.5,x,7", "neither"),
            ("AAPL.txt", "2023-07-10,09:30,1,2,0.5,1.5,7", "not Kibot's"),
            (
                "AAPL.txt",
                "2023-07-10,09:30,1,2,0.5,1.5",
                "6 fields, but not Kibot's",
            ),
            (
                "AAPL_1day.txt",
                "2005-01-03 08:00,1,2,0.5,1.5,7",
                "name says 1day",
            ),
            (
                "AAPL_full_1min_x.txt",
                "2005-01-03,1,2,0.5,1.5,7",
                "name says 1min",
            ),
            (
                "d.csv",
                "ticker,open,close,high,low,window_start_ns\n",
                "not one of",
            ),
            (
                "d.csv",
                "ticker,volume,open,close,high,window_start\n",
                "no \"low\" column",
            ),
            (
                "d.csv",
                "ts_event,open,high,low,close,volume\n",
                "no \"symbol\" column",
            ),
            ("d.csv", "time,price,size\n", "not one of a known layout"),
            ("\u{1b}evil\n.txt", "garbage", "neither"),
        ];
        for (name, head, why) in cases {
            let err = detect(name, head.as_bytes()).expect_err(head);
            assert!(err.why.contains(why), "{head:?}: {err}");
            let shown = err.to_string();
            assert!(
                shown.contains("add a [[source]] rule naming its layout (firstrate, polygon,"),
                "{shown}"
            );
            assert!(
                !shown.contains('\u{1b}') && !shown.contains('\n'),
                "{shown}"
            );
        }
        let long = format!("{},1", "x".repeat(1000));
        let err = detect("a.txt", long.as_bytes()).unwrap_err();
        assert_eq!(err.first_line.len(), SHOWN_LINE_BYTES);
    }
}
