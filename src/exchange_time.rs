//! Exchange-local wall times and dates as UTC instants: where a local day starts, the first
//! instant at or after a wall time (DST gaps included), the local date of an instant. The one
//! place that does this arithmetic, for the loader's replaced ranges and for `fetch`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The first instant of an exchange-local day. Where midnight itself falls in a DST gap (not in
/// New York, but in some zones) the day starts when the gap ends.
pub(crate) fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    earliest_at_or_after(tz, midnight)
}

/// The earliest instant whose local wall time in `tz` is `wall`, or, when `wall` falls in a DST
/// gap, the first instant after the gap (the transition itself).
pub(crate) fn earliest_at_or_after(tz: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    use chrono::Offset;
    if let Some(t) = tz.from_local_datetime(&wall).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: the transition lies between `wall` read with the offset after it and `wall`
    // read with the offset before it. Binary-search the first millisecond whose wall time is at
    // or past `wall`.
    let window = TimeDelta::days(2);
    let offset_before = tz.offset_from_utc_datetime(&(wall - window)).fix();
    let offset_after = tz.offset_from_utc_datetime(&(wall + window)).fix();
    let as_utc = |offset: chrono::FixedOffset| {
        (wall - TimeDelta::seconds(i64::from(offset.local_minus_utc()))).and_utc()
    };
    let (mut lo, mut hi) = (
        as_utc(offset_after).timestamp_millis(),
        as_utc(offset_before).timestamp_millis(),
    );
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    let reached = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .is_some_and(|t| t.with_timezone(&tz).naive_local() >= wall)
    };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if reached(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    DateTime::from_timestamp_millis(lo).unwrap_or_else(|| wall.and_utc())
}

/// The exchange-local date of a UTC millisecond instant (out-of-range instants clamp to the
/// representable extremes).
pub fn local_date(tz: Tz, ms: i64) -> NaiveDate {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.with_timezone(&tz).date_naive(),
        None if ms < 0 => NaiveDate::MIN,
        None => NaiveDate::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn start_of_day_in_a_zone_with_a_midnight_gap() {
        // Santiago springs forward at midnight: 2023-09-03 starts at 01:00 local (04:00Z).
        let tz: Tz = "America/Santiago".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2023, 9, 3).unwrap();
        assert_eq!(start_of_day(tz, d), utc("2023-09-03T04:00:00Z"));
    }

    #[test]
    fn new_york_days_start_at_local_midnight_in_both_offsets() {
        let tz = chrono_tz::America::New_York;
        let winter = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let summer = NaiveDate::from_ymd_opt(2024, 7, 2).unwrap();
        assert_eq!(start_of_day(tz, winter), utc("2024-01-02T05:00:00Z"));
        assert_eq!(start_of_day(tz, summer), utc("2024-07-02T04:00:00Z"));
        assert_eq!(
            local_date(tz, utc("2024-07-02T03:59:59Z").timestamp_millis()),
            summer.pred_opt().unwrap()
        );
        assert_eq!(
            local_date(tz, utc("2024-07-02T04:00:00Z").timestamp_millis()),
            summer
        );
    }
}
