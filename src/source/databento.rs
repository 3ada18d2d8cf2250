//! Databento OHLCV-1m CSV: a header
//! `ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume,symbol`, one bar per
//! line of any instrument, `ts_event` the bar's open in Unix nanoseconds UTC.
//!
//! Columns are found by name, in any order; `publisher_id`, `instrument_id` and any other
//! column are not read. `rtype`, when there is one, must be 33 (ohlcv-1m): a record of another
//! schema (32 ohlcv-1s, 34 ohlcv-1h, 35 ohlcv-1d, 36 ohlcv-eod) is rejected `not_one_minute`, and
//! with it the whole unit is quarantined (the one-minute store holds one-minute bars only). `ts_event` is a nanosecond count, or an ISO 8601 time when the
//! file was written with pretty timestamps (`2023-07-10T13:30:00.000000000Z`; naive is UTC).
//! Prices are fixed-point integers in units of 10^-9 (`189840000000` = 189.84) unless written
//! with a decimal point (pretty prices). The symbol is the `symbol` column: a header without it
//! is refused (`bad_header`), because `instrument_id` alone names no symbol and a file of several
//! instruments must never be loaded under one name. A file without a `volume` column (an index)
//! reads as volume 0, as an empty volume field does.

use super::BarTime;
use super::Volume;
use super::columns::{self, Columnar, Fields, SymbolCache, Values};
use super::text;
use super::times::{self, EpochUnit, NaiveTimes};
use crate::model::reject::{Defect, RejectReason};

/// The header Databento writes (with symbols mapped).
pub const HEADER: &str =
    "ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume,symbol";

/// The `rtype` of an OHLCV-1m record.
const RTYPE_OHLCV_1M: u64 = 33;

/// The OHLCV record types, by `rtype`.
const OHLCV_RTYPES: [(u64, &str); 5] = [
    (32, "ohlcv-1s"),
    (33, "ohlcv-1m"),
    (34, "ohlcv-1h"),
    (35, "ohlcv-1d"),
    (36, "ohlcv-eod"),
];

/// Fixed-point price units per currency unit.
const FIXED_PRICE_SCALE: f64 = 1e9;

/// The Databento layout (no options).
#[derive(Debug, Clone, Copy, Default)]
pub struct Databento;

/// Where each needed column is.
#[derive(Debug, Clone, Copy)]
pub struct DatabentoColumns {
    ts_event: usize,
    rtype: Option<usize>,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    /// Absent in index files: volume 0.
    volume: Option<usize>,
    symbol: usize,
}

impl Columnar for Databento {
    type Map = DatabentoColumns;

    fn expected(&self) -> String {
        format!("Databento OHLCV ({HEADER})")
    }

    fn map(&self, names: &[String]) -> Result<DatabentoColumns, String> {
        let ts_event = columns::require(names, &["ts_event"])?;
        let [open, high, low, close] =
            ["open", "high", "low", "close"].map(|name| columns::require(names, &[name]));
        let symbol = columns::require(names, &["symbol"]).map_err(|_| {
            "no \"symbol\" column (instrument_id alone names no symbol: write the file with \
             symbols mapped)"
                .to_string()
        });
        Ok(DatabentoColumns {
            ts_event,
            rtype: columns::find(names, &["rtype"])?,
            open: open?,
            high: high?,
            low: low?,
            close: close?,
            volume: columns::find(names, &["volume"])?,
            symbol: symbol?,
        })
    }

    #[inline]
    fn read(
        &self,
        c: &DatabentoColumns,
        f: &Fields<'_>,
        symbols: &mut SymbolCache,
    ) -> Result<Values, Defect> {
        if let Some(i) = c.rtype {
            one_minute(f.get(i))?;
        }
        Ok(Values {
            symbol: Some(symbols.symbol("symbol", f.get(c.symbol))?),
            time: ts_event(f.get(c.ts_event))?,
            open: price("open", f.get(c.open))?,
            high: price("high", f.get(c.high))?,
            low: price("low", f.get(c.low))?,
            close: price("close", f.get(c.close))?,
            volume: match c.volume.map(|i| f.get(i)) {
                None | Some(b"") => Volume::Shares(0),
                Some(v) => text::parse_volume(v)?,
            },
        })
    }
}

