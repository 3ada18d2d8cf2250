//! Validate: each line of a bar file into a [`Bar`] with its UTC instant and month bucket, or a
//! [`Rejection`] with a stable reason code; every physical line ends up as exactly one [`Row`].
//!
//! The hot path (an accepted row) allocates nothing: fields are slices of the line, the fixed
//! timestamp format is parsed by hand, and the zone offset is cached per local hour (rows are
//! sorted, so one entry serves about sixty rows). Hours in which the offset changes (DST
//! transitions) are never cached: each of their rows is resolved on its own.

use std::fmt;
use std::io::BufRead;

use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

use crate::model::{Bar, Bucket};
use crate::pipeline::parse::{Line, LineReader, MAX_LINE_BYTES};

/// Most bytes of a rejected line kept in [`Rejection::raw`]: enough to see what went wrong,
/// bounded so a garbage file cannot flood the dead-letter log.
pub const MAX_RAW_BYTES: usize = 512;

/// Number of fields in a bar line: timestamp, open, high, low, close, volume.
const FIELD_COUNT: usize = 6;

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a line was not accepted. The [`code`](Self::code) of each is stable: it is a metric
/// label and appears in the dead-letter log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Empty or whitespace only, with more data after it (blank lines at the end are tolerated).
    BlankLine,
    /// Longer than [`MAX_LINE_BYTES`].
    LineTooLong,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Contains NUL or another control byte (other than tab).
    Binary,
    /// Not exactly six comma-separated fields.
    FieldCount,
    /// Timestamp not `YYYY-MM-DD HH:MM[:SS]`, or no such date or time of day.
    BadTimestamp,
    /// A local time that the zone skips (spring-forward gap).
    NonexistentLocalTime,
    /// A price or the volume is not a number (or the volume does not fit in 64 bits).
    BadNumber,
    /// NaN or infinite (Rust's float parser accepts `nan` and `inf`).
    NonFinite,
    /// A price is zero or negative.
    NonPositivePrice,
    /// High below low.
    HighBelowLow,
    /// Open outside `[low, high]`.
    OpenOutOfRange,
    /// Close outside `[low, high]`.
    CloseOutOfRange,
    /// Volume below zero.
    NegativeVolume,
    /// Volume with a fractional part.
    FractionalVolume,
    /// Same instant as the last accepted bar of the file.
    DuplicateTimestamp,
    /// Earlier than the last accepted bar of the file.
    OutOfOrder,
}

impl RejectReason {
    /// Every reason, in the order checks run (roughly: line, fields, values, order).
    pub const ALL: [RejectReason; 17] = [
        Self::BlankLine,
        Self::LineTooLong,
        Self::InvalidUtf8,
        Self::Binary,
        Self::FieldCount,
        Self::BadTimestamp,
        Self::NonexistentLocalTime,
        Self::BadNumber,
        Self::NonFinite,
        Self::NonPositivePrice,
        Self::HighBelowLow,
        Self::OpenOutOfRange,
        Self::CloseOutOfRange,
        Self::NegativeVolume,
        Self::FractionalVolume,
        Self::DuplicateTimestamp,
        Self::OutOfOrder,
    ];

    /// Every reason's code, in the order of [`Self::ALL`] (the metric's known label values).
    pub const CODES: [&'static str; 17] = {
        let mut codes = [""; 17];
        let mut i = 0;
        while i < codes.len() {
            codes[i] = Self::ALL[i].code();
            i += 1;
        }
        codes
    };

    /// The stable snake_case code (metric label, dead-letter log).
    pub const fn code(self) -> &'static str {
        match self {
            Self::BlankLine => "blank_line",
            Self::LineTooLong => "line_too_long",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Binary => "binary",
            Self::FieldCount => "field_count",
            Self::BadTimestamp => "bad_timestamp",
            Self::NonexistentLocalTime => "nonexistent_local_time",
            Self::BadNumber => "bad_number",
            Self::NonFinite => "non_finite",
            Self::NonPositivePrice => "non_positive_price",
            Self::HighBelowLow => "high_below_low",
            Self::OpenOutOfRange => "open_out_of_range",
            Self::CloseOutOfRange => "close_out_of_range",
            Self::NegativeVolume => "negative_volume",
            Self::FractionalVolume => "fractional_volume",
            Self::DuplicateTimestamp => "duplicate_timestamp",
            Self::OutOfOrder => "out_of_order",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An accepted bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidBar {
    /// 1-based line number in the file.
    pub line: u64,
    /// The exchange-local date of the bar open (what the bucket and session filters go by).
    pub local_date: NaiveDate,
    /// The partition month, from `local_date`.
    pub bucket: Bucket,
    pub bar: Bar,
}

/// A line that was not accepted, with what the dead-letter log needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line number in the file.
    pub line: u64,
    /// The line as text (lossy UTF-8): at most [`MAX_RAW_BYTES`] bytes of it, then
    /// `…[truncated, N bytes]` with N the whole line's length. Empty for a blank line (its
    /// whitespace is not kept, so a run of blank lines costs no memory).
    pub raw: String,
    pub reason: RejectReason,
    /// What is wrong, for a person: e.g. `high 1.2 is below low 1.5`.
    pub message: String,
}

/// What became of one physical line.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Bar(ValidBar),
    Rejected(Rejection),
}

