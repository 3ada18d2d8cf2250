//! Spacing: whether a unit's good bars, whose name states no interval, are coarser than one
//! minute by the spacing of their times (an Alpaca 5-minute file, a Polygon `day_aggs` file
//! renamed), judged in pass 1 in O(1) time per bar and O(1) memory.
//!
//! The rule, over the good bars in file order (either time direction):
//! - **daily**: every bar sits at 00:00 exchange-local, over at least [`MIN_MIDNIGHT_BARS`]
//!   bars (a one-minute file of US equities has no bar at midnight at all; one of a 24-hour
//!   market has at most one per day among 1440 minutes);
//! - **intraday grid** `g` (5, 15, 30 or 60 minutes): every bar sits a whole number of `g` from
//!   the first bar (whole minutes, any phase, so hourly bars at 09:30, 10:30 count), and no two
//!   consecutive bars of one symbol are closer than `g`, over at least [`MIN_GRID_GAPS`] such
//!   gaps; the grid named is the largest that fits (a gap of 20 hours or more everywhere:
//!   daily bars stamped at another time of day).
//!
//! Why the threshold cannot refuse a one-minute file, however thin: such a file has bars one
//! minute apart wherever two neighbouring minutes traded, which no grid allows; a file so thin
//! that no two of its bars are neighbours would still need all of 51 bars on one 5-minute
//! phase, a chance of 5^-50 for bars at unrelated minutes. Bars of a symbol are compared with
//! the one before them in the file only when both are of the same symbol (exact for
//! single-symbol files and for multi-symbol files sorted by symbol; a multi-symbol file sorted
//! by time measures fewer gaps, so it needs more bars, never fewer).

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::model::Symbol;
use crate::source::Interval;

/// Fewest gaps between consecutive bars of one symbol for a grid verdict (51 bars of one
/// symbol: less than one regular session of 5-minute bars).
pub(crate) const MIN_GRID_GAPS: u64 = 50;

/// Fewest bars, all at local midnight, for a daily verdict.
pub(crate) const MIN_MIDNIGHT_BARS: u64 = 5;

/// A gap at least this long between every two bars of a symbol: daily bars.
const DAILY_GAP_MILLIS: i64 = 20 * 3_600_000;

const MILLIS_PER_MINUTE: i64 = 60_000;

/// The intraday grids tried, largest first.
const GRIDS: [Interval; 4] = [
    Interval::OneHour,
    Interval::ThirtyMinutes,
    Interval::FifteenMinutes,
    Interval::FiveMinutes,
];

/// What the spacing of the bars seen so far allows.
#[derive(Debug)]
pub(crate) struct Spacing {
    /// The exchange zone (local midnight).
    tz: Tz,
    bars: u64,
    /// The first bar's instant: the phase of the grids.
    first: Option<i64>,
    /// Per grid of [`GRIDS`]: every bar so far sits a whole number of grid steps from the first.
    on_grid: [bool; 4],
    /// Every bar so far sits at local midnight.
    all_midnight: bool,
    /// The last bar's symbol (None: the delivery's) and instant.
    last: Option<(Option<Symbol>, i64)>,
    /// Gaps measured between consecutive bars of one symbol, and the shortest (millis).
    gaps: u64,
    shortest_gap: i64,
}

impl Spacing {
    pub(crate) fn new(tz: Tz) -> Self {
        Self {
            tz,
            bars: 0,
            first: None,
            on_grid: [true; 4],
            all_midnight: true,
            last: None,
            gaps: 0,
            shortest_gap: i64::MAX,
        }
    }

    /// Whether some coarser interval still fits every bar seen: once none does (the first two
    /// bars one minute apart in a one-minute file), observing costs one branch.
    fn open(&self) -> bool {
        self.all_midnight || self.on_grid.iter().any(|&g| g)
    }

    /// Takes one good bar: its symbol (None: the delivery's), instant and exchange-local date.
    #[inline]
    pub(crate) fn observe(
        &mut self,
        symbol: Option<&Symbol>,
        ts_millis: i64,
        local_date: NaiveDate,
    ) {
        self.bars += 1;
        if !self.open() {
            return;
        }
        let first = *self.first.get_or_insert(ts_millis);
        let offset = ts_millis - first;
        for (on, grid) in self.on_grid.iter_mut().zip(GRIDS) {
            *on &= offset.rem_euclid(grid.minutes() * MILLIS_PER_MINUTE) == 0;
        }
        if self.all_midnight {
            let midnight = self
                .tz
                .from_local_datetime(&local_date.and_time(NaiveTime::MIN))
                .earliest()
                .map(|t| t.timestamp_millis());
            self.all_midnight = midnight == Some(ts_millis);
        }
        match &mut self.last {
            Some((last_symbol, last_ts)) if last_symbol.as_ref() == symbol => {
                self.gaps += 1;
                self.shortest_gap = self.shortest_gap.min((ts_millis - *last_ts).abs());
                *last_ts = ts_millis;
            }
            _ => self.last = Some((symbol.cloned(), ts_millis)),
        }
    }

