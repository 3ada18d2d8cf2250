//! The NYSE trading calendar: which dates trade, holidays, early closes and the regular session.
//!
//! Holidays are computed by rule, as NYSE applies them:
//! - New Year's Day (Jan 1; Sunday → Monday Jan 2; on a Saturday there is *no* closure: NYSE
//!   stays open on Friday Dec 31, the end of an accounting period, NYSE Rule 7.2),
//! - Martin Luther King Jr. Day (third Monday of January, from 1998),
//! - Washington's Birthday (third Monday of February),
//! - Good Friday (two days before Western Easter),
//! - Memorial Day (last Monday of May),
//! - Juneteenth (June 19, from 2022; Saturday → Friday, Sunday → Monday),
//! - Independence Day (July 4; Saturday → Friday, Sunday → Monday),
//! - Labor Day (first Monday of September),
//! - Thanksgiving (fourth Thursday of November),
//! - Christmas (Dec 25; Saturday → Friday, Sunday → Monday),
//!
//! plus the unscheduled closures since 2000 ([`SPECIAL_CLOSURES`]).
//!
//! Early closes at 13:00 exchange time: the day before Independence Day when that is a Monday,
//! Tuesday or Thursday; when July 4 is a Thursday the half day is Wednesday July 3 from 2013 on,
//! and was Friday July 5 before 2013; the day after Thanksgiving; Christmas Eve on Monday to
//! Thursday; plus the unscheduled half days since 2000 ([`SPECIAL_EARLY_CLOSES`]: Friday
//! Dec 26 2003). No early close falls on a day that does not trade.
//!
//! The rules match NYSE from 2000 on (checked against the `exchange_calendars` package by
//! `scripts/check-calendar`); before 2000 the same rules apply, without that era's one-off
//! closures and half days.

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};

/// Regular session open, exchange time.
pub(crate) const REGULAR_OPEN: NaiveTime = hm(9, 30);
/// Regular session close on a full day, exchange time.
pub(crate) const REGULAR_CLOSE: NaiveTime = hm(16, 0);
/// Regular session close on an early-close day (half day), exchange time.
pub(crate) const EARLY_CLOSE: NaiveTime = hm(13, 0);

/// Unscheduled early closes (13:00) since 2000, with the reason.
pub(crate) const SPECIAL_EARLY_CLOSES: &[(i32, u32, u32, &str)] =
    &[(2003, 12, 26, "Friday after Christmas 2003")];

/// Unscheduled full-day closures since 2000, with the reason.
pub(crate) const SPECIAL_CLOSURES: &[(i32, u32, u32, &str)] = &[
    (2001, 9, 11, "September 11 attacks"),
    (2001, 9, 12, "September 11 attacks"),
    (2001, 9, 13, "September 11 attacks"),
    (2001, 9, 14, "September 11 attacks"),
    (2004, 6, 11, "National Day of Mourning for Ronald Reagan"),
    (2007, 1, 2, "National Day of Mourning for Gerald Ford"),
    (2012, 10, 29, "Hurricane Sandy"),
    (2012, 10, 30, "Hurricane Sandy"),
    (
        2018,
        12,
        5,
        "National Day of Mourning for George H. W. Bush",
    ),
    (2025, 1, 9, "National Day of Mourning for Jimmy Carter"),
];

const fn hm(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(t) => t,
        None => panic!("constant time out of range"),
    }
}

/// Whether NYSE trades on `date`: a weekday that is neither a holiday nor a special closure.
pub fn is_trading_day(date: NaiveDate) -> bool {
    is_weekday(date) && holiday_name(date).is_none()
}

/// The early close time of `date` (13:00 on NYSE half days), or None on a full day or a day
/// that does not trade.
pub fn early_close(date: NaiveDate) -> Option<NaiveTime> {
    (is_trading_day(date) && is_half_day(date)).then_some(EARLY_CLOSE)
}