impl Row {
    /// The 1-based line number the row came from.
    pub fn line(&self) -> u64 {
        match self {
            Row::Bar(b) => b.line,
            Row::Rejected(r) => r.line,
        }
    }
}

/// A failed check: the reason and a message, built only when a line fails.
struct Fail {
    reason: RejectReason,
    message: String,
}

fn fail(reason: RejectReason, message: impl Into<String>) -> Fail {
    Fail {
        reason,
        message: message.into(),
    }
}

/// Checks lines one by one, keeping what the checks need across lines: the last accepted
/// instant (ordering, ambiguous local times) and the zone-offset cache.
#[derive(Debug, Clone)]
pub struct Validator {
    /// The exchange's zone the naive timestamps are in.
    tz: Tz,
    /// The last date parsed, by its 10 text bytes: consecutive rows share a date.
    date_cache: Option<([u8; 10], NaiveDate)>,
    /// The UTC offset (seconds) of one local hour, when it is the same for the whole hour;
    /// `None` for an hour with a transition in it (each row then resolved on its own).
    hour_cache: Option<(NaiveDate, u32, Option<i32>)>,
    /// UTC millis of the last accepted bar: timestamps must strictly increase.
    last_millis: Option<i64>,
}

impl Validator {
    pub fn new(tz: Tz) -> Self {
        Self {
            tz,
            date_cache: None,
            hour_cache: None,
            last_millis: None,
        }
    }

    /// Checks one line: an accepted bar (which then becomes the last accepted one) or a
    /// rejection.
    pub fn validate(&mut self, line: &Line<'_>) -> Row {
        match self.check(line) {
            Ok(valid) => Row::Bar(valid),
            Err(Fail { reason, message }) => Row::Rejected(Rejection {
                line: line.number,
                raw: raw_text(line),
                reason,
                message,
            }),
        }
    }

    fn check(&mut self, line: &Line<'_>) -> Result<ValidBar, Fail> {
        if line.too_long {
            return Err(fail(
                RejectReason::LineTooLong,
                format!(
                    "line is {} bytes, longer than the limit of {MAX_LINE_BYTES}",
                    line.len
                ),
            ));
        }
        let bytes = line.bytes;
        if is_blank(bytes) {
            return Err(fail(RejectReason::BlankLine, "blank line"));
        }
        let fields = split_fields(bytes)?;
        let (local_date, hour, seconds_of_day) = self.parse_timestamp(fields[0])?;
        let ts_millis = self.resolve_instant(fields[0], local_date, hour, seconds_of_day)?;
        let open = parse_price("open", fields[1])?;
        let high = parse_price("high", fields[2])?;
        let low = parse_price("low", fields[3])?;
        let close = parse_price("close", fields[4])?;
        let volume = parse_volume(fields[5])?;

        for (name, value, raw) in [
            ("open", open, fields[1]),
            ("high", high, fields[2]),
            ("low", low, fields[3]),
            ("close", close, fields[4]),
        ] {
            if value <= 0.0 {
                return Err(fail(
                    RejectReason::NonPositivePrice,
                    format!("{name} {} is not above zero", text(raw)),
                ));
            }
        }
        if high < low {
            return Err(fail(
                RejectReason::HighBelowLow,
                format!("high {} is below low {}", text(fields[2]), text(fields[3])),
            ));
        }
        if !(low..=high).contains(&open) {
            return Err(fail(
                RejectReason::OpenOutOfRange,
                format!(
                    "open {} is outside low {} .. high {}",
                    text(fields[1]),
                    text(fields[3]),
                    text(fields[2])
                ),
            ));
        }
        if !(low..=high).contains(&close) {
            return Err(fail(
                RejectReason::CloseOutOfRange,
                format!(
                    "close {} is outside low {} .. high {}",
                    text(fields[4]),
                    text(fields[3]),
                    text(fields[2])
                ),
            ));
        }
        let volume = match volume {
            Volume::Shares(v) => v,
            Volume::Negative => {
                return Err(fail(
                    RejectReason::NegativeVolume,
                    format!("volume {} is negative", text(fields[5])),
                ));
            }
            Volume::Fractional => {
                return Err(fail(
                    RejectReason::FractionalVolume,
                    format!("volume {} is not a whole number", text(fields[5])),
                ));
            }
        };

        if let Some(last) = self.last_millis {
            if ts_millis == last {
                return Err(fail(
                    RejectReason::DuplicateTimestamp,
                    format!("{} repeats the previous bar's time", text(fields[0])),
                ));
            }
            if ts_millis < last {
                return Err(fail(
                    RejectReason::OutOfOrder,
                    format!(
                        "{} is earlier than the previous bar (rows must be in time order)",
                        text(fields[0])
                    ),
                ));
            }
        }
        self.last_millis = Some(ts_millis);
        Ok(ValidBar {
            line: line.number,
            local_date,
            bucket: Bucket::of_local_date(local_date),
            bar: Bar {
                ts_millis,
                open,
                high,
                low,
                close,
                volume,
            },
        })
    }

