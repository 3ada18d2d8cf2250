//! Exchange-local days as UTC instants (midnight, open, close) and which part of the day a bar
//! falls in, cached so that bars in time order cost no time-zone arithmetic.

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::calendar;
use crate::exchange_time::{earliest_at_or_after, local_date, start_of_day};

/// The part of an exchange-local day a bar opens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Segment {
    /// A trading day, before the regular open (pre-market).
    Pre,
    /// A trading day, in the regular session `[open, close)`.
    Regular,
    /// A trading day, at or after the close (post-market; from 13:00 on half days).
    Post,
    /// A day that does not trade (weekend, holiday, special closure).
    Closed,
}

/// One exchange-local day, with its edges as UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Day {
    /// The exchange-local date.
    pub date: NaiveDate,
    /// First millisecond of the day (local midnight).
    pub start_ms: i64,
    /// First millisecond of the next day.
    pub end_ms: i64,
    /// 09:30 local, also on days that do not trade (the anchor of intraday bins).
    pub open_ms: i64,
    /// The regular close (16:00, or 13:00 on half days); None when the day does not trade.
    pub close_ms: Option<i64>,
}

impl Day {
    /// The facts of `date` in `tz`.
    pub fn of(tz: Tz, date: NaiveDate) -> Self {
        let at = |time| earliest_at_or_after(tz, date.and_time(time)).timestamp_millis();
        let start_ms = start_of_day(tz, date).timestamp_millis();
        let end_ms = match date.succ_opt() {
            Some(next) => start_of_day(tz, next).timestamp_millis(),
            None => i64::MAX,
        };
        let session = calendar::session_bounds(date);
        Self {
            date,
            start_ms,
            end_ms,
            open_ms: at(session.map_or(calendar::REGULAR_OPEN, |(open, _)| open)),
            close_ms: session.map(|(_, close)| at(close)),
        }
    }

    /// Whether the instant `ms` lies in this day.
    pub fn contains(&self, ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&ms)
    }

    /// The part of this day a bar opening at `ms` (inside this day) belongs to.
    pub(crate) fn segment(&self, ms: i64) -> Segment {
        match self.close_ms {
            None => Segment::Closed,
            Some(_) if ms < self.open_ms => Segment::Pre,
            Some(close) if ms < close => Segment::Regular,
            Some(_) => Segment::Post,
        }
    }
}

/// The day of the last bar seen; a bar on the same day costs two comparisons.
#[derive(Debug, Clone)]
pub(crate) struct DayCache {
    tz: Tz,
    current: Option<Day>,
}

impl DayCache {
    pub fn new(tz: Tz) -> Self {
        Self { tz, current: None }
    }

    /// The exchange-local day containing the instant `ms`.
    pub(crate) fn day_of(&mut self, ms: i64) -> Day {
        match self.current {
            Some(day) if day.contains(ms) => day,
            _ => {
                let day = Day::of(self.tz, local_date(self.tz, ms));
                self.current = Some(day);
                day
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use chrono_tz::America::New_York;

    use crate::fetch::ny;

    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn segments_of_a_full_day_a_half_day_and_a_holiday() {
        let mut days = DayCache::new(New_York);
        let seg = |days: &mut DayCache, ms| days.day_of(ms).segment(ms);
        assert_eq!(seg(&mut days, ny(2024, 11, 27, 9, 29)), Segment::Pre);
        assert_eq!(seg(&mut days, ny(2024, 11, 27, 9, 30)), Segment::Regular);
        assert_eq!(seg(&mut days, ny(2024, 11, 27, 15, 59)), Segment::Regular);
        assert_eq!(seg(&mut days, ny(2024, 11, 27, 16, 0)), Segment::Post);
        assert_eq!(seg(&mut days, ny(2024, 11, 28, 10, 0)), Segment::Closed);
        assert_eq!(seg(&mut days, ny(2024, 11, 29, 12, 59)), Segment::Regular);
        assert_eq!(seg(&mut days, ny(2024, 11, 29, 13, 0)), Segment::Post);
        assert_eq!(seg(&mut days, ny(2024, 11, 30, 10, 0)), Segment::Closed);
    }

    #[test]
    fn day_edges_follow_daylight_saving() {
        // Friday before spring forward: EST, open 14:30Z.
        let fri = Day::of(New_York, NaiveDate::from_ymd_opt(2024, 3, 8).unwrap());
        assert_eq!(fri.open_ms, utc("2024-03-08T14:30:00Z"));
        assert_eq!(fri.close_ms, Some(utc("2024-03-08T21:00:00Z")));
        // Monday after: EDT, open 13:30Z.
        let mon = Day::of(New_York, NaiveDate::from_ymd_opt(2024, 3, 11).unwrap());
        assert_eq!(mon.open_ms, utc("2024-03-11T13:30:00Z"));
        // The spring-forward Sunday is 23 hours long, the fall-back Sunday 25.
        let spring = Day::of(New_York, NaiveDate::from_ymd_opt(2024, 3, 10).unwrap());
        assert_eq!(spring.end_ms - spring.start_ms, 23 * 3_600_000);
        assert_eq!(spring.close_ms, None);
        let fall = Day::of(New_York, NaiveDate::from_ymd_opt(2024, 11, 3).unwrap());
        assert_eq!(fall.end_ms - fall.start_ms, 25 * 3_600_000);
    }

    #[test]
    fn the_cache_moves_with_the_bars() {
        let mut days = DayCache::new(New_York);
        let a = days.day_of(ny(2024, 3, 8, 23, 59));
        let b = days.day_of(ny(2024, 3, 9, 0, 0));
        assert_eq!(a.end_ms, b.start_ms);
        assert_eq!(b.date, NaiveDate::from_ymd_opt(2024, 3, 9).unwrap());
        // Going back in time works too (a new bucket starts).
        assert_eq!(days.day_of(ny(2024, 3, 8, 12, 0)), a);
    }
}
