//! Why a row was refused: the stable reason codes, and the rejection the dead-letter log keeps.
//!
//! Model-level because both the source (a line it cannot read) and validation (a record that
//! breaks a rule) reject rows, and accounting counts them by code.

use std::fmt;

/// Most bytes of a rejected line kept in [`Rejection::raw`]: enough to see what went wrong,
/// bounded so a garbage file cannot flood the dead-letter log.
pub const MAX_RAW_BYTES: usize = 512;

/// Why a line was not accepted. The [`code`](Self::code) of each is stable: it is a metric
/// label and appears in the dead-letter log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// A header line whose columns are not the layout's (or a header where the layout has none,
    /// or none where it needs one); with a refused header, every later line of a layout that maps
    /// its columns by the header is refused the same way.
    BadHeader,
    /// Empty or whitespace only, with more data after it (blank lines at the end are tolerated).
    BlankLine,
    /// Longer than the source's line limit (`source::lines::MAX_LINE_BYTES`).
    LineTooLong,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Contains NUL or another control byte (other than tab).
    Binary,
    /// Not exactly six comma-separated fields.
    FieldCount,
    /// Timestamp not `YYYY-MM-DD HH:MM[:SS]`, or no such date or time of day.
    BadTimestamp,
    /// The symbol field of a multi-symbol layout is not a valid symbol.
    BadSymbol,
    /// A local time that the zone skips (spring-forward gap).
    NonexistentLocalTime,
    /// A price or the volume is not a number (or the volume is above 2^53, the largest kept
    /// exactly).
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
    /// Volume with a fractional part, for a bar table whose `volume` column is `bigint` (one
    /// created before fractional volumes were kept).
    FractionalVolume,
    /// Same instant as the last accepted bar of the file (of the same symbol).
    DuplicateTimestamp,
    /// Earlier than the last accepted bar of the file (of the same symbol); in a file whose
    /// times decrease (newest first), later than it.
    OutOfOrder,
    /// A record that says it is no one-minute bar (a Databento `rtype` other than ohlcv-1m):
    /// its whole unit is quarantined `not_one_minute`.
    NotOneMinute,
}

impl RejectReason {
    /// Every reason, in the order checks run (roughly: line, fields, values, order).
    pub const ALL: [RejectReason; 20] = [
        Self::BadHeader,
        Self::BlankLine,
        Self::LineTooLong,
        Self::InvalidUtf8,
        Self::Binary,
        Self::FieldCount,
        Self::BadTimestamp,
        Self::BadSymbol,
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
        Self::NotOneMinute,
    ];

    /// Every reason's code, in the order of [`Self::ALL`] (the metric's known label values).
    pub const CODES: [&'static str; 20] = {
        let mut codes = [""; 20];
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
            Self::BadHeader => "bad_header",
            Self::BlankLine => "blank_line",
            Self::LineTooLong => "line_too_long",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Binary => "binary",
            Self::FieldCount => "field_count",
            Self::BadTimestamp => "bad_timestamp",
            Self::BadSymbol => "bad_symbol",
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
            Self::NotOneMinute => "not_one_minute",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
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

impl Rejection {
    /// A blank line (no raw text kept).
    pub fn blank_line(line: u64) -> Self {
        Self {
            line,
            raw: String::new(),
            reason: RejectReason::BlankLine,
            message: "blank line in the middle of the file".into(),
        }
    }
}

/// A failed check before it is tied to a line: the reason and a message, built only when a
/// check fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    pub reason: RejectReason,
    pub message: String,
}

impl Defect {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The rejection of line `line`, whose text for the dead-letter log is `raw`.
    pub fn at(self, line: u64, raw: String) -> Rejection {
        Rejection {
            line,
            raw,
            reason: self.reason,
            message: self.message,
        }
    }
}

/// A rejected line as text for the dead-letter log: `kept` is the line or the prefix of it that
/// was kept, `full_len` the whole line's length. Lossy UTF-8, cut to [`MAX_RAW_BYTES`] at a
/// character boundary, with `…[truncated, N bytes]` when anything is left out.
pub fn dead_letter_text(kept: &[u8], full_len: u64) -> String {
    if kept.len() as u64 == full_len && kept.len() <= MAX_RAW_BYTES {
        return String::from_utf8_lossy(kept).into_owned();
    }
    let mut cut = kept.len().min(MAX_RAW_BYTES);
    // Do not split a UTF-8 sequence: back off over continuation bytes (at most 3).
    let mut backed = 0;
    while cut > 0 && cut < kept.len() && backed < 3 && (kept[cut] & 0xC0) == 0x80 {
        cut -= 1;
        backed += 1;
    }
    format!(
        "{}…[truncated, {full_len} bytes]",
        String::from_utf8_lossy(&kept[..cut])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(RejectReason::CODES[0], "bad_header");
        assert_eq!(RejectReason::CODES[1], "blank_line");
        assert_eq!(RejectReason::BadSymbol.code(), "bad_symbol");
    }
}
