//! bar-gen: deterministic, realistic FirstRate-style bar files, for tests, demos and benchmarks.
//!
//! A development tool, not part of the product: the `bar-gen` binary writes files into a folder,
//! and the integration tests call [`write_symbol`] directly. [`layouts`] writes the same bars in
//! the other vendor layouts the product reads; [`download`] writes a FirstRate download of every
//! interval (1min to 1day) and files in newest-first order.
//!
//! Same [`GenSpec`] → byte-identical files. Bars fall on trading days only
//! ([`bar_ingest::calendar::is_trading_day`]), 04:00–19:59 local, with minutes missing (rarely in
//! the regular session, often before and after it). Prices are a random walk in whole ten-thousandths
//! (so the printed text is exactly the value meant) with a split-like 2:1 or 3:1 step now and
//! then; volumes are whole shares. Only `+`, `*` and comparisons are used on floats, so the
//! output does not depend on a platform's math library.

pub mod download;
pub mod pack;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use bar_ingest::calendar;
use bar_ingest::model::Symbol;

pub mod layouts;

/// Price units per currency unit: prices have at most 4 decimals.
const TICKS_PER_UNIT: u64 = 10_000;
/// Lowest price generated (one cent): keeps relative tick size sane.
const MIN_PRICE_TICKS: u64 = 100;
/// Starting price range of a symbol, in currency units.
const START_PRICE_RANGE: std::ops::Range<f64> = 5.0..300.0;
/// First minute of the day with bars (04:00) and the minute after the last (20:00).
const SESSION_START_MINUTE: u32 = 4 * 60;
const SESSION_END_MINUTE: u32 = 20 * 60;
/// The regular session, [09:30, 16:00) local.
const REGULAR_START_MINUTE: u32 = 9 * 60 + 30;
const REGULAR_END_MINUTE: u32 = 16 * 60;
/// On early-close days the extended session ends at 17:00.
const EARLY_CLOSE_SESSION_END_MINUTE: u32 = 17 * 60;
/// Chance that a minute has a bar, in and out of the regular session.
const BAR_PROBABILITY_REGULAR: f64 = 0.97;
const BAR_PROBABILITY_EXTENDED: f64 = 0.25;
/// Standard deviation of the relative price change over one minute.
const MINUTE_VOLATILITY: f64 = 0.0008;
/// Standard deviation of the relative overnight gap.
const OVERNIGHT_VOLATILITY: f64 = 0.01;
/// Chance per trading day of a split-like step (2:1 or 3:1).
const SPLIT_PROBABILITY_PER_DAY: f64 = 1.0 / 400.0;
/// Above this price a split step divides the price, below it multiplies it (reverse split).
const SPLIT_PIVOT_PRICE_TICKS: u64 = 20 * TICKS_PER_UNIT;
/// Mean shares per regular-session minute, range over symbols.
const BASE_VOLUME_RANGE: std::ops::Range<f64> = 200.0..20_000.0;
/// Volume of an extended-hours minute relative to a regular one.
const EXTENDED_VOLUME_FACTOR: f64 = 0.05;
/// Write buffer per file.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    pub symbols: Vec<String>,
    /// First day (inclusive).
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Same seed (and the rest of the spec) → byte-identical files.
    pub seed: u64,
}

/// The vendor file name of a symbol: `{SYMBOL}_full_1min_adjsplit.txt`.
pub fn file_name(symbol: &str) -> String {
    format!("{symbol}_full_1min_adjsplit.txt")
}

/// How a generated file departs from the plain vendor file (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Variant {
    /// Every time one minute later: the bar's end, as NinjaTrader, Bloomberg, TradeStation and
    /// older Alpha Vantage exports stamp it (the 09:30-09:31 bar reads 09:31).
    pub end_stamps: bool,
    /// Volumes with six decimals, as Massive (Polygon) flat files write them since 2026-02-23
    /// (Polygon layout only; see [`GenBar::decimal_volume`]).
    pub decimal_volumes: bool,
}

/// One generated bar: exchange-local open time, prices in ticks (1/10 000), whole shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenBar {
    pub date: NaiveDate,
    /// Minute of the local day (0..1440).
    pub minute: u32,
    pub open: u64,
    pub high: u64,
    pub low: u64,
    pub close: u64,
    pub volume: u64,
}

impl GenBar {
    /// The bar's decimal volume in millionths of a share (six decimals, as Polygon writes them
    /// since 2026-02-23): its whole shares plus a fraction taken from its prices, so that the
    /// text varies and is deterministic. Printed as `{micros / 10^6}.{micros % 10^6:06}`.
    pub fn decimal_volume(&self) -> u64 {
        self.volume * 1_000_000 + (self.open * 7 + self.close * 13) % 1_000_000
    }