/// The regular session of `date` as (open, close) in exchange time: 09:30 to 16:00, or to 13:00
/// on an early-close day; None when NYSE does not trade that day. A bar belongs to the regular
/// session when it opens in `[open, close)`.
pub(crate) fn session_bounds(date: NaiveDate) -> Option<(NaiveTime, NaiveTime)> {
    if !is_trading_day(date) {
        return None;
    }
    let close = if is_half_day(date) {
        EARLY_CLOSE
    } else {
        REGULAR_CLOSE
    };
    Some((REGULAR_OPEN, close))
}

/// The holiday or special closure NYSE observes on `date`, by name; None on every other date
/// (weekends included: they are not holidays, simply not trading days).
pub(crate) fn holiday_name(date: NaiveDate) -> Option<&'static str> {
    if !is_weekday(date) {
        return None;
    }
    let (year, month, day) = (date.year(), date.month(), date.day());
    if let Some(&(_, _, _, reason)) = SPECIAL_CLOSURES
        .iter()
        .find(|&&(y, m, d, _)| (y, m, d) == (year, month, day))
    {
        return Some(reason);
    }
    let rules: [(&'static str, Option<NaiveDate>); 10] = [
        ("New Year's Day", new_years_day_observed(year)),
        (
            "Martin Luther King Jr. Day",
            (year >= 1998).then(|| nth_weekday(year, 1, Weekday::Mon, 3)),
        ),
        (
            "Washington's Birthday",
            Some(nth_weekday(year, 2, Weekday::Mon, 3)),
        ),
        ("Good Friday", easter_sunday(year).map(|e| e - days(2))),
        ("Memorial Day", Some(last_weekday(year, 5, Weekday::Mon))),
        (
            "Juneteenth",
            (year >= 2022).then(|| observed(ymd(year, 6, 19))),
        ),
        ("Independence Day", Some(observed(ymd(year, 7, 4)))),
        ("Labor Day", Some(nth_weekday(year, 9, Weekday::Mon, 1))),
        ("Thanksgiving", Some(thanksgiving(year))),
        ("Christmas", Some(observed(ymd(year, 12, 25)))),
    ];
    rules
        .into_iter()
        .find(|(_, d)| *d == Some(date))
        .map(|(name, _)| name)
}

/// Whether `date` is a half day, scheduled or special (regardless of whether it trades).
fn is_half_day(date: NaiveDate) -> bool {
    let (year, month, day) = (date.year(), date.month(), date.day());
    if SPECIAL_EARLY_CLOSES
        .iter()
        .any(|&(y, m, d, _)| (y, m, d) == (year, month, day))
    {
        return true;
    }
    let weekday = date.weekday();
    match (month, day) {
        // The day before Independence Day.
        (7, 3) => match weekday {
            Weekday::Mon | Weekday::Tue | Weekday::Thu => true,
            Weekday::Wed => year >= 2013,
            _ => false,
        },
        // July 4 on a Thursday: before 2013 the half day was the Friday after.
        (7, 5) => weekday == Weekday::Fri && year < 2013,
        // The day after Thanksgiving.
        (11, _) => date == thanksgiving(year) + days(1),
        // Christmas Eve, when it is not itself the observed Christmas (Friday) or a weekend.
        (12, 24) => matches!(
            weekday,
            Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu
        ),
        _ => false,
    }
}

/// New Year's Day as NYSE observes it: Jan 1, or Monday Jan 2 when Jan 1 is a Sunday; no
/// closure at all when Jan 1 is a Saturday.
fn new_years_day_observed(year: i32) -> Option<NaiveDate> {
    let jan1 = ymd(year, 1, 1);
    match jan1.weekday() {
        Weekday::Sat => None,
        Weekday::Sun => Some(jan1 + days(1)),
        _ => Some(jan1),
    }
}

/// A fixed-date holiday moved off the weekend: Saturday → Friday, Sunday → Monday.
fn observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date - days(1),
        Weekday::Sun => date + days(1),
        _ => date,
    }
}

fn thanksgiving(year: i32) -> NaiveDate {
    nth_weekday(year, 11, Weekday::Thu, 4)
}