/// Checks a record's `rtype` says ohlcv-1m; the record's interval as a `not_one_minute` defect
/// when it says another.
#[inline]
fn one_minute(rtype: &[u8]) -> Result<(), Defect> {
    let Some(code) = std::str::from_utf8(rtype)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return Err(Defect::new(
            RejectReason::BadNumber,
            format!("rtype {:?} is not a record type number", text::lossy(rtype)),
        ));
    };
    if code == RTYPE_OHLCV_1M {
        return Ok(());
    }
    let schema = OHLCV_RTYPES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("not an OHLCV record", |(_, name)| name);
    Err(Defect::new(
        RejectReason::NotOneMinute,
        format!("rtype {code} ({schema}), not {RTYPE_OHLCV_1M} (ohlcv-1m)"),
    ))
}

/// A nanosecond count or an ISO 8601 time (naive = UTC).
fn ts_event(b: &[u8]) -> Result<BarTime, Defect> {
    if b.first().is_some_and(u8::is_ascii_digit) && b.iter().all(u8::is_ascii_digit) {
        return times::parse_epoch(b, EpochUnit::Nanos);
    }
    times::parse_iso(b, NaiveTimes::Utc).map_err(|_| {
        times::bad(
            b,
            "Unix nanoseconds or an ISO 8601 time (2023-07-10T13:30:00.000000000Z)",
        )
    })
}

/// A fixed-point integer (10^-9 units), or a decimal when written with a point.
#[inline]
fn price(name: &str, b: &[u8]) -> Result<f64, Defect> {
    match times::signed_integer(b) {
        // Both operands exact below 2^53, so the quotient is the correctly rounded value, the
        // same as parsing the decimal text.
        Some(units) => Ok(units as f64 / FIXED_PRICE_SCALE),
        None if b.contains(&b'.') || !b.iter().all(u8::is_ascii_digit) => {
            text::parse_price(name, b)
        }
        None => Err(Defect::new(
            RejectReason::BadNumber,
            format!(
                "{name} {:?} is out of range for a fixed-point price",
                text::lossy(b)
            ),
        )),
    }
}

