//! Days: gathers each symbol's bars of its current exchange-local day while a unit is read, and
//! hands the day out as one encoded day cell (`crate::cell`) when that symbol's day changes or
//! the unit ends.
//!
//! Memory: a multi-symbol file sorted by time (a Polygon day file) keeps one open day per
//! symbol. An open day holds at most [`CHUNK_BARS`] bars as plain columns (48 bytes a bar); each
//! full chunk is encoded with the cell codec at once (about 11-14 bytes a bar, see
//! `docs/day-cell-format.md`), and the chunks are decoded and encoded again as the one cell of
//! the day when it closes. So the builder holds about `symbols x 3 KiB + open bars x 8-14
//! bytes`: 10,000 symbols of 390 bars each measured 58 MiB (the test below); a full 24-hour day
//! each (1440 bars) would be about 200 MiB.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::cell::{self, CellError, CellHeader, DayColumns};
use crate::model::{Bar, Bucket, Symbol};

/// Bars of an open day kept as plain columns before they are encoded into a chunk.
pub(crate) const CHUNK_BARS: usize = 64;

/// One symbol's exchange-local day, encoded: what one insert into the day table writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DayCell {
    pub symbol: Arc<Symbol>,
    /// The partition month of `day`.
    pub bucket: Bucket,
    pub day: NaiveDate,
    pub header: CellHeader,
    pub cell: Vec<u8>,
}

/// Why a day could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DayError {
    /// A bar against the file's direction, or at the time of the symbol's last one:
    /// validation rejects these (`out_of_order`, `duplicate`), so a day is never split; were one
    /// to come, the file fails rather than write a cell holding part of a day.
    #[error(
        "symbol {symbol}: a bar of {day} at {time} ms comes after one at {last} ms of {open_day}: \
         a day cell holds a day whole, so the bars must come in time order"
    )]
    OutOfOrder {
        symbol: String,
        day: NaiveDate,
        time: i64,
        open_day: NaiveDate,
        last: i64,
    },
    #[error("symbol {symbol}, day {day}: {source}")]
    Cell {
        symbol: String,
        day: NaiveDate,
        source: CellError,
    },
}

/// The day being gathered for one symbol.
struct OpenDay {
    day: NaiveDate,
    bucket: Bucket,
    /// The latest bars, not yet encoded (fewer than [`CHUNK_BARS`]).
    pending: DayColumns,
    /// Earlier bars, [`CHUNK_BARS`] at a time, each encoded as a cell.
    chunks: Vec<Box<[u8]>>,
    last_millis: i64,
}

/// Open days by symbol; see the module's memory bound.
#[derive(Default)]
pub(crate) struct DayBuilder {
    open: HashMap<Arc<Symbol>, OpenDay>,
    /// The file's direction once known: newest first (true) or oldest first.
    falling: Option<bool>,
}

impl DayBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Symbols with an open day.
    #[cfg(test)]
    pub fn open_days(&self) -> usize {
        self.open.len()
    }

    /// Bytes the open days hold on the heap: the pending columns' room and the chunks (the
    /// map's own entries, about 100 bytes a symbol, left out).
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        let columns = |c: &DayColumns| 8 * (c.times.capacity() + 5 * c.open.capacity());
        self.open
            .values()
            .map(|o| columns(&o.pending) + o.chunks.iter().map(|c| c.len() + 16).sum::<usize>())
            .sum()
    }

    /// Adds a bar of `symbol` on the exchange-local `day`; returns the symbol's previous day,
    /// encoded, when this bar starts a new one. The bars of every symbol run the file's one
    /// direction (oldest first, or newest first as validation allows), learnt from the first
    /// two times of a symbol.
    pub fn push(
        &mut self,
        symbol: &Arc<Symbol>,
        day: NaiveDate,
        bucket: Bucket,
        bar: &Bar,
    ) -> Result<Option<DayCell>, DayError> {
        let mut closed = None;
        if let Some(open) = self.open.get_mut(symbol) {
            let falling = match self.falling {
                Some(f) => f,
                None if bar.ts_millis == open.last_millis => false,
                None => *self.falling.insert(bar.ts_millis < open.last_millis),
            };
            let (onward, new_day) = match falling {
                false => (bar.ts_millis > open.last_millis, day > open.day),
                true => (bar.ts_millis < open.last_millis, day < open.day),
            };
            if onward && day == open.day {
                return open.add(symbol, bar, falling).map(|()| None);
            }
            if !onward || !new_day {
                return Err(DayError::OutOfOrder {
                    symbol: symbol.as_str().to_owned(),
                    day,
                    time: bar.ts_millis,
                    open_day: open.day,
                    last: open.last_millis,
                });
            }
            let previous = self.open.remove(symbol).expect("looked up above");
            closed = Some(previous.close(Arc::clone(symbol), falling)?);
        }
        let mut open = OpenDay::new(day, bucket);
        open.add(symbol, bar, self.falling == Some(true))?;
        self.open.insert(Arc::clone(symbol), open);
        Ok(closed)
    }

    /// Closes one open day (any), encoded; None when none is open. Call until None at the end.
    pub fn pop(&mut self) -> Option<Result<DayCell, DayError>> {
        let symbol = Arc::clone(self.open.keys().next()?);
        let open = self.open.remove(&symbol)?;
        Some(open.close(symbol, self.falling == Some(true)))
    }
}

