//! Polygon (Massive) flat files `minute_aggs_v1`: a header
//! `ticker,volume,open,close,high,low,window_start,transactions`, then one bar per line of any
//! ticker, `window_start` in Unix nanoseconds UTC.
//!
//! Columns are found by their header names, in whatever order the header gives; other columns
//! (`transactions`, ones added later) are ignored. Index files have no volume: a missing
//! `volume` column or an empty volume field reads as volume 0 (the table has no "no volume").
//! The symbol is each line's `ticker`; one that is not a valid symbol (an index's `I:SPX`, an
//! option's `O:...`) is a `bad_symbol` rejection. A `window_start` finer than a millisecond is a
//! `bad_timestamp` (a whole minute in practice; any whole millisecond is kept as it is).

use super::Volume;
use super::columns::{self, Columnar, Fields, SymbolCache, Values};
use super::text;
use super::times::{self, EpochUnit};
use crate::model::reject::Defect;

/// The header Polygon writes.
pub const HEADER: &str = "ticker,volume,open,close,high,low,window_start,transactions";

/// The Polygon layout (no options).
#[derive(Debug, Clone, Copy, Default)]
pub struct Polygon;

/// Where each needed column is.
#[derive(Debug, Clone, Copy)]
pub struct PolygonColumns {
    ticker: usize,
    volume: Option<usize>,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    window_start: usize,
}

impl Columnar for Polygon {
    type Map = PolygonColumns;

    fn expected(&self) -> String {
        format!("Polygon minute_aggs_v1 ({HEADER})")
    }

    fn map(&self, names: &[String]) -> Result<PolygonColumns, String> {
        Ok(PolygonColumns {
            ticker: columns::require(names, &["ticker"])?,
            volume: columns::find(names, &["volume"])?,
            open: columns::require(names, &["open"])?,
            high: columns::require(names, &["high"])?,
            low: columns::require(names, &["low"])?,
            close: columns::require(names, &["close"])?,
            window_start: columns::require(names, &["window_start"])?,
        })
    }

    #[inline]
    fn read(
        &self,
        c: &PolygonColumns,
        f: &Fields<'_>,
        symbols: &mut SymbolCache,
    ) -> Result<Values, Defect> {
        let window_start = f.get(c.window_start);
        Ok(Values {
            symbol: Some(symbols.symbol("ticker", f.get(c.ticker))?),
            time: times::parse_epoch(window_start, EpochUnit::Nanos)
                .map_err(|_| times::bad(window_start, "Unix nanoseconds (whole milliseconds)"))?,
            open: text::parse_price("open", f.get(c.open))?,
            high: text::parse_price("high", f.get(c.high))?,
            low: text::parse_price("low", f.get(c.low))?,
            close: text::parse_price("close", f.get(c.close))?,
            volume: match c.volume.map(|i| f.get(i)) {
                None | Some(b"") => Volume::Shares(0),
                Some(v) => text::parse_volume(v)?,
            },
        })
    }
}

/// Shortest good line, its `\n` included: six one-byte fields (ticker, open, close, high, low,
/// window_start; volume may be absent) and five commas.
pub const MIN_RECORD_BYTES: u64 = 12;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reject::RejectReason;
    use crate::source::columns::HeaderSource;
    use crate::source::{BarTime, Parsed, Source};

    fn utc(ns: i64) -> BarTime {
        BarTime::Utc(ns / 1_000_000)
    }

    /// A record as (line, symbol, time, open, high, low, close, volume); a rejection as
    /// (line, reason, message).
    type Item = Result<(u64, String, BarTime, [f64; 4], Volume), (u64, RejectReason, String)>;

    fn item(p: Parsed<'_>) -> Item {
        p.map(|r| {
            (
                r.line,
                r.symbol.map(|s| s.to_string()).unwrap_or_default(),
                r.time,
                [r.open, r.high, r.low, r.close],
                r.volume,
            )
        })
        .map_err(|r| (r.line, r.reason, r.message))
    }

    fn items(input: &str) -> Vec<Item> {
        let mut source = HeaderSource::new(input.as_bytes(), Polygon);
        let mut out = Vec::new();
        while let Some(p) = source.next_record().unwrap() {
            out.push(item(p));
        }
        assert_eq!(source.bytes_read(), input.len() as u64);
        out
    }

    const T: i64 = 1_688_995_800_000_000_000; // 2023-07-10T13:30:00Z

    #[test]
    fn reads_polygon_lines_with_the_ticker_as_symbol() {
        let got = items(
            "ticker,volume,open,close,high,low,window_start,transactions\n\
             AAPL,4930,189.84,189.9,189.95,189.8,1688995800000000000,97\n\
             BRK.B,200.0,350.1,350.2,350.3,350,1688995860000000000,3\r\n",
        );
        assert_eq!(
            got,
            [
                Ok((
                    2,
                    "AAPL".into(),
                    utc(T),
                    [189.84, 189.95, 189.8, 189.9],
                    Volume::Shares(4930)
                )),
                Ok((
                    3,
                    "BRK.B".into(),
                    utc(T + 60_000_000_000),
                    [350.1, 350.3, 350.0, 350.2],
                    Volume::Decimal(200.0)
                )),
            ]
        );
    }

    #[test]
    fn columns_in_any_order_and_indices_without_volume() {
        let got = items(
            "window_start,low,high,close,open,ticker,extra\n\
             1688995800000000000,1,4,3,2,SPY,x\n",
        );
        assert_eq!(
            got,
            [Ok((
                2,
                "SPY".into(),
                utc(T),
                [2.0, 4.0, 1.0, 3.0],
                Volume::Shares(0)
            ))]
        );
        let empty_volume = items(&format!("{HEADER}\nSPX,,1,1,1,1,{T},\n"));
        assert_eq!(empty_volume[0].as_ref().unwrap().4, Volume::Shares(0));
    }

    #[test]
    fn rejects_each_bad_field() {
        let got = items(&format!(
            "{HEADER}\n\
             I:SPX,1,1,1,1,1,{T},1\n\
             AAPL,1,1,1,1,1,1688995800000000001,1\n\
             AAPL,1,1,1,1,1,2023-07-10,1\n\
             AAPL,1,x,1,1,1,{T},1\n\
             AAPL,one,1,1,1,1,{T},1\n\
             AAPL,1,1,1,1,1,{T}\n\
             \n\
             AAPL,1,1,1,1,1,{T},1\n"
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
                Err((8, BlankLine)),
                Ok(9),
            ]
        );
        let Err((_, _, message)) = &got[0] else {
            panic!()
        };
        assert!(
            message.contains("ticker \"I:SPX\" is not a valid symbol"),
            "{message}"
        );
    }

    #[test]
    fn a_header_that_is_not_polygons_refuses_the_file() {
        let got = items(
            "timestamp,open,high,low,close,volume\n\
             2023-07-10 13:30:00,1,1,1,1,1\n",
        );
        let Err((1, RejectReason::BadHeader, message)) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(
            message.contains("\"timestamp,open,high,low,close,volume\"")
                && message.contains(HEADER)
                && message.contains("no \"ticker\" column"),
            "{message}"
        );
        let Err((2, RejectReason::BadHeader, _)) = &got[1] else {
            panic!("{got:?}")
        };
        // A file that starts with data: line 1 is no header.
        let got = items(&format!("AAPL,1,1,1,1,1,{T},1\n"));
        assert!(
            matches!(&got[..], [Err((1, RejectReason::BadHeader, m))] if m.contains("not a header")),
            "{got:?}"
        );
    }
}
