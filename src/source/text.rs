//! Text fields: the timestamp, price and volume forms text layouts share, parsed without
//! allocating on the accepted path; a field that is not what it should be is a [`Defect`].

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};

use super::Volume;
use crate::model::reject::{Defect, RejectReason};

/// Whether a line is empty or whitespace only.
#[inline]
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// NUL, the other C0 controls except tab, and DEL.
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

/// A field or line as text for a message (lossy: only used on lines being rejected).
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Checks that a line that is not plain printable ASCII is still UTF-8 text without control
/// bytes (tab allowed).
pub fn check_text(bytes: &[u8]) -> Result<(), Defect> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(Defect::new(
            RejectReason::InvalidUtf8,
            format!("not UTF-8 text (bad byte at offset {})", e.valid_up_to()),
        ));
    }
    if let Some(at) = bytes.iter().position(|&b| is_control(b)) {
        return Err(Defect::new(
            RejectReason::Binary,
            format!("control byte 0x{:02X} at offset {at}", bytes[at]),
        ));
    }
    Ok(())
}

/// Parses `YYYY-MM-DD HH:MM:SS` / `YYYY-MM-DD HH:MM` local timestamps, remembering the last
/// date: consecutive rows share a date, so most rows skip the calendar arithmetic.
#[derive(Debug, Clone, Default)]
pub struct LocalTimestamps {
    /// The last date parsed, by its 10 text bytes.
    date_cache: Option<([u8; 10], NaiveDate)>,
}

impl LocalTimestamps {
    /// The naive local time of `b`, or a [`RejectReason::BadTimestamp`].
    #[inline]
    pub fn parse(&mut self, b: &[u8]) -> Result<NaiveDateTime, Defect> {
        let bad = || {
            Defect::new(
                RejectReason::BadTimestamp,
                format!("timestamp {:?} is not YYYY-MM-DD HH:MM:SS", lossy(b)),
            )
        };
        let with_seconds = match b.len() {
            19 => true,
            16 => false,
            _ => return Err(bad()),
        };
        if b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b' '
            || b[13] != b':'
            || (with_seconds && b[16] != b':')
        {
            return Err(bad());
        }
        let date = self.date(b).ok_or_else(bad)??;
        let hour = digits(&b[11..13]).ok_or_else(bad)?;
        let minute = digits(&b[14..16]).ok_or_else(bad)?;
        let second = if with_seconds {
            digits(&b[17..19]).ok_or_else(bad)?
        } else {
            0
        };
        date.and_hms_opt(hour, minute, second).ok_or_else(|| {
            Defect::new(
                RejectReason::BadTimestamp,
                format!("timestamp {:?}: no such time of day", lossy(b)),
            )
        })
    }

    /// A `YYYY-MM-DD` date (a daily bar) as its midnight, or a [`RejectReason::BadTimestamp`].
    pub fn parse_date(&mut self, b: &[u8]) -> Result<NaiveDateTime, Defect> {
        let bad = || {
            Defect::new(
                RejectReason::BadTimestamp,
                format!("date {:?} is not YYYY-MM-DD", lossy(b)),
            )
        };
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let date = self.date(b).ok_or_else(bad)??;
        Ok(date.and_time(chrono::NaiveTime::MIN))
    }

    /// The date of a timestamp whose separators were checked: None when the date part is not
    /// digits, `Some(Err)` when it is but names no day.
    #[inline]
    fn date(&mut self, b: &[u8]) -> Option<Result<NaiveDate, Defect>> {
        let key: [u8; 10] = b.get(..10)?.try_into().ok()?;
        if let Some((cached, date)) = self.date_cache
            && cached == key
        {
            return Some(Ok(date));
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let Some(date) = i32::try_from(year)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        else {
            return Some(Err(Defect::new(
                RejectReason::BadTimestamp,
                format!("timestamp {:?}: no such date", lossy(b)),
            )));
        };
        self.date_cache = Some((key, date));
        Some(Ok(date))
    }
}

/// ASCII decimal digits into a number (at most 4 digits here, so no overflow).
#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Most significant digits the fast float path takes: 10^15 < 2^53, so the digits are exact in
/// an f64, and so is every power of ten up to 10^22.
const FAST_FLOAT_MAX_DIGITS: usize = 15;

/// Powers of ten exactly representable in an f64, for the fast path.
const POW10: [f64; FAST_FLOAT_MAX_DIGITS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `123.4567`-style decimals (digits, optionally a point and digits, at most
/// [`FAST_FLOAT_MAX_DIGITS`] digits): the exact integer of the digits divided by an exact power
/// of ten is correctly rounded (Clinger's fast path), so the result equals `str::parse`'s.
/// None for anything else (signs, exponents, long numbers, junk): those take the std parser.
#[inline]
fn parse_plain_decimal(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() > FAST_FLOAT_MAX_DIGITS + 1 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0;
    let mut point: Option<usize> = None;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(digits),
            _ => return None,
        }
    }
    if digits == 0 || digits > FAST_FLOAT_MAX_DIGITS {
        return None;
    }
    let decimals = point.map_or(0, |p| digits - p);
    Some(mantissa as f64 / POW10[decimals])
}

/// A price field as a float, or [`RejectReason::BadNumber`]. NaN and infinities parse (the
/// rules reject them), so every layout's numbers meet the same checks.
#[inline]
pub fn parse_price(name: &str, b: &[u8]) -> Result<f64, Defect> {
    if let Some(value) = parse_plain_decimal(b) {
        return Ok(value);
    }
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Defect::new(
                RejectReason::BadNumber,
                format!("{name} {:?} is not a number", lossy(b)),
            )
        })
}