    /// The interval the bars' spacing shows, if coarser than one minute, and how it shows it.
    pub(crate) fn verdict(&self) -> Option<(Interval, String)> {
        if self.all_midnight && self.bars >= MIN_MIDNIGHT_BARS {
            let how = format!(
                "the spacing of its times: all {} bars at 00:00 exchange-local",
                self.bars
            );
            return Some((Interval::OneDay, how));
        }
        if self.gaps < MIN_GRID_GAPS {
            return None;
        }
        let hourly = self.on_grid[0];
        if hourly && self.shortest_gap >= DAILY_GAP_MILLIS {
            let how = format!(
                "the spacing of its times: all {} bars at least 20 hours apart",
                self.bars
            );
            return Some((Interval::OneDay, how));
        }
        let (_, grid) =
            self.on_grid.iter().zip(GRIDS).find(|(on, grid)| {
                **on && self.shortest_gap >= grid.minutes() * MILLIS_PER_MINUTE
            })?;
        let how = format!(
            "the spacing of its times: all {} bars on one {}-minute grid, no two bars of a \
             symbol closer than {} minutes",
            self.bars,
            grid.minutes(),
            grid.minutes()
        );
        Some((grid, how))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    const NY: Tz = chrono_tz::America::New_York;

    fn at(s: &str) -> (i64, NaiveDate) {
        let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let t = NY.from_local_datetime(&local).earliest().unwrap();
        (t.timestamp_millis(), local.date())
    }

    /// The verdict on `n` bars of one symbol, `step` minutes apart from 2024-03-04 09:30.
    fn every(step: i64, n: i64) -> Option<Interval> {
        let mut s = Spacing::new(NY);
        let (start, _) = at("2024-03-04 09:30");
        for i in 0..n {
            let ts = start + i * step * MILLIS_PER_MINUTE;
            let date = chrono::DateTime::from_timestamp_millis(ts)
                .unwrap()
                .with_timezone(&NY)
                .date_naive();
            s.observe(None, ts, date);
        }
        s.verdict().map(|(i, _)| i)
    }

    #[test]
    fn coarse_grids_are_named_and_one_minute_bars_never() {
        assert_eq!(every(5, 78), Some(Interval::FiveMinutes));
        assert_eq!(every(15, 60), Some(Interval::FifteenMinutes));
        assert_eq!(every(30, 60), Some(Interval::ThirtyMinutes));
        assert_eq!(every(60, 60), Some(Interval::OneHour));
        assert_eq!(every(24 * 60, 60), Some(Interval::OneDay));
        assert_eq!(every(1, 1000), None);
        // Too few gaps to be sure.
        assert_eq!(every(5, MIN_GRID_GAPS as i64), None);
        assert_eq!(
            every(5, MIN_GRID_GAPS as i64 + 1),
            Some(Interval::FiveMinutes)
        );
        // Ten-minute steps sit on the 5-minute grid.
        assert_eq!(every(10, 100), Some(Interval::FiveMinutes));
    }

    #[test]
    fn a_thin_one_minute_file_with_one_neighbouring_pair_passes() {
        let mut s = Spacing::new(NY);
        let (start, date) = at("2024-03-04 09:30");
        for i in 0..200 {
            s.observe(None, start + i * 5 * MILLIS_PER_MINUTE, date);
        }
        s.observe(None, start + (200 * 5 + 1) * MILLIS_PER_MINUTE, date);
        assert_eq!(s.verdict(), None);
        // Off the grid by a minute, anywhere.
        let mut s = Spacing::new(NY);
        s.observe(None, start + MILLIS_PER_MINUTE, date);
        for i in 1..200 {
            s.observe(None, start + i * 5 * MILLIS_PER_MINUTE, date);
        }
        assert_eq!(s.verdict(), None);
    }

    #[test]
    fn newest_first_bars_are_judged_alike() {
        let mut s = Spacing::new(NY);
        let (start, date) = at("2024-03-04 09:30");
        for i in (0..78).rev() {
            s.observe(None, start + i * 5 * MILLIS_PER_MINUTE, date);
        }
        assert_eq!(s.verdict().map(|v| v.0), Some(Interval::FiveMinutes));
    }

    #[test]
    fn one_bar_per_ticker_at_local_midnight_is_daily() {
        let mut s = Spacing::new(NY);
        let (midnight, date) = at("2024-03-04 00:00");
        let symbols: Vec<Symbol> = ["A", "B", "C", "D", "E"]
            .iter()
            .map(|n| Symbol::new(n).unwrap())
            .collect();
        for (i, symbol) in symbols.iter().enumerate() {
            s.observe(Some(symbol), midnight, date);
            if i == 3 {
                assert_eq!(s.verdict(), None, "four bars are not enough");
            }
        }
        let (interval, how) = s.verdict().unwrap();
        assert_eq!(interval, Interval::OneDay);
        assert!(how.contains("all 5 bars at 00:00"), "{how}");
        // One bar at 00:01 and it is not.
        let (late, _) = at("2024-03-04 00:01");
        s.observe(Some(&symbols[0]), late, date);
        assert_eq!(s.verdict(), None);
    }

    #[test]
    fn interleaved_symbols_measure_gaps_only_between_a_symbols_own_bars() {
        // Two symbols, one-minute bars, alternating: every bar on no grid.
        let (start, date) = at("2024-03-04 09:30");
        let (a, b) = (Symbol::new("A").unwrap(), Symbol::new("B").unwrap());
        let mut s = Spacing::new(NY);
        for i in 0..400 {
            let symbol = if i % 2 == 0 { &a } else { &b };
            s.observe(Some(symbol), start + (i / 2) * MILLIS_PER_MINUTE, date);
        }
        assert_eq!(s.verdict(), None);
    }
}
