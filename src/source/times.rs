//! Times: the timestamp forms of the layouts other than FirstRate's (ISO 8601 dates and times
//! with or without a zone, US dates, epoch counts) into a [`BarTime`], or a `bad_timestamp`
//! defect.
//!
//! Fractions of a second take up to nine digits; digits past the millisecond must be zero (an
//! instant is stored in milliseconds, and a bar time finer than that is a sign of a wrong unit).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::BarTime;
use super::text::lossy;
use crate::model::reject::{Defect, RejectReason};

/// How to read a time written without a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NaiveTimes {
    /// Exchange-local wall time (resolved by validation in the exchange zone).
    #[default]
    Local,
    /// UTC.
    Utc,
}

/// What an epoch count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EpochUnit {
    /// Decided by the magnitude of the count, see [`EpochUnit::of_magnitude`].
    #[default]
    Auto,
    Seconds,
    Millis,
    Micros,
    Nanos,
}

/// Below this magnitude an epoch count is seconds (10^11 s is the year 5138).
const AUTO_SECONDS_BELOW: u64 = 100_000_000_000;
/// Below this, milliseconds (10^14 ms is the year 5138); then micros below 10^17, else nanos.
const AUTO_MILLIS_BELOW: u64 = AUTO_SECONDS_BELOW * 1_000;
const AUTO_MICROS_BELOW: u64 = AUTO_MILLIS_BELOW * 1_000;

impl EpochUnit {
    /// The unit a count of this magnitude is read in by [`EpochUnit::Auto`]: seconds below
    /// 10^11, milliseconds below 10^14, microseconds below 10^17, else nanoseconds. Each unit
    /// so covers the years 1970 to 5138; what it gets wrong is a millisecond count before
    /// 1973-03-03 (read as seconds) and the like, which a rule with an explicit unit fixes.
    pub fn of_magnitude(count: i64) -> EpochUnit {
        match count.unsigned_abs() {
            n if n < AUTO_SECONDS_BELOW => EpochUnit::Seconds,
            n if n < AUTO_MILLIS_BELOW => EpochUnit::Millis,
            n if n < AUTO_MICROS_BELOW => EpochUnit::Micros,
            _ => EpochUnit::Nanos,
        }
    }

    /// The name a config rule gives the unit (`auto`, `s`, `ms`, `us`, `ns`).
    pub fn from_name(name: &str) -> Option<EpochUnit> {
        Some(match name {
            "auto" => EpochUnit::Auto,
            "s" => EpochUnit::Seconds,
            "ms" => EpochUnit::Millis,
            "us" => EpochUnit::Micros,
            "ns" => EpochUnit::Nanos,
            _ => return None,
        })
    }
}

/// A `bad_timestamp` defect for field `b`, saying what was expected.
pub fn bad(b: &[u8], expected: &str) -> Defect {
    Defect::new(
        RejectReason::BadTimestamp,
        format!("timestamp {:?} is not {expected}", lossy(b)),
    )
}

/// ASCII digits into a number; None for an empty field, another byte or an overflow.
pub fn digits_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        if c.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// An optionally signed integer (`-12`, `+3`, `40`); None for anything else.
pub fn signed_integer(b: &[u8]) -> Option<i64> {
    let (negative, magnitude) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let n = i64::try_from(digits_u64(magnitude)?).ok()?;
    Some(if negative { -n } else { n })
}

/// Milliseconds since the epoch of a count in `unit` (Auto: by magnitude); an error message
/// when the count is finer than a millisecond or out of range.
pub fn epoch_millis(count: i64, unit: EpochUnit) -> Result<i64, String> {
    let unit = match unit {
        EpochUnit::Auto => EpochUnit::of_magnitude(count),
        other => other,
    };
    let (per_milli, times) = match unit {
        EpochUnit::Seconds => (1, 1_000),
        EpochUnit::Millis | EpochUnit::Auto => (1, 1),
        EpochUnit::Micros => (1_000, 1),
        EpochUnit::Nanos => (1_000_000, 1),
    };
    if count % per_milli != 0 {
        return Err(format!("{count} {unit:?} is not a whole millisecond"));
    }
    (count / per_milli)
        .checked_mul(times)
        .ok_or_else(|| format!("{count} {unit:?} is out of range"))
}

/// An epoch count field into an instant.
pub fn parse_epoch(b: &[u8], unit: EpochUnit) -> Result<BarTime, Defect> {
    let count = signed_integer(b).ok_or_else(|| bad(b, "an integer count since 1970"))?;
    epoch_millis(count, unit)
        .map(BarTime::Utc)
        .map_err(|why| Defect::new(RejectReason::BadTimestamp, format!("timestamp {why}")))
}