/// Shortest good line, its `\n` included: six one-byte fields (ts_event, open, high, low,
/// close, symbol; volume may be absent) and five commas.
pub const MIN_RECORD_BYTES: u64 = 12;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::columns::HeaderSource;
    use crate::source::{Source, Volume};

    type Item = Result<(u64, String, BarTime, [f64; 4], Volume), (u64, RejectReason, String)>;

    fn items(input: &str) -> Vec<Item> {
        let mut source = HeaderSource::new(input.as_bytes(), Databento);
        let mut out = Vec::new();
        while let Some(p) = source.next_record().unwrap() {
            out.push(
                p.map(|r| {
                    (
                        r.line,
                        r.symbol.map(|s| s.to_string()).unwrap_or_default(),
                        r.time,
                        [r.open, r.high, r.low, r.close],
                        r.volume,
                    )
                })
                .map_err(|r| (r.line, r.reason, r.message)),
            );
        }
        out
    }

    const MS: i64 = 1_688_995_800_000; // 2023-07-10T13:30:00Z

    #[test]
    fn fixed_point_prices_nanosecond_times_and_the_symbol_column() {
        let got = items(&format!(
            "{HEADER}\n\
             1688995800000000000,33,2,15144,189840000000,189950000000,189800000000,189900000000,4930,AAPL\n"
        ));
        assert_eq!(
            got,
            [Ok((
                2,
                "AAPL".into(),
                BarTime::Utc(MS),
                [189.84, 189.95, 189.8, 189.9],
                Volume::Shares(4930)
            ))]
        );
        // The fixed-point quotient equals the decimal text's value exactly.
        assert_eq!(
            price("open", b"123456789012345").unwrap(),
            "123456.789012345".parse::<f64>().unwrap()
        );
    }

    #[test]
    fn pretty_prices_and_times_in_any_column_order() {
        let got = items(
            "symbol,volume,close,low,high,open,ts_event\n\
             ES.FUT,12.0,4500.250000000,4500.0,4501.000000000,4500.5,2023-07-10T13:30:00.000000000Z\n\
             ES.FUT,3,4500.25,4500.0,4501.0,4500.5,2023-07-10 13:31:00\n",
        );
        assert_eq!(
            got,
            [
                Ok((
                    2,
                    "ES.FUT".into(),
                    BarTime::Utc(MS),
                    [4500.5, 4501.0, 4500.0, 4500.25],
                    Volume::Decimal(12.0)
                )),
                Ok((
                    3,
                    "ES.FUT".into(),
                    BarTime::Utc(MS + 60_000),
                    [4500.5, 4501.0, 4500.0, 4500.25],
                    Volume::Shares(3)
                )),
            ]
        );
    }

    #[test]
    fn rejects_each_bad_field() {
        let ok_tail = "1,1,1,1,1";
        let got = items(&format!(
            "ts_event,open,high,low,close,volume,symbol\n\
             1688995800000000000,{ok_tail},A B\n\
             1688995800000000500,{ok_tail},A\n\
             13:30,{ok_tail},A\n\
             1688995800000000000,99999999999999999999,1,1,1,1,A\n\
             1688995800000000000,1,1,1,1,x,A\n\
             1688995800000000000,1,1,1,1,A\n"
        ));
        let reasons: Vec<_> = got
            .iter()
            .map(|i| i.as_ref().map(|r| r.0).map_err(|r| (r.0, r.1)))
            .collect();
        use RejectReason::*;
        assert_eq!(
            reasons,
            [
                Err((2, BadSymbol)),
                Err((3, BadTimestamp)),
                Err((4, BadTimestamp)),
                Err((5, BadNumber)),
                Err((6, BadNumber)),
                Err((7, FieldCount)),
            ]
        );
    }

    #[test]
    fn a_header_without_symbols_or_not_databentos_is_refused() {
        let got = items(
            "ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume\n\
             1688995800000000000,33,2,15144,1,1,1,1,1\n",
        );
        let Err((1, RejectReason::BadHeader, message)) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(message.contains("no \"symbol\" column"), "{message}");
        assert!(matches!(got[1], Err((2, RejectReason::BadHeader, _))));
        let got = items(&format!("{}\n", crate::source::polygon::HEADER));
        let Err((1, RejectReason::BadHeader, message)) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(message.contains("no \"ts_event\" column"), "{message}");
    }

    #[test]
    fn a_record_of_another_schema_than_ohlcv_1m_is_not_one_minute() {
        let line = |rtype: &str| format!("1688995800000000000,{rtype},2,15144,1,1,1,1,1,AAPL\n");
        let got = items(&format!(
            "{HEADER}\n{}{}{}{}{}",
            line("33"),
            line("35"),
            line("32"),
            line("21"),
            line("x")
        ));
        let reasons: Vec<_> = got
            .iter()
            .map(|i| i.as_ref().map(|_| ()).map_err(|r| (r.1, r.2.clone())))
            .collect();
        assert!(reasons[0].is_ok());
        let (reason, message) = reasons[1].clone().unwrap_err();
        assert_eq!(reason, RejectReason::NotOneMinute);
        assert_eq!(message, "rtype 35 (ohlcv-1d), not 33 (ohlcv-1m)");
        assert!(reasons[2].clone().unwrap_err().1.contains("ohlcv-1s"));
        assert!(
            reasons[3]
                .clone()
                .unwrap_err()
                .1
                .contains("not an OHLCV record")
        );
        assert_eq!(reasons[4].clone().unwrap_err().0, RejectReason::BadNumber);
        // Without an rtype column, nothing is checked.
        let got = items("ts_event,open,high,low,close,volume,symbol\n0,1,1,1,1,1,A\n");
        assert!(got[0].is_ok(), "{got:?}");
    }

    #[test]
    fn an_index_file_without_a_volume_column_reads_volume_zero() {
        let got = items(
            "ts_event,rtype,publisher_id,instrument_id,open,high,low,close,symbol\n\
             1688995800000000000,33,2,15144,4500500000000,4501000000000,4500000000000,4500250000000,SPX\n\
             1688995860000000000,33,2,15144,4500.5,4501,4500,4500.25,SPX\n",
        );
        let volumes: Vec<_> = got.iter().map(|i| i.as_ref().map(|r| r.4)).collect();
        assert_eq!(
            volumes,
            [Ok(Volume::Shares(0)), Ok(Volume::Shares(0))],
            "{got:?}"
        );
        // An empty volume field reads as 0 too; a missing field is still a short line.
        let got = items("ts_event,open,high,low,close,volume,symbol\n0,1,1,1,1,,A\n0,1,1,1,1,A\n");
        assert_eq!(
            got[0].as_ref().map(|r| r.4),
            Ok(Volume::Shares(0)),
            "{got:?}"
        );
        assert!(
            matches!(got[1], Err((3, RejectReason::FieldCount, _))),
            "{got:?}"
        );
    }
}