/// The `n`th (1-based) `weekday` of a month; `n` is at most 4 here, which every month has.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
        .unwrap_or_else(|| ymd(year, month, 1))
}

/// The last `weekday` of a month.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> NaiveDate {
    let first_of_next = if month == 12 {
        ymd(year + 1, 1, 1)
    } else {
        ymd(year, month + 1, 1)
    };
    let mut d = first_of_next - days(1);
    while d.weekday() != weekday {
        d -= days(1);
    }
    d
}

/// Western (Gregorian) Easter Sunday, by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// A date built from month and day values this module controls (1..=12, day 1..=28 or a fixed
/// holiday date); falls back to the year's first day rather than panicking.
fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day)
        .or_else(|| NaiveDate::from_ymd_opt(year, 1, 1))
        .unwrap_or(NaiveDate::MIN)
}

fn days(n: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::days(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_dates() {
        for (y, m, day) in [
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2038, 4, 25),
        ] {
            assert_eq!(easter_sunday(y), Some(d(y, m, day)), "{y}");
        }
    }

    #[test]
    fn holidays_of_2024() {
        let holidays: Vec<NaiveDate> = (0..366)
            .map(|i| d(2024, 1, 1) + days(i))
            .filter(|&x| holiday_name(x).is_some())
            .collect();
        assert_eq!(
            holidays,
            vec![
                d(2024, 1, 1),
                d(2024, 1, 15),
                d(2024, 2, 19),
                d(2024, 3, 29),
                d(2024, 5, 27),
                d(2024, 6, 19),
                d(2024, 7, 4),
                d(2024, 9, 2),
                d(2024, 11, 28),
                d(2024, 12, 25),
            ]
        );
    }

    #[test]
    fn new_year_on_saturday_closes_nothing() {
        // Jan 1 2022 was a Saturday: NYSE traded on Friday Dec 31 2021.
        assert!(is_trading_day(d(2021, 12, 31)));
        assert!(!is_trading_day(d(2022, 1, 1)));
        // Jan 1 2023 was a Sunday: Monday Jan 2 was the holiday.
        assert_eq!(holiday_name(d(2023, 1, 2)), Some("New Year's Day"));
    }

    #[test]
    fn observed_fixed_holidays() {
        // Christmas 2021 on a Saturday: closed Friday Dec 24, no half day on Thursday the 23rd.
        assert!(!is_trading_day(d(2021, 12, 24)));
        assert_eq!(early_close(d(2021, 12, 23)), None);
        // Independence Day 2021 on a Sunday: closed Monday July 5.
        assert!(!is_trading_day(d(2021, 7, 5)));
        // Juneteenth 2022 on a Sunday: closed Monday June 20; no Juneteenth before 2022.
        assert_eq!(holiday_name(d(2022, 6, 20)), Some("Juneteenth"));
        assert!(is_trading_day(d(2021, 6, 18)));
        // MLK Day only from 1998.
        assert!(is_trading_day(d(1997, 1, 20)));
        assert!(!is_trading_day(d(1998, 1, 19)));
    }

    #[test]
    fn special_closures() {
        for (y, m, day, _) in SPECIAL_CLOSURES {
            assert!(!is_trading_day(d(*y, *m, *day)), "{y}-{m}-{day}");
        }
        assert!(is_trading_day(d(2001, 9, 17)));
    }

    #[test]
    fn early_closes() {
        // Black Friday, Christmas Eve, July 3 (Wednesday, from 2013).
        assert_eq!(early_close(d(2024, 11, 29)), Some(EARLY_CLOSE));
        assert_eq!(early_close(d(2024, 12, 24)), Some(EARLY_CLOSE));
        assert_eq!(early_close(d(2024, 7, 3)), Some(EARLY_CLOSE));
        // July 4 2002 was a Thursday: the half day was Friday July 5, not July 3.
        assert_eq!(early_close(d(2002, 7, 3)), None);
        assert_eq!(early_close(d(2002, 7, 5)), Some(EARLY_CLOSE));
        // July 4 2019 was a Thursday: half day Wednesday July 3, full day Friday July 5.
        assert_eq!(early_close(d(2019, 7, 3)), Some(EARLY_CLOSE));
        assert_eq!(early_close(d(2019, 7, 5)), None);
        // July 3 2020 was the observed holiday, July 2 a full day.
        assert_eq!(early_close(d(2020, 7, 3)), None);
        assert_eq!(early_close(d(2020, 7, 2)), None);
        // The one unscheduled half day since 2000.
        assert_eq!(early_close(d(2003, 12, 26)), Some(EARLY_CLOSE));
        // Ordinary day.
        assert_eq!(early_close(d(2024, 11, 27)), None);
    }

    #[test]
    fn session_bounds_follow_the_calendar() {
        assert_eq!(
            session_bounds(d(2024, 11, 29)),
            Some((REGULAR_OPEN, EARLY_CLOSE))
        );
        assert_eq!(
            session_bounds(d(2024, 11, 27)),
            Some((REGULAR_OPEN, REGULAR_CLOSE))
        );
        assert_eq!(session_bounds(d(2024, 11, 28)), None);
        assert_eq!(session_bounds(d(2024, 11, 30)), None);
    }

    /// Compares the calendar with the `exchange_calendars` XNYS dump named by
    /// `BAR_INGEST_CALENDAR_REFERENCE` (written by `scripts/check-calendar`, which runs this).
    #[test]
    #[ignore = "needs the reference dump; run by scripts/check-calendar"]
    fn matches_exchange_calendars_reference() {
        let path = std::env::var("BAR_INGEST_CALENDAR_REFERENCE")
            .expect("set BAR_INGEST_CALENDAR_REFERENCE to the JSON dump of scripts/check-calendar");
        let text = std::fs::read_to_string(&path).expect("read the reference dump");
        let json: serde_json::Value = serde_json::from_str(&text).expect("reference is JSON");
        let date = |v: &serde_json::Value| {
            NaiveDate::parse_from_str(v.as_str().expect("date string"), "%Y-%m-%d")
                .expect("YYYY-MM-DD")
        };
        let start = date(&json["start"]);
        let end = date(&json["end"]);
        let holidays: std::collections::BTreeSet<NaiveDate> = json["holidays"]
            .as_array()
            .expect("holidays array")
            .iter()
            .map(date)
            .collect();
        let early: std::collections::BTreeMap<NaiveDate, NaiveTime> = json["early_closes"]
            .as_object()
            .expect("early_closes object")
            .iter()
            .map(|(k, v)| {
                let day = NaiveDate::parse_from_str(k, "%Y-%m-%d").expect("YYYY-MM-DD");
                let t =
                    NaiveTime::parse_from_str(v.as_str().expect("time"), "%H:%M").expect("HH:MM");
                (day, t)
            })
            .collect();

        let mut differences = Vec::new();
        let mut day = start;
        let mut checked = 0;
        while day <= end {
            if is_weekday(day) {
                checked += 1;
                let theirs_closed = holidays.contains(&day);
                let ours_closed = !is_trading_day(day);
                if theirs_closed != ours_closed {
                    differences.push(format!(
                        "{day} ({}): exchange_calendars says {}, we say {} ({:?})",
                        day.weekday(),
                        if theirs_closed { "closed" } else { "open" },
                        if ours_closed { "closed" } else { "open" },
                        holiday_name(day)
                    ));
                }
                let theirs_early = early.get(&day).copied();
                let ours_early = early_close(day);
                if theirs_early != ours_early {
                    differences.push(format!(
                        "{day} ({}): early close: exchange_calendars {theirs_early:?}, ours {ours_early:?}",
                        day.weekday()
                    ));
                }
            }
            day += days(1);
        }
        assert!(
            differences.is_empty(),
            "{} difference(s) from exchange_calendars XNYS {start}..{end}:\n{}",
            differences.len(),
            differences.join("\n")
        );
        println!(
            "calendar matches exchange_calendars XNYS on {checked} weekdays {start}..{end} \
             ({} holidays, {} early closes)",
            holidays.len(),
            early.len()
        );
    }
}