    /// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM` into (date, hour, seconds of the day).
    fn parse_timestamp(&mut self, b: &[u8]) -> Result<(NaiveDate, u32, u32), Fail> {
        let bad = || {
            fail(
                RejectReason::BadTimestamp,
                format!("timestamp {:?} is not YYYY-MM-DD HH:MM:SS", text(b)),
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
        let date_key: [u8; 10] = b[..10].try_into().map_err(|_| bad())?;
        let date = match self.date_cache {
            Some((key, date)) if key == date_key => date,
            _ => {
                let year = digits(&b[0..4]).ok_or_else(bad)?;
                let month = digits(&b[5..7]).ok_or_else(bad)?;
                let day = digits(&b[8..10]).ok_or_else(bad)?;
                let date = i32::try_from(year)
                    .ok()
                    .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
                    .ok_or_else(|| {
                        fail(
                            RejectReason::BadTimestamp,
                            format!("timestamp {:?}: no such date", text(b)),
                        )
                    })?;
                self.date_cache = Some((date_key, date));
                date
            }
        };
        let hour = digits(&b[11..13]).ok_or_else(bad)?;
        let minute = digits(&b[14..16]).ok_or_else(bad)?;
        let second = if with_seconds {
            digits(&b[17..19]).ok_or_else(bad)?
        } else {
            0
        };
        if hour > 23 || minute > 59 || second > 59 {
            return Err(fail(
                RejectReason::BadTimestamp,
                format!("timestamp {:?}: no such time of day", text(b)),
            ));
        }
        Ok((date, hour, hour * 3600 + minute * 60 + second))
    }

    /// The UTC instant (millis) of a local time in the zone. A time in a spring-forward gap is
    /// rejected; an ambiguous one (fall-back) is the earlier instant unless that would not come
    /// after the last accepted bar, then the later one.
    fn resolve_instant(
        &mut self,
        timestamp: &[u8],
        date: NaiveDate,
        hour: u32,
        seconds_of_day: u32,
    ) -> Result<i64, Fail> {
        let local_seconds = (i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE)
            * SECONDS_PER_DAY
            + i64::from(seconds_of_day);
        let offset = match self.hour_cache {
            Some((d, h, offset)) if d == date && h == hour => offset,
            _ => {
                let offset = uniform_hour_offset(self.tz, date, hour);
                self.hour_cache = Some((date, hour, offset));
                offset
            }
        };
        if let Some(offset) = offset {
            return Ok((local_seconds - i64::from(offset)) * 1000);
        }
        // An hour with a transition in it: resolve this row on its own.
        let naive = date
            .and_hms_opt(hour, (seconds_of_day / 60) % 60, seconds_of_day % 60)
            .ok_or_else(|| {
                fail(
                    RejectReason::BadTimestamp,
                    format!("timestamp {:?}", text(timestamp)),
                )
            })?;
        match self.tz.offset_from_local_datetime(&naive) {
            chrono::LocalResult::Single(o) => {
                Ok((local_seconds - i64::from(o.fix().local_minus_utc())) * 1000)
            }
            chrono::LocalResult::Ambiguous(a, b) => {
                let at = |o: <Tz as TimeZone>::Offset| {
                    (local_seconds - i64::from(o.fix().local_minus_utc())) * 1000
                };
                let (earlier, later) = {
                    let (x, y) = (at(a), at(b));
                    (x.min(y), x.max(y))
                };
                Ok(match self.last_millis {
                    Some(last) if earlier <= last => later,
                    _ => earlier,
                })
            }
            chrono::LocalResult::None => Err(fail(
                RejectReason::NonexistentLocalTime,
                format!(
                    "{} does not exist in {} (clocks jump forward over it)",
                    text(timestamp),
                    self.tz.name()
                ),
            )),
        }
    }
}

/// The UTC offset (seconds east) of a whole local hour, or None when the hour has a
/// transition in it (or is skipped or repeated).
fn uniform_hour_offset(tz: Tz, date: NaiveDate, hour: u32) -> Option<i32> {
    let offset_at = |minute, second| match tz
        .offset_from_local_datetime(&date.and_hms_opt(hour, minute, second)?)
    {
        chrono::LocalResult::Single(o) => Some(o.fix().local_minus_utc()),
        _ => None,
    };
    let start = offset_at(0, 0)?;
    (offset_at(59, 59)? == start).then_some(start)
}

/// Whether a line is empty or whitespace only.
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// NUL, the other C0 controls except tab, and DEL.
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

/// A field or line as text for a message (lossy: only used on lines being rejected).
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Checks the line is UTF-8 text without control bytes and cuts it into the six
/// comma-separated fields, each trimmed of surrounding ASCII whitespace. One pass over the
/// bytes for a plain ASCII line (the common case); the UTF-8 and control-byte checks only run
/// when that pass saw something else.
fn split_fields(bytes: &[u8]) -> Result<[&[u8]; FIELD_COUNT], Fail> {
    let mut commas = [0usize; FIELD_COUNT - 1];
    let mut count = 0;
    let mut plain = true;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b',' {
            if let Some(slot) = commas.get_mut(count) {
                *slot = i;
            }
            count += 1;
        } else if !(0x20..0x7F).contains(&b) {
            plain = false;
        }
    }
    if !plain {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(fail(
                RejectReason::InvalidUtf8,
                format!("not UTF-8 text (bad byte at offset {})", e.valid_up_to()),
            ));
        }
        if let Some(at) = bytes.iter().position(|&b| is_control(b)) {
            return Err(fail(
                RejectReason::Binary,
                format!("control byte 0x{:02X} at offset {at}", bytes[at]),
            ));
        }
    }
    if count != FIELD_COUNT - 1 {
        return Err(fail(
            RejectReason::FieldCount,
            format!(
                "{} fields, expected {FIELD_COUNT} (timestamp,open,high,low,close,volume)",
                count + 1
            ),
        ));
    }
    let [c0, c1, c2, c3, c4] = commas;
    Ok([
        &bytes[..c0],
        &bytes[c0 + 1..c1],
        &bytes[c1 + 1..c2],
        &bytes[c2 + 1..c3],
        &bytes[c3 + 1..c4],
        &bytes[c4 + 1..],
    ]
    .map(<[u8]>::trim_ascii))
}