    /// The local open time of the bar.
    pub fn time(&self) -> NaiveTime {
        NaiveTime::from_hms_opt(self.minute / 60, self.minute % 60, 0).unwrap_or(NaiveTime::MIN)
    }
}

/// The price of `ticks` as the value the file means (`ticks / 10 000`, correctly rounded, which
/// is what parsing the printed text yields).
pub fn ticks_to_price(ticks: u64) -> f64 {
    ticks as f64 / TICKS_PER_UNIT as f64
}

/// The bars of one symbol, in time order: an iterator, so files of any length stream.
#[derive(Debug)]
pub struct SymbolBars {
    /// The one source of randomness, seeded from the spec's seed and the symbol.
    rng: StdRng,
    /// The next day to consider (it may not be a trading day).
    next_day: NaiveDate,
    /// Last day (inclusive).
    end: NaiveDate,
    /// The day bars are being generated for.
    date: NaiveDate,
    /// The next minute of `date` to consider.
    minute: u32,
    /// Minute after the last bar of the current day (0: no day in progress).
    day_end_minute: u32,
    /// Minute after the regular session of the current day (16:00, or the early close).
    regular_end_minute: u32,
    /// Last close, ticks.
    price: u64,
    /// Mean shares per regular minute.
    base_volume: f64,
    /// Give each bar's end as its time (one minute after its open).
    end_stamps: bool,
}

impl SymbolBars {
    pub fn new(spec: &GenSpec, symbol: &str) -> Self {
        let mut rng = StdRng::seed_from_u64(symbol_seed(spec.seed, symbol));
        let start_price = rng.random_range(START_PRICE_RANGE);
        let base_volume = rng.random_range(BASE_VOLUME_RANGE);
        Self {
            rng,
            next_day: spec.start,
            end: spec.end,
            date: spec.start,
            minute: 0,
            day_end_minute: 0,
            regular_end_minute: REGULAR_END_MINUTE,
            price: ((start_price * TICKS_PER_UNIT as f64) as u64).max(MIN_PRICE_TICKS),
            base_volume,
            end_stamps: false,
        }
    }

    /// The same bars, each stamped at its end (its minute one later: the bars are 04:00-19:59,
    /// so the last reads 20:00, on the same day). The bars' values do not change.
    pub fn end_stamped(mut self, end_stamps: bool) -> Self {
        self.end_stamps = end_stamps;
        self
    }

    /// Moves to the next trading day; false when past the end.
    fn start_next_day(&mut self) -> bool {
        while self.next_day <= self.end {
            let day = self.next_day;
            self.next_day = match day.succ_opt() {
                Some(next) => next,
                None => return false,
            };
            if !calendar::is_trading_day(day) {
                continue;
            }
            self.date = day;
            self.minute = SESSION_START_MINUTE;
            let early_close = calendar::early_close(day);
            self.day_end_minute = if early_close.is_some() {
                EARLY_CLOSE_SESSION_END_MINUTE
            } else {
                SESSION_END_MINUTE
            };
            self.regular_end_minute =
                early_close.map_or(REGULAR_END_MINUTE, |t| t.hour() * 60 + t.minute());
            let gap = 1.0 + OVERNIGHT_VOLATILITY * normal(&mut self.rng);
            self.price = scale(self.price, gap);
            if self.rng.random_bool(SPLIT_PROBABILITY_PER_DAY) {
                let ratio = if self.rng.random_bool(0.5) { 2 } else { 3 };
                if self.price > SPLIT_PIVOT_PRICE_TICKS {
                    self.price = (self.price / ratio).max(MIN_PRICE_TICKS);
                    self.base_volume *= ratio as f64;
                } else {
                    self.price *= ratio;
                    self.base_volume /= ratio as f64;
                }
            }
            return true;
        }
        false
    }

