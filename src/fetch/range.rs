//! Time arguments (`--from`, `--to`) parsed into an inclusive UTC range, and the month buckets
//! that range touches.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::exchange_time::{local_date, start_of_day};
use crate::model::Bucket;

/// Which end of the range an argument gives; a bare date means the start of that day for the
/// lower end and the end of that day (inclusive) for the upper end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    /// `--from`: the earliest instant included.
    From,
    /// `--to`: the latest instant included.
    To,
}

impl RangeEnd {
    /// The argument's name, as the user typed it.
    pub fn arg(self) -> &'static str {
        match self {
            Self::From => "--from",
            Self::To => "--to",
        }
    }
}

/// A command-line value that cannot be used, naming the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arg} `{value}`: {reason}")]
pub struct ArgError {
    /// The argument, e.g. `--from`.
    pub arg: &'static str,
    /// What the user gave.
    pub value: String,
    /// Why it is not usable and what would be.
    pub reason: String,
}

/// Years accepted in time arguments (four digits, like the bucket names).
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// Local date-time layouts accepted, tried in order (`%.f` takes optional fractional seconds).
const LOCAL_LAYOUTS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
];

/// Parses a `--from`/`--to` value:
/// - `YYYY-MM-DD`: the start of that exchange-local day (`--from`) or its last millisecond
///   (`--to`), so a date as `--to` includes the whole day;
/// - `YYYY-MM-DD HH:MM[:SS[.fff]]` (or with `T`): exchange-local wall time in `tz`. A time the
///   clocks skip (spring forward) is an error; a time that occurs twice (fall back) resolves to
///   the wider range: its first occurrence for `--from`, its second for `--to`;
/// - RFC 3339 with an offset (`2024-03-08T14:30:00Z`, `2024-03-08T09:30:00-05:00`).
pub fn parse_time(end: RangeEnd, text: &str, tz: Tz) -> Result<DateTime<Utc>, ArgError> {
    let fail = |reason: String| ArgError {
        arg: end.arg(),
        value: text.to_owned(),
        reason,
    };
    let s = text.trim();
    let expected = || {
        format!(
            "not a date or time; expected YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\" in exchange time \
             ({tz}), or RFC 3339 with an offset (e.g. 2024-03-08T14:30:00Z)"
        )
    };
    let check_year = |year: i32| {
        if YEARS.contains(&year) {
            Ok(())
        } else {
            Err(fail(format!("year {year} is out of range (0001 to 9999)")))
        }
    };

    if s.len() == 10 {
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| fail(expected()))?;
        check_year(chrono::Datelike::year(&date))?;
        return Ok(match end {
            RangeEnd::From => start_of_day(tz, date),
            RangeEnd::To => match date.succ_opt() {
                Some(next) => start_of_day(tz, next) - TimeDelta::milliseconds(1),
                None => return Err(fail("no day follows it".into())),
            },
        });
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(s) {
        check_year(chrono::Datelike::year(&instant.naive_utc()))?;
        return Ok(instant.with_timezone(&Utc));
    }
    let naive = LOCAL_LAYOUTS
        .iter()
        .find_map(|layout| NaiveDateTime::parse_from_str(s, layout).ok())
        .ok_or_else(|| fail(expected()))?;
    check_year(chrono::Datelike::year(&naive))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Ok(match end {
            RangeEnd::From => first,
            RangeEnd::To => second,
        }
        .with_timezone(&Utc)),
        LocalResult::None => Err(fail(format!(
            "this local time does not exist in {tz} (the clocks skip it at the daylight-saving \
             change); give a time outside the gap or an RFC 3339 time with an offset"
        ))),
    }
}

/// An inclusive range of instants, `from <= to`, in UTC milliseconds (CQL `timestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    /// First millisecond included.
    pub from_ms: i64,
    /// Last millisecond included.
    pub to_ms: i64,
}