impl OpenDay {
    fn new(day: NaiveDate, bucket: Bucket) -> Self {
        Self {
            day,
            bucket,
            pending: DayColumns::default(),
            chunks: Vec::new(),
            last_millis: i64::MIN,
        }
    }

    /// Adds the next bar in file order (`falling`: the file runs newest first).
    fn add(&mut self, symbol: &Symbol, bar: &Bar, falling: bool) -> Result<(), DayError> {
        let p = &mut self.pending;
        p.push(
            bar.ts_millis,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
        );
        self.last_millis = bar.ts_millis;
        if p.len() >= CHUNK_BARS {
            if falling {
                reverse(p);
            }
            let encoded = cell::encode(p.view());
            let chunk = encoded.map_err(|e| self.failed(symbol, e))?;
            self.chunks.push(chunk.into_boxed_slice());
            // Keeps the columns' room for the next chunk (the 3 KiB of the memory bound).
            self.pending.clear();
        }
        Ok(())
    }

    /// The whole day as one cell, in time order (`falling`: the bars came newest first, so
    /// each chunk holds earlier bars than the one before, and the pending ones the earliest).
    fn close(mut self, symbol: Arc<Symbol>, falling: bool) -> Result<DayCell, DayError> {
        if falling {
            reverse(&mut self.pending);
            self.chunks.reverse();
        }
        let encoded = if self.chunks.is_empty() {
            cell::encode(self.pending.view())
        } else {
            let bars = self.chunks.len() * CHUNK_BARS + self.pending.len();
            let mut all = DayColumns::with_capacity(bars);
            if falling {
                append(&mut all, &self.pending);
            }
            self.chunks
                .iter()
                .try_for_each(|c| cell::decode_into(c, &mut all).map(|_| ()))
                .and_then(|()| {
                    if !falling {
                        append(&mut all, &self.pending);
                    }
                    cell::encode(all.view())
                })
        };
        let cell = encoded.map_err(|e| self.failed(&symbol, e))?;
        let header = cell::read_header(&cell).map_err(|e| self.failed(&symbol, e))?;
        Ok(DayCell {
            symbol,
            bucket: self.bucket,
            day: self.day,
            header,
            cell,
        })
    }

    fn failed(&self, symbol: &Symbol, source: CellError) -> DayError {
        DayError::Cell {
            symbol: symbol.as_str().to_owned(),
            day: self.day,
            source,
        }
    }
}

/// Reverses the order of `cols`' bars.
fn reverse(cols: &mut DayColumns) {
    cols.times.reverse();
    cols.open.reverse();
    cols.high.reverse();
    cols.low.reverse();
    cols.close.reverse();
    cols.volume.reverse();
}