/// ASCII decimal digits into a number (at most 4 digits here, so no overflow).
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

fn parse_price(name: &str, b: &[u8]) -> Result<f64, Fail> {
    if let Some(value) = parse_plain_decimal(b) {
        return Ok(value);
    }
    let value: f64 = std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            fail(
                RejectReason::BadNumber,
                format!("{name} {:?} is not a number", text(b)),
            )
        })?;
    if !value.is_finite() {
        return Err(fail(
            RejectReason::NonFinite,
            format!("{name} {} is not a finite number", text(b)),
        ));
    }
    Ok(value)
}

/// A volume that parsed as a number, before the rules on it are checked.
enum Volume {
    Shares(i64),
    Negative,
    Fractional,
}

/// Volume: an integer, or a float with no fractional part (`100.0`). Too big for i64 is a bad
/// number.
fn parse_volume(b: &[u8]) -> Result<Volume, Fail> {
    // Fast path: plain digits (at most 18, so no overflow).
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        let shares = b.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0'));
        return Ok(Volume::Shares(shares));
    }
    let s = std::str::from_utf8(b).unwrap_or("");
    if let Ok(v) = s.parse::<i64>() {
        return Ok(if v < 0 {
            Volume::Negative
        } else {
            Volume::Shares(v)
        });
    }
    let value: f64 = s.parse().map_err(|_| {
        fail(
            RejectReason::BadNumber,
            format!("volume {:?} is not a number", text(b)),
        )
    })?;
    if !value.is_finite() {
        return Err(fail(
            RejectReason::NonFinite,
            format!("volume {s} is not a finite number"),
        ));
    }
    if value < 0.0 {
        return Ok(Volume::Negative);
    }
    if value.fract() != 0.0 {
        return Ok(Volume::Fractional);
    }
    // 2^63 is the first f64 past i64::MAX; every integral f64 below it converts exactly.
    if value >= 9_223_372_036_854_775_808.0 {
        return Err(fail(
            RejectReason::BadNumber,
            format!("volume {s} is too large"),
        ));
    }
    // In range and integral (checked above), so the conversion is exact.
    Ok(Volume::Shares(value as i64))
}