    fn bar_at(&mut self, minute: u32, regular: bool) -> GenBar {
        let open = self.price;
        let close = scale(open, 1.0 + MINUTE_VOLATILITY * normal(&mut self.rng));
        let top = open.max(close);
        let bottom = open.min(close);
        let up = scale_abs(top, MINUTE_VOLATILITY * 0.5 * normal(&mut self.rng));
        let down = scale_abs(bottom, MINUTE_VOLATILITY * 0.5 * normal(&mut self.rng));
        let high = top + up;
        let low = bottom.saturating_sub(down).max(MIN_PRICE_TICKS).min(bottom);
        self.price = close;
        let mean = if regular {
            // Busier near the open and the close: a U over the session.
            let span = f64::from(REGULAR_END_MINUTE - REGULAR_START_MINUTE);
            let x = f64::from(minute.saturating_sub(REGULAR_START_MINUTE)) / span - 0.5;
            self.base_volume * (0.6 + 3.2 * x * x)
        } else {
            self.base_volume * EXTENDED_VOLUME_FACTOR
        };
        let volume = (mean * self.rng.random_range(0.2..1.8)) as u64 + 1;
        GenBar {
            date: self.date,
            minute,
            open,
            high,
            low,
            close,
            volume,
        }
    }
}

impl Iterator for SymbolBars {
    type Item = GenBar;

    fn next(&mut self) -> Option<GenBar> {
        loop {
            while self.minute < self.day_end_minute {
                let minute = self.minute;
                self.minute += 1;
                let regular = (REGULAR_START_MINUTE..self.regular_end_minute).contains(&minute);
                let p = if regular {
                    BAR_PROBABILITY_REGULAR
                } else {
                    BAR_PROBABILITY_EXTENDED
                };
                if self.rng.random_bool(p) {
                    let mut bar = self.bar_at(minute, regular);
                    bar.minute += u32::from(self.end_stamps);
                    return Some(bar);
                }
            }
            if !self.start_next_day() {
                return None;
            }
        }
    }
}

/// A per-symbol seed from the spec's seed and the symbol name (FNV-1a: stable across builds,
/// unlike the std hasher).
fn symbol_seed(seed: u64, symbol: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in symbol.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// About N(0, 1): the Irwin–Hall sum of four uniforms, rescaled (no libm calls, so portable).
fn normal(rng: &mut StdRng) -> f64 {
    let sum: f64 = (0..4).map(|_| rng.random::<f64>()).sum();
    (sum - 2.0) * 3.0_f64.sqrt()
}

/// `ticks * factor`, rounded, at least [`MIN_PRICE_TICKS`].
fn scale(ticks: u64, factor: f64) -> u64 {
    ((ticks as f64 * factor).round() as u64).max(MIN_PRICE_TICKS)
}

/// `|ticks * fraction|`, rounded.
fn scale_abs(ticks: u64, fraction: f64) -> u64 {
    (ticks as f64 * fraction.abs()).round() as u64
}

/// Writes a price in ticks as FirstRate does: up to 4 decimals, trailing zeros dropped
/// (`9911` → `0.9911`, `1_500_000` → `150`, `42` → `0.0042`).
pub(crate) fn write_price(out: &mut Vec<u8>, ticks: u64) {
    write_uint(out, ticks / TICKS_PER_UNIT);
    let frac = ticks % TICKS_PER_UNIT;
    let digits = [frac / 1000, frac / 100 % 10, frac / 10 % 10, frac % 10].map(|d| b'0' + d as u8);
    let kept = digits
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |last| last + 1);
    if kept > 0 {
        out.push(b'.');
        out.extend_from_slice(&digits[..kept]);
    }
}