/// A volume field: an integer exactly, anything else a float would read as a
/// [`Volume::Decimal`], or [`RejectReason::BadNumber`].
#[inline]
pub fn parse_volume(b: &[u8]) -> Result<Volume, Defect> {
    // Fast path: plain digits (at most 18, so no overflow).
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        let shares = b.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0'));
        return Ok(Volume::Shares(shares));
    }
    let s = std::str::from_utf8(b).unwrap_or("");
    if let Ok(v) = s.parse::<i64>() {
        return Ok(Volume::Shares(v));
    }
    s.parse().map(Volume::Decimal).map_err(|_| {
        Defect::new(
            RejectReason::BadNumber,
            format!("volume {:?} is not a number", lossy(b)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_decimals_equal_the_std_parser() {
        for s in [
            "0.9911",
            "1",
            "10.",
            "123456789012345",
            "0.000000000000001",
            "7.5",
        ] {
            let want: f64 = s.parse().unwrap();
            assert_eq!(parse_price("open", s.as_bytes()), Ok(want), "{s}");
        }
        assert!(parse_price("open", b"nan").unwrap().is_nan());
        assert_eq!(
            parse_price("open", b"abc").unwrap_err().reason,
            RejectReason::BadNumber
        );
    }

    #[test]
    fn volumes_keep_integers_exact() {
        assert_eq!(
            parse_volume(b"9223372036854775807"),
            Ok(Volume::Shares(i64::MAX))
        );
        assert_eq!(parse_volume(b"-7"), Ok(Volume::Shares(-7)));
        assert_eq!(parse_volume(b"100.0"), Ok(Volume::Decimal(100.0)));
        assert_eq!(
            parse_volume(b"seven").unwrap_err().reason,
            RejectReason::BadNumber
        );
    }

    #[test]
    fn timestamps_with_and_without_seconds() {
        let mut ts = LocalTimestamps::default();
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            ts.parse(b"2024-01-02 10:00:05"),
            Ok(t("2024-01-02 10:00:05"))
        );
        assert_eq!(ts.parse(b"2024-01-02 10:01"), Ok(t("2024-01-02 10:01:00")));
        for bad in [
            &b"2024-02-30 10:00:00"[..],
            b"2024-01-02 24:00:00",
            b"2024-01-0x 10:00:00",
            b"2024-01-02T10:00:00",
            b"",
            b"2024-01-02",
        ] {
            assert_eq!(
                ts.parse(bad).unwrap_err().reason,
                RejectReason::BadTimestamp,
                "{}",
                lossy(bad)
            );
        }
    }

    #[test]
    fn dates_of_daily_bars_are_their_midnight() {
        let mut ts = LocalTimestamps::default();
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(ts.parse_date(b"2024-01-02"), Ok(t("2024-01-02 00:00:00")));
        assert_eq!(ts.parse_date(b"2024-01-02"), Ok(t("2024-01-02 00:00:00")));
        for bad in [
            &b"2024-01-02 10:00"[..],
            b"2024-02-30",
            b"2024/01/02",
            b"2024-01-0x",
        ] {
            assert_eq!(
                ts.parse_date(bad).unwrap_err().reason,
                RejectReason::BadTimestamp,
                "{}",
                lossy(bad)
            );
        }
    }
}