/// The rejected line as text for the dead-letter log, cut to [`MAX_RAW_BYTES`] at a character
/// boundary.
fn raw_text(line: &Line<'_>) -> String {
    let bytes = line.bytes;
    if bytes.len() as u64 == line.len && bytes.len() <= MAX_RAW_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut cut = bytes.len().min(MAX_RAW_BYTES);
    // Do not split a UTF-8 sequence: back off over continuation bytes (at most 3).
    let mut backed = 0;
    while cut > 0 && cut < bytes.len() && backed < 3 && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
        backed += 1;
    }
    format!(
        "{}…[truncated, {} bytes]",
        String::from_utf8_lossy(&bytes[..cut]),
        line.len
    )
}

/// Reads and validates a bar file: every physical line becomes exactly one [`Row`], except
/// blank lines at the very end of the file (tolerated, not counted). Blank lines followed by
/// more data are rejected as [`RejectReason::BlankLine`]. After an I/O error it yields that
/// error once and then ends.
#[derive(Debug)]
pub struct BarReader<R> {
    lines: LineReader<R>,
    validator: Validator,
    /// First line number of the run of blank lines not yet reported (meaningful when
    /// `blank_count > 0`): whether they are rejections depends on whether data follows.
    blank_first: u64,
    /// Length of that run. Kept as a count, so any number of blank lines costs no memory.
    blank_count: u64,
    /// The row after a blank run, held back until the run's rejections are out.
    held: Option<Row>,
    /// An I/O error was reported: the iterator is done.
    failed: bool,
}

impl<R: BufRead> BarReader<R> {
    pub fn new(inner: R, tz: Tz) -> Self {
        Self {
            lines: LineReader::new(inner),
            validator: Validator::new(tz),
            blank_first: 0,
            blank_count: 0,
            held: None,
            failed: false,
        }
    }

    /// Bytes consumed from the input so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }
}

impl<R: BufRead> Iterator for BarReader<R> {
    type Item = std::io::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.held.is_some() && self.blank_count > 0 {
                let line = self.blank_first;
                self.blank_first += 1;
                self.blank_count -= 1;
                return Some(Ok(Row::Rejected(Rejection {
                    line,
                    raw: String::new(),
                    reason: RejectReason::BlankLine,
                    message: "blank line in the middle of the file".into(),
                })));
            }
            if let Some(row) = self.held.take() {
                return Some(Ok(row));
            }
            if self.failed {
                return None;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    // Blank lines at the end of the file are tolerated.
                    self.blank_count = 0;
                    return None;
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            if !line.too_long && is_blank(line.bytes) {
                if self.blank_count == 0 {
                    self.blank_first = line.number;
                }
                self.blank_count += 1;
                continue;
            }
            let row = self.validator.validate(&line);
            if self.blank_count == 0 {
                return Some(Ok(row));
            }
            self.held = Some(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, Utc};
    use std::io::{BufReader, Cursor};

    const NY: Tz = chrono_tz::America::New_York;

    fn rows_of(input: &[u8]) -> Vec<Row> {
        BarReader::new(Cursor::new(input.to_vec()), NY)
            .collect::<std::io::Result<Vec<_>>>()
            .expect("reading memory cannot fail")
    }

    fn bars(input: &str) -> Vec<ValidBar> {
        rows_of(input.as_bytes())
            .into_iter()
            .map(|row| match row {
                Row::Bar(b) => b,
                Row::Rejected(r) => panic!("unexpected rejection {r:?}"),
            })
            .collect()
    }

    fn rejection(row: &Row) -> &Rejection {
        match row {
            Row::Rejected(r) => r,
            Row::Bar(b) => panic!("expected a rejection, got {b:?}"),
        }
    }

    /// The reason the first rejected line of `input` is rejected with.
    fn first_reason(input: &[u8]) -> RejectReason {
        rows_of(input)
            .iter()
            .find_map(|row| match row {
                Row::Rejected(r) => Some(r.reason),
                Row::Bar(_) => None,
            })
            .expect("a rejected line")
    }

    fn utc_millis(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .expect("test timestamp")
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn codes_are_unique_snake_case_and_cover_every_reason() {
        let codes: std::collections::HashSet<_> =
            RejectReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), RejectReason::ALL.len());
        for code in codes {
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
        }
        assert_eq!(RejectReason::HighBelowLow.code(), "high_below_low");
        assert_eq!(RejectReason::HighBelowLow.to_string(), "high_below_low");
    }

    #[test]
    fn accepts_a_firstrate_line_at_its_exact_utc_instant() {
        let got = bars("2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n");
        assert_eq!(got.len(), 1);
        let b = got[0];
        assert_eq!(b.line, 1);
        assert_eq!(b.bar.ts_millis, 1_104_757_200_000);
        assert_eq!(b.local_date, NaiveDate::from_ymd_opt(2005, 1, 3).unwrap());
        assert_eq!(b.bucket.to_string(), "2005-01");
        assert_eq!(
            (b.bar.open, b.bar.high, b.bar.low, b.bar.close, b.bar.volume),
            (0.9911, 0.9911, 0.9839, 0.9839, 19209)
        );
    }