/// `YYYY-MM-DD`.
pub fn iso_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    ymd(&b[0..4], &b[5..7], &b[8..10])
}

/// `MM/DD/YYYY` (Kibot, US style).
pub fn us_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[2] != b'/' || b[5] != b'/' {
        return None;
    }
    ymd(&b[6..10], &b[0..2], &b[3..5])
}

fn ymd(year: &[u8], month: &[u8], day: &[u8]) -> Option<NaiveDate> {
    let year = i32::try_from(digits_u64(year)?).ok()?;
    let month = u32::try_from(digits_u64(month)?).ok()?;
    let day = u32::try_from(digits_u64(day)?).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` (1 to 9 fraction digits, zero past the millisecond).
pub fn time_of_day(b: &[u8]) -> Option<NaiveTime> {
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let two = |at: usize| -> Option<u32> { u32::try_from(digits_u64(b.get(at..at + 2)?)?).ok() };
    let (hour, minute) = (two(0)?, two(3)?);
    let (second, millis) = match b.len() {
        5 => (0, 0),
        8.. if b[5] == b':' => (two(6)?, fraction_millis(&b[8..])?),
        _ => return None,
    };
    NaiveTime::from_hms_milli_opt(hour, minute, second, millis)
}

/// The milliseconds of a `.fff…` fraction (empty: 0); None if malformed or finer than a ms.
fn fraction_millis(b: &[u8]) -> Option<u32> {
    let Some(digits) = b.strip_prefix(b".") else {
        return b.is_empty().then_some(0);
    };
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (millis, finer) = digits.split_at(digits.len().min(3));
    if finer.iter().any(|&d| d != b'0') {
        return None;
    }
    let value = u32::try_from(digits_u64(millis)?).ok()?;
    Some(value * 10u32.pow(3 - millis.len() as u32))
}

/// The UTC offset in seconds of a zone suffix: `Z`, `+HH:MM`, `+HHMM`, `+HH` (or `-`).
fn zone_offset(b: &[u8]) -> Option<i64> {
    if b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &b[1..];
    let (hours, minutes) = match rest.len() {
        2 => (rest, &b"00"[..]),
        4 => (&rest[..2], &rest[2..]),
        5 if rest[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    let (h, m) = (digits_u64(hours)?, digits_u64(minutes)?);
    (h < 24 && m < 60).then(|| sign * (h * 3600 + m * 60) as i64)
}

/// The forms [`parse_iso`] takes, for messages.
pub const ISO_FORMS: &str =
    "YYYY-MM-DD HH:MM[:SS[.fff]] (or with T), optionally ending in Z or an offset like -05:00";

/// An ISO 8601 date and time: naive (read per `naive`) or with `Z` / an offset (an instant).
pub fn parse_iso(b: &[u8], naive: NaiveTimes) -> Result<BarTime, Defect> {
    let (Some(date), Some(&(b' ' | b'T' | b't'))) = (b.get(..10).and_then(iso_date), b.get(10))
    else {
        return Err(bad(b, ISO_FORMS));
    };
    let rest = &b[11..];
    let zone_at = rest
        .iter()
        .position(|&c| matches!(c, b'Z' | b'z' | b'+' | b'-'));
    let (clock, zone) = match zone_at {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let time = time_of_day(clock).ok_or_else(|| bad(b, ISO_FORMS))?;
    let local = NaiveDateTime::new(date, time);
    match zone {
        None => Ok(naive_time(local, naive)),
        Some(zone) => {
            let offset = zone_offset(zone).ok_or_else(|| bad(b, ISO_FORMS))?;
            let millis = local.and_utc().timestamp_millis() - offset * 1_000;
            Ok(BarTime::Utc(millis))
        }
    }
}

/// A naive date and time as the layout means it.
pub fn naive_time(local: NaiveDateTime, naive: NaiveTimes) -> BarTime {
    match naive {
        NaiveTimes::Local => BarTime::Local(local),
        NaiveTimes::Utc => BarTime::Utc(local.and_utc().timestamp_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> BarTime {
        BarTime::Utc(
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("test instant")
                .timestamp_millis(),
        )
    }

    fn local(s: &str) -> BarTime {
        BarTime::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap())
    }

    #[test]
    fn iso_forms_naive_utc_and_offsets() {
        let l = NaiveTimes::Local;
        let cases = [
            ("2023-07-10 13:30:00", l, local("2023-07-10 13:30:00")),
            ("2023-07-10T13:30", l, local("2023-07-10 13:30:00")),
            (
                "2023-07-10 13:30:00.250",
                l,
                local("2023-07-10 13:30:00.250"),
            ),
            (
                "2023-07-10 13:30:00",
                NaiveTimes::Utc,
                utc("2023-07-10T13:30:00Z"),
            ),
            ("2023-07-10T13:30:00Z", l, utc("2023-07-10T13:30:00Z")),
            ("2023-07-10T09:30:00-04:00", l, utc("2023-07-10T13:30:00Z")),
            ("2023-07-10 09:30:00-0400", l, utc("2023-07-10T13:30:00Z")),
            ("2023-07-10 15:30:00+02", l, utc("2023-07-10T13:30:00Z")),
            ("2023-07-10T13:30:00+00:00", l, utc("2023-07-10T13:30:00Z")),
            (
                "2023-07-10T13:30:00.123000000Z",
                l,
                utc("2023-07-10T13:30:00.123Z"),
            ),
        ];
        for (text, naive, want) in cases {
            assert_eq!(parse_iso(text.as_bytes(), naive), Ok(want), "{text}");
        }
    }

    #[test]
    fn iso_rejections() {
        for text in [
            "2023-07-10",
            "2023-07-10 13",
            "2023-07-10 25:00:00",
            "2023-02-30 13:30:00",
            "2023-07-10 13:30:00.0001Z",
            "2023-07-10 13:30:00+5",
            "2023-07-10 13:30:00+24:00",
            "2023-07-10 13:30:00 UTC",
            "07/10/2023 13:30",
            "2023-07-10x13:30",
            "",
        ] {
            let got = parse_iso(text.as_bytes(), NaiveTimes::Local);
            assert_eq!(
                got.map_err(|d| d.reason),
                Err(RejectReason::BadTimestamp),
                "{text}"
            );
        }
    }

    #[test]
    fn epoch_units_by_magnitude_and_forced() {
        let at = 1_688_995_800_000; // 2023-07-10T13:30:00Z
        for (count, unit) in [
            (1_688_995_800, EpochUnit::Auto),
            (at, EpochUnit::Auto),
            (at * 1_000, EpochUnit::Auto),
            (at * 1_000_000, EpochUnit::Auto),
            (1_688_995_800, EpochUnit::Seconds),
            (at, EpochUnit::Millis),
            (at * 1_000, EpochUnit::Micros),
            (at * 1_000_000, EpochUnit::Nanos),
        ] {
            assert_eq!(epoch_millis(count, unit), Ok(at), "{count} {unit:?}");
        }
        // The edges of the magnitude rule.
        assert_eq!(EpochUnit::of_magnitude(99_999_999_999), EpochUnit::Seconds);
        assert_eq!(EpochUnit::of_magnitude(100_000_000_000), EpochUnit::Millis);
        assert_eq!(
            EpochUnit::of_magnitude(100_000_000_000_000),
            EpochUnit::Micros
        );
        assert_eq!(
            EpochUnit::of_magnitude(100_000_000_000_000_000),
            EpochUnit::Nanos
        );
        // A forced unit wins over the magnitude: 60 ms after the epoch, not a minute.
        assert_eq!(epoch_millis(60, EpochUnit::Millis), Ok(60));
        assert_eq!(epoch_millis(60, EpochUnit::Auto), Ok(60_000));
        assert!(epoch_millis(at * 1_000_000 + 1, EpochUnit::Nanos).is_err());
        assert!(epoch_millis(i64::MAX, EpochUnit::Seconds).is_err());
        assert_eq!(
            parse_epoch(b"-60", EpochUnit::Seconds),
            Ok(BarTime::Utc(-60_000))
        );
        for bad in [&b"1.5"[..], b"", b"-", b"12a", b"99999999999999999999"] {
            assert_eq!(
                parse_epoch(bad, EpochUnit::Auto).map_err(|d| d.reason),
                Err(RejectReason::BadTimestamp),
                "{}",
                lossy(bad)
            );
        }
    }

    #[test]
    fn dates_and_times_of_day() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(us_date(b"07/10/2023"), d(2023, 7, 10));
        assert_eq!(us_date(b"13/10/2023"), None);
        assert_eq!(us_date(b"7/10/2023"), None);
        assert_eq!(iso_date(b"2024-02-29"), d(2024, 2, 29));
        assert_eq!(iso_date(b"2023-02-29"), None);
        let t = |h, m, s, ms| NaiveTime::from_hms_milli_opt(h, m, s, ms);
        assert_eq!(time_of_day(b"09:30"), t(9, 30, 0, 0));
        assert_eq!(time_of_day(b"09:30:15"), t(9, 30, 15, 0));
        assert_eq!(time_of_day(b"09:30:15.5"), t(9, 30, 15, 500));
        for bad in [&b"9:30"[..], b"09:30:1", b"09:30:15.", b"09:60", b"0930"] {
            assert_eq!(time_of_day(bad), None, "{}", lossy(bad));
        }
    }
}
