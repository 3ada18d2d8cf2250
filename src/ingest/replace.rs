//! Replace, not merge: the time ranges a delivery replaces, one per month bucket from its first
//! bar's local day to its last bar's local day — months it has no row in included — deleted with
//! a range tombstone just below the delivery's write timestamp, so that readers see the old rows
//! until the new ones shadow them and never an emptied month. The day store replaces the same
//! span, by day: [`replaced_days`].

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::exchange_time::start_of_day;
use crate::model::Bucket;

/// The UTC milliseconds `[from, to)` of one bucket that a delivery replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replaced {
    pub(crate) bucket: Bucket,
    pub(crate) from_millis: i64,
    pub(crate) to_millis: i64,
}

/// Every bucket's replaced range for a delivery covering the local days `first..=last`.
pub(crate) fn replaced_ranges(tz: Tz, first: NaiveDate, last: NaiveDate) -> Vec<Replaced> {
    let day_after_last = last.succ_opt().unwrap_or(last);
    let mut out = Vec::new();
    let mut bucket = Bucket::of_local_date(first);
    let last_bucket = Bucket::of_local_date(last);
    loop {
        let from_day = bucket.first_day().max(first);
        let to_day = bucket.next().first_day().min(day_after_last);
        out.push(Replaced {
            bucket,
            from_millis: start_of_day(tz, from_day).timestamp_millis(),
            to_millis: start_of_day(tz, to_day).timestamp_millis(),
        });
        if bucket >= last_bucket {
            return out;
        }
        bucket = bucket.next();
    }
}

/// The days `[from, to]` of one bucket that a delivery replaces in the day-cell table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplacedDays {
    pub(crate) bucket: Bucket,
    pub(crate) from: NaiveDate,
    pub(crate) to: NaiveDate,
}

/// Every bucket's replaced days for a delivery covering the local days `first..=last`: the
/// same span as [`replaced_ranges`], as days.
pub(crate) fn replaced_days(first: NaiveDate, last: NaiveDate) -> Vec<ReplacedDays> {
    let mut out = Vec::new();
    let mut bucket = Bucket::of_local_date(first);
    let last_bucket = Bucket::of_local_date(last);
    loop {
        let next = bucket.next().first_day();
        out.push(ReplacedDays {
            bucket,
            from: bucket.first_day().max(first),
            to: next.pred_opt().unwrap_or(next).min(last),
        });
        if bucket >= last_bucket {
            return out;
        }
        bucket = bucket.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Midnight New York time as UTC milliseconds, written out by hand (EST = UTC-5, EDT = UTC-4).
    fn ny_midnight_ms(utc: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(utc)
            .unwrap()
            .timestamp_millis()
    }

    /// The issue-12 reproduction: bars on 01-28 and 03-01 replace all of January 28-31, the whole
    /// of February (no row in the new file), and March 1.
    #[test]
    fn every_month_between_first_and_last_day_is_replaced() {
        let tz = chrono_tz::America::New_York;
        let r = replaced_ranges(tz, day(2021, 1, 28), day(2021, 3, 1));
        let buckets: Vec<String> = r.iter().map(|x| x.bucket.to_string()).collect();
        assert_eq!(buckets, ["2021-01", "2021-02", "2021-03"]);
        assert_eq!(r[0].from_millis, ny_midnight_ms("2021-01-28T05:00:00Z"));
        assert_eq!(r[0].to_millis, ny_midnight_ms("2021-02-01T05:00:00Z"));
        assert_eq!(r[1].from_millis, ny_midnight_ms("2021-02-01T05:00:00Z"));
        assert_eq!(r[1].to_millis, ny_midnight_ms("2021-03-01T05:00:00Z"));
        assert_eq!(r[2].from_millis, ny_midnight_ms("2021-03-01T05:00:00Z"));
        assert_eq!(r[2].to_millis, ny_midnight_ms("2021-03-02T05:00:00Z"));
    }

    #[test]
    fn one_day_replaces_that_day_only_across_a_dst_change() {
        let tz = chrono_tz::America::New_York;
        // 2021-03-14 is 23 hours long in New York.
        let r = replaced_ranges(tz, day(2021, 3, 14), day(2021, 3, 14));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].from_millis, ny_midnight_ms("2021-03-14T05:00:00Z"));
        assert_eq!(r[0].to_millis, ny_midnight_ms("2021-03-15T04:00:00Z"));
    }

    /// The issue-12 span as days: the end of January, all of February, March 1.
    #[test]
    fn replaced_days_cover_every_day_from_first_to_last_by_bucket() {
        let r = replaced_days(day(2021, 1, 28), day(2021, 3, 1));
        let got: Vec<(String, NaiveDate, NaiveDate)> = r
            .iter()
            .map(|x| (x.bucket.to_string(), x.from, x.to))
            .collect();
        assert_eq!(
            got,
            [
                ("2021-01".to_owned(), day(2021, 1, 28), day(2021, 1, 31)),
                ("2021-02".to_owned(), day(2021, 2, 1), day(2021, 2, 28)),
                ("2021-03".to_owned(), day(2021, 3, 1), day(2021, 3, 1)),
            ]
        );
        let one = replaced_days(day(2021, 3, 14), day(2021, 3, 14));
        assert_eq!(
            (one.len(), one[0].from, one[0].to),
            (1, day(2021, 3, 14), day(2021, 3, 14))
        );
    }

    #[test]
    fn a_year_end_is_crossed() {
        let tz = chrono_tz::America::New_York;
        let r = replaced_ranges(tz, day(2020, 12, 31), day(2021, 1, 4));
        let buckets: Vec<String> = r.iter().map(|x| x.bucket.to_string()).collect();
        assert_eq!(buckets, ["2020-12", "2021-01"]);
        assert_eq!(r[0].to_millis, r[1].from_millis);
    }
}