    #[test]
    fn summer_instant_and_minutes_only_format() {
        // EDT is UTC-4.
        let got =
            bars("2024-07-01 09:30,10,11,9,10.5,100\n2024-07-01 09:31:00,10,11,9,10.5,100.0\n");
        assert_eq!(got[0].bar.ts_millis, utc_millis("2024-07-01 13:30:00"));
        assert_eq!(got[1].bar.ts_millis, utc_millis("2024-07-01 13:31:00"));
        assert_eq!(got[1].bar.volume, 100);
    }

    #[test]
    fn bucket_is_the_local_month_even_when_utc_is_the_next_month() {
        // 2024-01-31 20:00 NY is 2024-02-01 01:00 UTC.
        let b = bars("2024-01-31 20:00:00,1,1,1,1,0\n")[0];
        assert_eq!(b.bar.ts_millis, utc_millis("2024-02-01 01:00:00"));
        assert_eq!(b.bucket.to_string(), "2024-01");
    }

    #[test]
    fn crlf_and_bom() {
        let got = bars(
            "\u{FEFF}2024-01-02 04:00:00,1,2,0.5,1.5,7\r\n2024-01-02 04:01:00,1,2,0.5,1.5,8\r\n",
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].bar.volume, 8);
        assert_eq!(got[0].bar.ts_millis, utc_millis("2024-01-02 09:00:00"));
    }

    #[test]
    fn trailing_blank_lines_are_tolerated_but_inner_ones_rejected() {
        let input =
            b"2024-01-02 04:00:00,1,1,1,1,1\n\n  \r\n2024-01-02 04:01:00,1,1,1,1,1\n\n\r\n \n";
        let rows = rows_of(input);
        assert_eq!(rows.iter().map(Row::line).collect::<Vec<_>>(), [1, 2, 3, 4]);
        for row in &rows[1..3] {
            assert_eq!(rejection(row).reason, RejectReason::BlankLine);
        }
        assert!(matches!(rows[3], Row::Bar(_)));
    }

    #[test]
    fn every_reason_has_a_line_that_triggers_it() {
        let ok = "2024-01-02 10:00:00,1,2,0.5,1.5,7";
        let cases: &[(RejectReason, &[u8])] = &[
            (
                RejectReason::BlankLine,
                b"\n\t \n2024-01-02 10:00:00,1,2,0.5,1.5,7\n",
            ),
            (
                RejectReason::InvalidUtf8,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,7\xFF",
            ),
            (
                RejectReason::Binary,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,\x007",
            ),
            (RejectReason::FieldCount, b"2024-01-02 10:00:00,1,2,0.5,1.5"),
            (
                RejectReason::FieldCount,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,7,",
            ),
            (
                RejectReason::BadTimestamp,
                b"2024/01/02 10:00:00,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::BadTimestamp,
                b"2024-02-30 10:00:00,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::BadTimestamp,
                b"2024-01-02 24:00:00,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::BadTimestamp,
                b"2024-01-02 10:00:60,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::BadTimestamp,
                b"2024-01-02T10:00:00,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::BadTimestamp,
                b"2024-01-0x 10:00:00,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::NonexistentLocalTime,
                b"2024-03-10 02:30:00,1,2,0.5,1.5,7",
            ),
            (
                RejectReason::BadNumber,
                b"2024-01-02 10:00:00,1,2,0.5,abc,7",
            ),
            (RejectReason::BadNumber, b"2024-01-02 10:00:00,,2,0.5,1.5,7"),
            (
                RejectReason::BadNumber,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,seven",
            ),
            (
                RejectReason::BadNumber,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,99999999999999999999",
            ),
            (
                RejectReason::NonFinite,
                b"2024-01-02 10:00:00,nan,2,0.5,1.5,7",
            ),
            (
                RejectReason::NonFinite,
                b"2024-01-02 10:00:00,1,inf,0.5,1.5,7",
            ),
            (
                RejectReason::NonFinite,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,NaN",
            ),
            (
                RejectReason::NonFinite,
                b"2024-01-02 10:00:00,1,1e400,0.5,1.5,7",
            ),
            (
                RejectReason::NonPositivePrice,
                b"2024-01-02 10:00:00,0,2,0.5,1.5,7",
            ),
            (
                RejectReason::NonPositivePrice,
                b"2024-01-02 10:00:00,1,2,-0.5,1.5,7",
            ),
            (
                RejectReason::HighBelowLow,
                b"2024-01-02 10:00:00,1,1.2,1.5,1.5,7",
            ),
            (
                RejectReason::OpenOutOfRange,
                b"2024-01-02 10:00:00,3,2,0.5,1.5,7",
            ),
            (
                RejectReason::CloseOutOfRange,
                b"2024-01-02 10:00:00,1,2,0.5,0.4,7",
            ),
            (
                RejectReason::NegativeVolume,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,-7",
            ),
            (
                RejectReason::NegativeVolume,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,-7.5",
            ),
            (
                RejectReason::FractionalVolume,
                b"2024-01-02 10:00:00,1,2,0.5,1.5,1.5",
            ),
        ];
        for (want, input) in cases {
            assert_eq!(
                first_reason(input),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let dup = format!("{ok}\n{ok}\n");
        assert_eq!(
            first_reason(dup.as_bytes()),
            RejectReason::DuplicateTimestamp
        );
        let earlier = format!("{ok}\n2024-01-02 09:59:00,1,2,0.5,1.5,7\n");
        assert_eq!(first_reason(earlier.as_bytes()), RejectReason::OutOfOrder);
        let mut long = vec![b'1'; 5000];
        long.push(b'\n');
        assert_eq!(first_reason(&long), RejectReason::LineTooLong);

        // Each reason above is exercised; make sure no new reason is left without a case.
        let mut covered: std::collections::HashSet<RejectReason> =
            cases.iter().map(|(r, _)| *r).collect();
        covered.extend([
            RejectReason::DuplicateTimestamp,
            RejectReason::OutOfOrder,
            RejectReason::LineTooLong,
        ]);
        assert_eq!(covered.len(), RejectReason::ALL.len());
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let r = rows_of(b"2024-01-02 10:00:00,1.3,1.2,1.5,1.3,7");
        assert_eq!(rejection(&r[0]).message, "high 1.2 is below low 1.5");
        let r = rows_of(b"2024-01-02 10:00:00,1,2,0.5,1.5,7,8");
        assert!(rejection(&r[0]).message.starts_with("7 fields, expected 6"));
    }

    #[test]
    fn duplicates_and_out_of_order_compare_with_the_last_accepted_bar() {
        let rows = rows_of(
            b"2024-01-02 10:01:00,1,2,0.5,1.5,7\n\
              2024-01-02 10:00:00,1,2,0.5,1.5,7\n\
              2024-01-02 10:01:00,1,2,0.5,1.5,7\n\
              2024-01-02 10:02:00,1,2,0.5,5,7\n\
              2024-01-02 10:02:00,1,2,0.5,1.5,7\n",
        );
        let reasons: Vec<_> = rows
            .iter()
            .map(|r| match r {
                Row::Bar(_) => None,
                Row::Rejected(r) => Some(r.reason),
            })
            .collect();
        // The rejected 10:02 row (close out of range) does not count as the last bar.
        assert_eq!(
            reasons,
            [
                None,
                Some(RejectReason::OutOfOrder),
                Some(RejectReason::DuplicateTimestamp),
                Some(RejectReason::CloseOutOfRange),
                None
            ]
        );
    }

    #[test]
    fn spring_forward_2024_in_new_york() {
        let rows = rows_of(
            b"2024-03-10 01:59:00,1,1,1,1,1\n\
              2024-03-10 02:00:00,1,1,1,1,1\n\
              2024-03-10 02:59:00,1,1,1,1,1\n\
              2024-03-10 03:00:00,1,1,1,1,1\n\
              2024-03-11 03:00:00,1,1,1,1,1\n",
        );
        let ts = |i: usize| match &rows[i] {
            Row::Bar(b) => b.bar.ts_millis,
            Row::Rejected(r) => panic!("{r:?}"),
        };
        assert_eq!(ts(0), utc_millis("2024-03-10 06:59:00"));
        assert_eq!(
            rejection(&rows[1]).reason,
            RejectReason::NonexistentLocalTime
        );
        assert_eq!(
            rejection(&rows[2]).reason,
            RejectReason::NonexistentLocalTime
        );
        assert_eq!(ts(3), utc_millis("2024-03-10 07:00:00"));
        assert_eq!(ts(4), utc_millis("2024-03-11 07:00:00"));
    }

    #[test]
    fn fall_back_2024_in_new_york_keeps_timestamps_increasing() {
        let rows = bars(
            "2024-11-03 00:59:00,1,1,1,1,1\n\
             2024-11-03 01:00:00,1,1,1,1,1\n\
             2024-11-03 01:59:00,1,1,1,1,1\n\
             2024-11-03 01:00:00,1,1,1,1,1\n\
             2024-11-03 01:59:00,1,1,1,1,1\n\
             2024-11-03 02:00:00,1,1,1,1,1\n",
        );
        let got: Vec<i64> = rows.iter().map(|b| b.bar.ts_millis).collect();
        assert_eq!(
            got,
            [
                utc_millis("2024-11-03 04:59:00"),
                utc_millis("2024-11-03 05:00:00"), // EDT
                utc_millis("2024-11-03 05:59:00"),
                utc_millis("2024-11-03 06:00:00"), // the repeated hour, EST
                utc_millis("2024-11-03 06:59:00"),
                utc_millis("2024-11-03 07:00:00"),
            ]
        );
        // A file that only has the repeated hour once gets the earlier (EDT) instants.
        let once = bars("2024-11-03 01:30:00,1,1,1,1,1\n");
        assert_eq!(once[0].bar.ts_millis, utc_millis("2024-11-03 05:30:00"));
        // The same local time a third time is a duplicate of the later instant.
        let rows = rows_of(
            b"2024-11-03 01:30:00,1,1,1,1,1\n2024-11-03 01:30:00,1,1,1,1,1\n2024-11-03 01:30:00,1,1,1,1,1\n",
        );
        assert_eq!(rejection(&rows[2]).reason, RejectReason::DuplicateTimestamp);
    }

    #[test]
    fn instants_match_chrono_tz_around_the_clock_for_a_year() {
        let mut input = String::new();
        let mut want = Vec::new();
        let mut t = NaiveDate::from_ymd_opt(2023, 12, 30)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let end = NaiveDate::from_ymd_opt(2025, 1, 2)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        while t < end {
            if let chrono::LocalResult::Single(dt) = NY.from_local_datetime(&t) {
                input.push_str(&format!("{},1,1,1,1,1\n", t.format("%Y-%m-%d %H:%M:%S")));
                want.push(dt.with_timezone(&Utc).timestamp_millis());
            }
            t += chrono::Duration::minutes(37);
        }
        let got: Vec<i64> = bars(&input).iter().map(|b| b.bar.ts_millis).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn one_megabyte_line_is_rejected_with_a_short_raw_text() {
        let mut input = b"2024-01-02 10:00:00,1,1,1,1,1\n".to_vec();
        input.extend(std::iter::repeat_n(b'9', 1 << 20));
        input.extend_from_slice(b"\n2024-01-02 10:01:00,1,1,1,1,1\n");
        let rows: Vec<Row> = BarReader::new(BufReader::with_capacity(1024, &input[..]), NY)
            .collect::<std::io::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 3);
        let r = rejection(&rows[1]);
        assert_eq!((r.line, r.reason), (2, RejectReason::LineTooLong));
        assert!(r.message.contains("1048576 bytes"), "{}", r.message);
        assert!(r.raw.ends_with("…[truncated, 1048576 bytes]"), "{}", r.raw);
        assert!(r.raw.len() < MAX_RAW_BYTES + 40);
        assert!(matches!(rows[2], Row::Bar(_)));
    }

    #[test]
    fn raw_text_is_cut_at_a_character_boundary() {
        let mut text = "é".repeat(300).into_bytes(); // 600 bytes
        text.extend_from_slice(b",1,1,1,1,1");
        let r = rows_of(&text);
        let raw = &rejection(&r[0]).raw;
        assert!(raw.starts_with(&"é".repeat(256)), "{raw}");
        assert!(!raw.contains('\u{FFFD}'));
        assert!(raw.ends_with(&format!("…[truncated, {} bytes]", text.len())));
    }

    #[test]
    fn invalid_utf8_and_binary_lines_keep_a_lossy_raw_text() {
        let rows = rows_of(b"\xFF\xFE,1,1,1,1,1\n\x00\x01\x02\n2024-01-02 10:00:00,1,1,1,1,1\n");
        assert_eq!(rejection(&rows[0]).reason, RejectReason::InvalidUtf8);
        assert_eq!(rejection(&rows[0]).raw, "\u{FFFD}\u{FFFD},1,1,1,1,1");
        assert_eq!(rejection(&rows[1]).reason, RejectReason::Binary);
        assert_eq!(rejection(&rows[1]).raw, "\u{0}\u{1}\u{2}");
        assert!(matches!(rows[2], Row::Bar(_)));
    }

    #[test]
    fn volume_forms() {
        let got = bars(
            "2024-01-02 10:00:00,1,1,1,1,0\n\
             2024-01-02 10:01:00,1,1,1,1,100.0\n\
             2024-01-02 10:02:00,1,1,1,1,1e3\n\
             2024-01-02 10:03:00,1,1,1,1,9223372036854775807\n",
        );
        let v: Vec<i64> = got.iter().map(|b| b.bar.volume).collect();
        assert_eq!(v, [0, 100, 1000, i64::MAX]);
    }

    #[test]
    fn an_io_error_is_reported_once_then_the_reader_ends() {
        struct Broken;
        impl std::io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let mut reader = BarReader::new(BufReader::new(Broken), NY);
        assert!(matches!(reader.next(), Some(Err(_))));
        assert!(reader.next().is_none());
    }
}
