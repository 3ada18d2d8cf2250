//! One exchange-local day's expected minutes and what its bar times say about them: present,
//! missing, the longest gap, and whether the day's summary alone already answers.

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;

use crate::calendar;
use crate::exchange_time::{earliest_at_or_after, start_of_day};
use crate::fetch::SessionFilter;

const MINUTE: i64 = 60_000;

/// Which minutes of a trading day are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CoverageSession {
    /// `[09:30, 16:00)`, `[09:30, 13:00)` on half days: 390 or 210 minutes.
    #[default]
    Regular,
    /// `[04:00, 20:00)`, `[04:00, 17:00)` on half days: 960 or 780 minutes (the regular
    /// session included).
    Extended,
    /// Every minute of the exchange-local day (1,440; 1,380 or 1,500 on DST changes).
    All,
}

impl CoverageSession {
    /// The session of a command-line name: the names `fetch --session` takes (`regular`,
    /// `extended`, `all`).
    pub fn from_name(name: &str) -> Option<Self> {
        SessionFilter::from_name(name).map(Self::from)
    }
}

impl From<SessionFilter> for CoverageSession {
    /// The minutes expected of data fetched with `filter` (`extended` fetches the pre- and
    /// post-market bars; the coverage of an extended day counts the regular session too).
    fn from(filter: SessionFilter) -> Self {
        match filter {
            SessionFilter::Regular => Self::Regular,
            SessionFilter::Extended => Self::Extended,
            SessionFilter::All => Self::All,
        }
    }
}

/// One exchange-local date with its edges as UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DayFacts {
    pub date: NaiveDate,
    pub trading: bool,
    pub half_day: bool,
    /// The expected window `[lo, hi)` (empty when the day does not trade).
    pub lo: i64,
    pub hi: i64,
    /// The regular close and 16:00 (the afternoon a half day must not have bars in).
    pub close: i64,
    pub full_close: i64,
    /// The exchange-local day itself: `[start, end)`.
    pub start: i64,
    pub end: i64,
}

impl DayFacts {
    /// The facts of `date` in `tz` for `session`.
    pub fn of(tz: Tz, date: NaiveDate, session: CoverageSession) -> Self {
        let at = |h, m| {
            let t = NaiveTime::from_hms_opt(h, m, 0).expect("a valid wall time");
            earliest_at_or_after(tz, date.and_time(t)).timestamp_millis()
        };
        let bounds = calendar::session_bounds(date);
        let half_day = calendar::early_close(date).is_some();
        let start = start_of_day(tz, date).timestamp_millis();
        let end = date
            .succ_opt()
            .map_or(i64::MAX, |n| start_of_day(tz, n).timestamp_millis());
        let close = if half_day { at(13, 0) } else { at(16, 0) };
        let (lo, hi) = match (bounds, session) {
            (None, _) => (0, 0),
            (Some(_), CoverageSession::Regular) => (at(9, 30), close),
            (Some(_), CoverageSession::Extended) => {
                (at(4, 0), at(if half_day { 17 } else { 20 }, 0))
            }
            (Some(_), CoverageSession::All) => (start, end),
        };
        Self {
            date,
            trading: bounds.is_some(),
            half_day,
            lo,
            hi,
            close,
            full_close: at(16, 0),
            start,
            end,
        }
    }

    /// Minutes expected: the window's length (0 when the day does not trade).
    pub fn expected(&self) -> u32 {
        ((self.hi - self.lo) / MINUTE) as u32
    }
}

/// What one day's bar times say: minutes present in the window, missing, the longest run of
/// missing minutes, and bars of a half day in its closed afternoon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TimeStats {
    pub present: u32,
    pub missing: u32,
    pub longest_gap: u32,
    pub after_early_close: u32,
}