/// Appends `more`'s bars to `all`.
fn append(all: &mut DayColumns, more: &DayColumns) {
    all.times.extend_from_slice(&more.times);
    all.open.extend_from_slice(&more.open);
    all.high.extend_from_slice(&more.high);
    all.low.extend_from_slice(&more.low);
    all.close.extend_from_slice(&more.close);
    all.volume.extend_from_slice(&more.volume);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn bar(ts_millis: i64, price: f64) -> Bar {
        Bar {
            ts_millis,
            open: price,
            high: price + 0.5,
            low: price - 0.25,
            close: price + 0.125,
            volume: 100.0 + price,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn decoded(c: &DayCell) -> DayColumns {
        let mut out = DayColumns::default();
        cell::decode_into(&c.cell, &mut out).unwrap();
        out
    }

    /// Two symbols interleaved by time over two days, each day longer than several chunks: each
    /// symbol's day comes out whole and bit for bit when its next day starts, the rest at the end.
    #[test]
    fn interleaved_symbols_give_one_whole_cell_per_symbol_and_day() {
        let (a, b) = (
            Arc::new(Symbol::new("A").unwrap()),
            Arc::new(Symbol::new("B").unwrap()),
        );
        let bucket = Bucket::of_local_date(day(4));
        let mut builder = DayBuilder::new();
        let mut cells = Vec::new();
        let per_day = 3 * CHUNK_BARS + 5;
        for (d, base) in [(4, 1_709_557_200_000i64), (5, 1_709_643_600_000)] {
            for i in 0..per_day as i64 {
                for (s, k) in [(&a, 1.0), (&b, 2.0)] {
                    let b = bar(base + i * MINUTE, k * 10.0 + i as f64 / 100.0);
                    cells.extend(builder.push(s, day(d), bucket, &b).unwrap());
                }
            }
        }
        assert_eq!(cells.len(), 2, "the first day of each symbol closed");
        assert_eq!(builder.open_days(), 2);
        while let Some(c) = builder.pop() {
            cells.push(c.unwrap());
        }
        assert_eq!(cells.len(), 4);
        for c in &cells {
            let cols = decoded(c);
            assert_eq!(cols.len(), per_day);
            assert_eq!(c.header.bars, per_day);
            let k = if c.symbol.as_str() == "A" { 1.0 } else { 2.0 };
            for (i, t) in cols.times.iter().enumerate() {
                assert_eq!(*t, cols.times[0] + i as i64 * MINUTE);
                assert_eq!(cols.open[i], k * 10.0 + i as f64 / 100.0);
                assert_eq!(cols.volume[i], 100.0 + cols.open[i]);
            }
        }
    }

    /// A file newest first (as validation accepts): each day comes out whole, in time order.
    #[test]
    fn a_newest_first_file_gives_whole_days_in_time_order() {
        let a = Arc::new(Symbol::new("A").unwrap());
        let bucket = Bucket::of_local_date(day(4));
        let mut builder = DayBuilder::new();
        let mut cells = Vec::new();
        let per_day = 2 * CHUNK_BARS + 7;
        for (d, base) in [(5, 1_709_643_600_000i64), (4, 1_709_557_200_000)] {
            for i in (0..per_day as i64).rev() {
                let b = bar(base + i * MINUTE, 10.0 + i as f64 / 100.0);
                cells.extend(builder.push(&a, day(d), bucket, &b).unwrap());
            }
        }
        // Back to a later day in a newest-first file: refused.
        let later = builder.push(&a, day(5), bucket, &bar(1_709_643_600_000, 1.0));
        assert!(matches!(later, Err(DayError::OutOfOrder { .. })));
        cells.extend(builder.pop().map(Result::unwrap));
        let days: Vec<NaiveDate> = cells.iter().map(|c| c.day).collect();
        assert_eq!(days, [day(5), day(4)]);
        for c in &cells {
            let cols = decoded(c);
            assert_eq!(cols.len(), per_day);
            for i in 0..per_day {
                assert_eq!(cols.times[i], cols.times[0] + i as i64 * MINUTE);
                assert_eq!(cols.open[i], 10.0 + i as f64 / 100.0);
            }
        }
    }

    /// The memory bound of a time-sorted day file of 10,000 tickers with 390 bars each (the
    /// regular session; 3.9 million bars): every ticker's day stays open until the end, and the
    /// open days hold the pending columns' room (3 KiB a ticker) and the encoded chunks: 58 MiB
    /// measured, about 16 bytes a bar in all, far under the 256 MiB target (the raw bars alone
    /// would be 179 MiB).
    #[test]
    fn ten_thousand_open_days_of_a_time_sorted_file_stay_far_under_the_target() {
        let symbols: Vec<Arc<Symbol>> = (0..10_000)
            .map(|i| Arc::new(Symbol::new(&format!("S{i:05}")).unwrap()))
            .collect();
        let bucket = Bucket::of_local_date(day(5));
        let mut builder = DayBuilder::new();
        let open = 1_709_649_000_000i64; // 2024-03-05 09:30 New York
        for minute in 0..390i64 {
            for (k, s) in symbols.iter().enumerate() {
                // Whole cents, as the files' decimal prices parse.
                let c = 2000 + (k % 300) as i64 * 100 + (minute * 7 + k as i64) % 41;
                let cents = |d: i64| (c + d) as f64 / 100.0;
                let b = Bar {
                    ts_millis: open + minute * MINUTE,
                    open: cents(0),
                    high: cents(5),
                    low: cents(-3),
                    close: cents(1),
                    volume: (100 + (minute * 13 + k as i64) % 5000) as f64,
                };
                assert!(builder.push(s, day(5), bucket, &b).unwrap().is_none());
            }
        }
        let held = builder.held_bytes();
        let per_bar = held as f64 / 3_900_000.0;
        eprintln!(
            "10,000 open days of 390 bars: {:.1} MiB, {per_bar:.1} bytes a bar",
            held as f64 / 1048576.0
        );
        assert!(held < 80 << 20, "{held} bytes held");
        let mut bars = 0;
        while let Some(c) = builder.pop() {
            bars += c.unwrap().header.bars;
        }
        assert_eq!(bars, 3_900_000);
    }

    /// In a file oldest first, a bar going back in time (a split day: D, E, then D again)
    /// fails instead of writing part of a day; so does a repeated time.
    #[test]
    fn a_bar_back_in_time_is_an_error() {
        let a = Arc::new(Symbol::new("A").unwrap());
        let bucket = Bucket::of_local_date(day(4));
        let mut builder = DayBuilder::new();
        let (d4, d5) = (1_709_557_200_000, 1_709_643_600_000);
        for (d, t) in [(4, d4), (4, d4 + MINUTE), (5, d5)] {
            builder.push(&a, day(d), bucket, &bar(t, 1.0)).unwrap();
        }
        let back = builder.push(&a, day(4), bucket, &bar(d4 + 2 * MINUTE, 1.0));
        assert!(matches!(back, Err(DayError::OutOfOrder { .. })));
        let same = builder.push(&a, day(5), bucket, &bar(d5, 1.0));
        assert!(matches!(same, Err(DayError::OutOfOrder { .. })));
    }
}