impl TimeRange {
    /// The range from two instants, both included. Sub-millisecond parts round inward (a bar at
    /// 09:30:00.000 is not after `--from 09:30:00.0005`). None when `from` is after `to`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<Self> {
        let from_ms = from.timestamp_millis()
            + i64::from(!from.timestamp_subsec_nanos().is_multiple_of(1_000_000));
        let to_ms = to.timestamp_millis();
        (from <= to && from_ms <= to_ms).then_some(Self { from_ms, to_ms })
    }

    /// Every month bucket the range touches, in order: the exchange-local months (in `tz`) of
    /// `from` through `to`.
    pub fn buckets(&self, tz: Tz) -> impl Iterator<Item = Bucket> + Send + use<> {
        let first = Bucket::of_local_date(local_date(tz, self.from_ms));
        let last = Bucket::of_local_date(local_date(tz, self.to_ms));
        std::iter::successors(Some(first), move |b| (*b < last).then(|| b.next()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn parse(end: RangeEnd, s: &str) -> Result<DateTime<Utc>, ArgError> {
        parse_time(end, s, New_York)
    }

    #[test]
    fn bare_dates_cover_the_whole_exchange_day() {
        assert_eq!(
            parse(RangeEnd::From, "2024-01-02").unwrap(),
            utc("2024-01-02T05:00:00Z")
        );
        assert_eq!(
            parse(RangeEnd::To, "2024-01-02").unwrap(),
            utc("2024-01-03T04:59:59.999Z")
        );
        // Summer: UTC-4.
        assert_eq!(
            parse(RangeEnd::To, "2024-07-31").unwrap(),
            utc("2024-08-01T03:59:59.999Z")
        );
        // The spring-forward day is 23 hours long.
        let from = parse(RangeEnd::From, "2024-03-10").unwrap();
        let to = parse(RangeEnd::To, "2024-03-10").unwrap();
        assert_eq!(to - from, TimeDelta::hours(23) - TimeDelta::milliseconds(1));
    }

    #[test]
    fn local_times_are_exchange_time() {
        assert_eq!(
            parse(RangeEnd::From, "2005-01-03 08:00").unwrap(),
            utc("2005-01-03T13:00:00Z")
        );
        assert_eq!(
            parse(RangeEnd::From, "2005-01-03 08:00:30").unwrap(),
            utc("2005-01-03T13:00:30Z")
        );
        assert_eq!(
            parse(RangeEnd::From, "2005-07-01T09:30:00").unwrap(),
            utc("2005-07-01T13:30:00Z")
        );
        assert_eq!(
            parse(RangeEnd::To, " 2005-07-01 09:30:00.250 ").unwrap(),
            utc("2005-07-01T13:30:00.250Z")
        );
    }

    #[test]
    fn rfc3339_with_offset() {
        assert_eq!(
            parse(RangeEnd::From, "2024-03-08T14:30:00Z").unwrap(),
            utc("2024-03-08T14:30:00Z")
        );
        assert_eq!(
            parse(RangeEnd::To, "2024-03-08T09:30:00-05:00").unwrap(),
            utc("2024-03-08T14:30:00Z")
        );
    }

    #[test]
    fn dst_gap_is_an_error_and_overlap_widens_the_range() {
        let e = parse(RangeEnd::From, "2024-03-10 02:30").unwrap_err();
        assert_eq!(e.arg, "--from");
        assert!(e.reason.contains("does not exist"), "{e}");
        // 01:30 happens twice on 2024-11-03: EDT (05:30Z) then EST (06:30Z).
        assert_eq!(
            parse(RangeEnd::From, "2024-11-03 01:30").unwrap(),
            utc("2024-11-03T05:30:00Z")
        );
        assert_eq!(
            parse(RangeEnd::To, "2024-11-03 01:30").unwrap(),
            utc("2024-11-03T06:30:00Z")
        );
    }

    #[test]
    fn bad_values_name_the_argument() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-02-30",
            "2024-1-5",
            "2024-01-01 25:00",
            "2024-01-01T10:00:00+25:00",
            "12024-01-01",
        ] {
            let e = parse(RangeEnd::To, bad).unwrap_err();
            assert_eq!(e.arg, "--to", "{bad}");
            assert!(e.to_string().starts_with("--to `"), "{e}");
        }
    }

    #[test]
    fn range_order_and_rounding() {
        let a = utc("2024-01-02T14:30:00Z");
        assert!(TimeRange::new(a, a).is_some());
        assert!(TimeRange::new(a + TimeDelta::milliseconds(1), a).is_none());
        // A sub-millisecond from rounds up, so it excludes the millisecond it is inside.
        let r = TimeRange::new(a + TimeDelta::microseconds(500), a + TimeDelta::seconds(1));
        assert_eq!(r.unwrap().from_ms, a.timestamp_millis() + 1);
        assert!(
            TimeRange::new(
                a + TimeDelta::microseconds(500),
                a + TimeDelta::microseconds(900)
            )
            .is_none()
        );
    }

    #[test]
    fn buckets_are_exchange_local_months() {
        let range = TimeRange::new(
            parse(RangeEnd::From, "2023-11-30").unwrap(),
            parse(RangeEnd::To, "2024-02-01").unwrap(),
        )
        .unwrap();
        let names: Vec<String> = range.buckets(New_York).map(|b| b.to_string()).collect();
        assert_eq!(names, ["2023-11", "2023-12", "2024-01", "2024-02"]);
        // 2024-01-01T03:00Z is still Dec 31 in New York.
        let r = TimeRange::new(utc("2024-01-01T03:00:00Z"), utc("2024-01-01T04:59:59Z")).unwrap();
        let names: Vec<String> = r.buckets(New_York).map(|b| b.to_string()).collect();
        assert_eq!(names, ["2023-12"]);
        let r = TimeRange::new(utc("2024-01-01T03:00:00Z"), utc("2024-01-01T05:00:00Z")).unwrap();
        assert_eq!(r.buckets(New_York).count(), 2);
    }
}