/// The stats of a day whose bar times (ascending) are `times`.
pub(crate) fn stats_from_times(facts: &DayFacts, times: &[i64]) -> TimeStats {
    let slots = i64::from(facts.expected());
    let mut present = 0u32;
    let mut longest = 0i64;
    let mut previous: Option<i64> = None;
    for &t in times {
        if t < facts.lo || t >= facts.hi {
            continue;
        }
        let slot = (t - facts.lo) / MINUTE;
        if previous == Some(slot) {
            continue;
        }
        let gap = slot - previous.map_or(0, |p| p + 1);
        longest = longest.max(gap);
        previous = Some(slot);
        present += 1;
    }
    longest = longest.max(slots - previous.map_or(0, |p| p + 1));
    let after_early_close = if facts.half_day {
        let lo = times.partition_point(|&t| t < facts.close);
        let hi = times.partition_point(|&t| t < facts.full_close);
        (hi - lo) as u32
    } else {
        0
    };
    TimeStats {
        present,
        missing: facts.expected() - present,
        longest_gap: longest as u32,
        after_early_close,
    }
}

/// The stats from a day's summary (bar count, first and last instants) when that is enough:
/// no bar in the window, or exactly the expected count from the first to the last minute of
/// the window (one-minute bars at whole minutes, as loaded); on a half day, also no bar between
/// the early close and 16:00 possible. None: the times are needed.
pub(crate) fn stats_from_summary(
    facts: &DayFacts,
    bars: u32,
    first: i64,
    last: i64,
) -> Option<TimeStats> {
    let expected = facts.expected();
    let afternoon_possible = facts.half_day && last >= facts.close && first < facts.full_close;
    if afternoon_possible {
        return None;
    }
    if bars == 0 || last < facts.lo || first >= facts.hi {
        return Some(TimeStats {
            present: 0,
            missing: expected,
            longest_gap: expected,
            after_early_close: 0,
        });
    }
    let full = bars == expected && first == facts.lo && last == facts.hi - MINUTE;
    full.then_some(TimeStats {
        present: expected,
        ..TimeStats::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn expected_minutes_of_full_half_and_closed_days() {
        let f = |d, s| DayFacts::of(New_York, d, s).expected();
        assert_eq!(f(date(2024, 12, 2), CoverageSession::Regular), 390);
        assert_eq!(f(date(2024, 11, 29), CoverageSession::Regular), 210);
        assert_eq!(f(date(2024, 12, 25), CoverageSession::Regular), 0);
        assert_eq!(f(date(2024, 12, 2), CoverageSession::Extended), 960);
        assert_eq!(f(date(2024, 11, 29), CoverageSession::Extended), 780);
        assert_eq!(f(date(2024, 3, 8), CoverageSession::All), 1440);
        assert_eq!(f(date(2024, 3, 11), CoverageSession::All), 1440);
        assert_eq!(f(date(2024, 11, 4), CoverageSession::All), 1440);
    }

    #[test]
    fn gaps_at_the_edges_and_inside_count() {
        let facts = DayFacts::of(New_York, date(2024, 12, 2), CoverageSession::Regular);
        let at = |m: i64| facts.lo + m * MINUTE;
        // Minutes 2..=9 and 20..=389 present: a gap of 2 at the start, 10 inside.
        let times: Vec<i64> = (2..10).chain(20..390).map(at).collect();
        let s = stats_from_times(&facts, &times);
        assert_eq!((s.present, s.missing, s.longest_gap), (378, 12, 10));
        let s = stats_from_times(&facts, &[at(-5), at(0), at(390)]);
        assert_eq!((s.present, s.missing, s.longest_gap), (1, 389, 389));
        assert_eq!(stats_from_times(&facts, &[]).longest_gap, 390);
    }

    #[test]
    fn the_summary_answers_full_and_empty_days_only() {
        let facts = DayFacts::of(New_York, date(2024, 12, 2), CoverageSession::Regular);
        let last = facts.hi - MINUTE;
        assert_eq!(
            stats_from_summary(&facts, 390, facts.lo, last)
                .unwrap()
                .missing,
            0
        );
        assert_eq!(stats_from_summary(&facts, 389, facts.lo, last), None);
        let pre = stats_from_summary(&facts, 10, facts.lo - 20 * MINUTE, facts.lo - MINUTE);
        assert_eq!(pre.unwrap().longest_gap, 390);
        let half = DayFacts::of(New_York, date(2024, 11, 29), CoverageSession::Regular);
        assert_eq!(stats_from_summary(&half, 211, half.lo, half.hi), None);
        let s = stats_from_times(&half, &[half.lo, half.hi, half.full_close - MINUTE]);
        assert_eq!(s.after_early_close, 2);
    }
}