pub(crate) fn write_uint(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

pub(crate) fn write_two_digits(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Appends one bar as a FirstRate line (`2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n`).
pub fn format_bar(out: &mut Vec<u8>, bar: &GenBar) {
    let year = bar.date.year();
    // Years the calendar generates are 4-digit; pad like chrono's %Y would.
    if (0..10_000).contains(&year) {
        write_two_digits(out, (year / 100) as u32);
        write_two_digits(out, (year % 100) as u32);
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
    out.push(b'-');
    write_two_digits(out, bar.date.month());
    out.push(b'-');
    write_two_digits(out, bar.date.day());
    out.push(b' ');
    write_two_digits(out, bar.minute / 60);
    out.push(b':');
    write_two_digits(out, bar.minute % 60);
    out.extend_from_slice(b":00,");
    for ticks in [bar.open, bar.high, bar.low, bar.close] {
        write_price(out, ticks);
        out.push(b',');
    }
    write_uint(out, bar.volume);
    out.push(b'\n');
}

/// Writes the file of one symbol to `out`; returns the number of rows. `out` should be buffered.
pub fn write_symbol<W: Write>(spec: &GenSpec, symbol: &str, out: W) -> io::Result<u64> {
    write_symbol_variant(spec, Variant::default(), symbol, out)
}

/// [`write_symbol`] of a [`Variant`] (end stamps; decimal volumes do not apply to FirstRate).
pub fn write_symbol_variant<W: Write>(
    spec: &GenSpec,
    variant: Variant,
    symbol: &str,
    mut out: W,
) -> io::Result<u64> {
    let mut line = Vec::with_capacity(128);
    let mut rows = 0;
    for bar in SymbolBars::new(spec, symbol).end_stamped(variant.end_stamps) {
        line.clear();
        format_bar(&mut line, &bar);
        out.write_all(&line)?;
        rows += 1;
    }
    out.flush()?;
    Ok(rows)
}

/// Writes one file per symbol into `dir` (created if missing), each first as `NAME.part`,
/// synced, then renamed, so a watcher only ever sees complete files. Uses every core; the files
/// do not depend on how many. Returns (path, rows) in the order of `spec.symbols`.
pub fn write_all(spec: &GenSpec, dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    write_each_symbol(spec, dir, file_name, &|spec, symbol, out| {
        write_symbol(spec, symbol, out)
    })
}

/// How one symbol's file is named and written (see [`write_each_symbol`]).
pub(crate) type NameFn = fn(&str) -> String;
pub(crate) type WriteFn<'a> =
    &'a (dyn Fn(&GenSpec, &str, &mut dyn Write) -> io::Result<u64> + Sync);

/// [`write_all`] for any one-file-per-symbol layout: `name` names a symbol's file, `write`
/// writes it.
pub(crate) fn write_each_symbol(
    spec: &GenSpec,
    dir: &Path,
    name: NameFn,
    write: WriteFn<'_>,
) -> io::Result<Vec<(PathBuf, u64)>> {
    let symbols = spec
        .symbols
        .iter()
        .map(|s| {
            Symbol::new(s).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{s:?} is not a valid symbol (letters, digits, '.', '-')"),
                )
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    fs::create_dir_all(dir)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(symbols.len())
        .max(1);
    let next = AtomicUsize::new(0);
    // Each worker takes the next symbol until none is left and returns (index, result) pairs.
    let mut done: Vec<(usize, io::Result<(PathBuf, u64)>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(symbol) = symbols.get(i) else { break };
                        mine.push((i, write_one(spec, symbol.as_str(), dir, name, write)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if done.len() != symbols.len() {
        return Err(io::Error::other("a generator thread panicked"));
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

fn write_one(
    spec: &GenSpec,
    symbol: &str,
    dir: &Path,
    name: NameFn,
    write: WriteFn<'_>,
) -> io::Result<(PathBuf, u64)> {
    write_file(dir, &name(symbol), |out| write(spec, symbol, out))
}

/// Writes the file `name` in `dir` through `write` (which returns the rows written): first as
/// `name.part`, synced, then renamed. Returns (path, rows).
pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<u64>,
) -> io::Result<(PathBuf, u64)> {
    let path = dir.join(name);
    let part = dir.join(format!("{name}.part"));
    let file = File::create(&part)?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    let rows = write(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&part, &path)?;
    Ok((path, rows))
}

/// `SYM000`, `SYM001`, ... (at least 3 digits, more when `n` needs them).
pub fn numbered_symbols(n: usize) -> Vec<String> {
    let width = n.saturating_sub(1).to_string().len().max(3);
    (0..n).map(|i| format!("SYM{i:0width$}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn spec(seed: u64) -> GenSpec {
        GenSpec {
            symbols: vec!["AAPL".into(), "BRK.B".into()],
            // Both 2024 DST changes and month ends inside.
            start: NaiveDate::from_ymd_opt(2024, 2, 26).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 3, 15).unwrap(),
            seed,
        }
    }

    fn file_bytes(spec: &GenSpec, symbol: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_symbol(spec, symbol, &mut out).unwrap();
        out
    }

    /// Reads the file's text back as the vendor format means it (plain parsing, independent of
    /// the generator's formatting code). The product's own reader is exercised on generated files
    /// by the ingest integration tests, which compare every stored row with the file.
    #[test]
    fn generated_file_reads_back_as_meant() {
        let spec = spec(7);
        let mut out = Vec::new();
        let rows = write_symbol(&spec, "AAPL", &mut out).unwrap();
        assert!(rows > 5_000, "{rows} rows");
        let meant: Vec<GenBar> = SymbolBars::new(&spec, "AAPL").collect();
        assert_eq!(meant.len() as u64, rows);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with('\n'));
        let mut n = 0;
        for (line, want) in text.lines().zip(&meant) {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 6, "{line}");
            let local = NaiveDateTime::parse_from_str(fields[0], "%Y-%m-%d %H:%M:%S").unwrap();
            assert_eq!(local, NaiveDateTime::new(want.date, want.time()));
            let price = |i: usize| fields[i].parse::<f64>().unwrap();
            assert_eq!(price(1), ticks_to_price(want.open));
            assert_eq!(price(2), ticks_to_price(want.high));
            assert_eq!(price(3), ticks_to_price(want.low));
            assert_eq!(price(4), ticks_to_price(want.close));
            assert_eq!(fields[5].parse::<u64>().unwrap(), want.volume);
            n += 1;
        }
        assert_eq!(n, rows);
        // Strictly increasing times: the product would reject a duplicate or out-of-order bar.
        assert!(
            meant
                .windows(2)
                .all(|w| (w[0].date, w[0].minute) < (w[1].date, w[1].minute))
        );
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        assert_eq!(file_bytes(&spec(1), "AAPL"), file_bytes(&spec(1), "AAPL"));
        assert_ne!(file_bytes(&spec(1), "AAPL"), file_bytes(&spec(2), "AAPL"));
        assert_ne!(file_bytes(&spec(1), "AAPL"), file_bytes(&spec(1), "MSFT"));
    }

    #[test]
    fn trading_days_and_session_hours_only_sparser_outside_regular_hours() {
        let bars: Vec<GenBar> = SymbolBars::new(&spec(3), "AAPL").collect();
        let (mut regular, mut extended) = (0usize, 0usize);
        for b in &bars {
            assert!(calendar::is_trading_day(b.date), "{}", b.date);
            assert!((SESSION_START_MINUTE..SESSION_END_MINUTE).contains(&b.minute));
            assert!(b.low <= b.open.min(b.close) && b.open.max(b.close) <= b.high);
            assert!(b.low >= MIN_PRICE_TICKS);
            if (REGULAR_START_MINUTE..REGULAR_END_MINUTE).contains(&b.minute) {
                regular += 1;
            } else {
                extended += 1;
            }
        }
        let days = bars
            .iter()
            .map(|b| b.date)
            .collect::<std::collections::HashSet<_>>();
        // Per minute: 390 regular minutes a day, 570 extended ones.
        let regular_share = regular as f64 / (390 * days.len()) as f64;
        let extended_share = extended as f64 / (570 * days.len()) as f64;
        assert!(
            regular_share > 0.9 && extended_share < 0.5,
            "{regular_share} {extended_share}"
        );
        assert!(extended > 0);
    }

    #[test]
    fn prices_print_with_at_most_four_decimals() {
        let mut out = Vec::new();
        for (ticks, text) in [
            (9911, "0.9911"),
            (1_500_000, "150"),
            (1_505_000, "150.5"),
            (42, "0.0042"),
            (10_001, "1.0001"),
        ] {
            out.clear();
            write_price(&mut out, ticks);
            assert_eq!(std::str::from_utf8(&out).unwrap(), text);
            assert_eq!(text.parse::<f64>().unwrap(), ticks_to_price(ticks));
        }
        out.clear();
        let bar = GenBar {
            date: NaiveDate::from_ymd_opt(2005, 1, 3).unwrap(),
            minute: 8 * 60,
            open: 9911,
            high: 9911,
            low: 9839,
            close: 9839,
            volume: 19209,
        };
        format_bar(&mut out, &bar);
        assert_eq!(
            out,
            b"2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n"
        );
    }

    #[test]
    fn write_all_leaves_complete_named_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec(5);
        spec.end = NaiveDate::from_ymd_opt(2024, 2, 28).unwrap();
        spec.symbols.push("msft".into());
        let written = write_all(&spec, dir.path()).unwrap();
        assert_eq!(written.len(), 3);
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "AAPL_full_1min_adjsplit.txt",
                "BRK.B_full_1min_adjsplit.txt",
                "MSFT_full_1min_adjsplit.txt"
            ]
        );
        for ((path, rows), symbol) in written.iter().zip(["AAPL", "BRK.B", "MSFT"]) {
            assert_eq!(path, &dir.path().join(file_name(symbol)));
            assert_eq!(fs::read(path).unwrap(), file_bytes(&spec, symbol));
            assert!(*rows > 0);
        }
        let bad = GenSpec {
            symbols: vec!["A B".into()],
            ..spec
        };
        assert!(write_all(&bad, dir.path()).is_err());
    }

    #[test]
    fn numbered_symbol_names() {
        assert_eq!(numbered_symbols(2), ["SYM000", "SYM001"]);
        assert_eq!(numbered_symbols(1001).last().unwrap(), "SYM1000");
    }
}
