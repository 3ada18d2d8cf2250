//! FirstRate layout: `YYYY-MM-DD HH:MM[:SS],open,high,low,close,volume` lines, no header,
//! naive exchange-local times, one symbol per file (named by the file).
//!
//! Daily files (`_1day_`) have date-only lines, `YYYY-MM-DD,open,high,low,close,volume`: read as
//! the date at 00:00 local. A header on line 1 is refused as `bad_header`.
//!
//! Index files have no volume: five fields, `timestamp,open,high,low,close`, read as volume 0
//! (the store has no "no volume"). A file's first good line fixes its width: a line of the
//! other width after it is a `field_count` rejection (a cut line never loads as volume 0).

use std::io::{self, BufRead};

use super::columns::looks_like_header;
use super::lines::{Line, LineReader, MAX_LINE_BYTES};
use super::text::{self, LocalTimestamps};
use super::{BarTime, Parsed, RawLine, Record, Source, Volume};
use crate::model::reject::{Defect, RejectReason, Rejection};

/// Number of fields in a bar line: timestamp, open, high, low, close, volume.
const FIELD_COUNT: usize = 6;

/// Number of fields in a bar line without a volume (index files).
const FIELD_COUNT_NO_VOLUME: usize = 5;

/// What a bar line looks like, for messages.
pub const LINE_FORM: &str = "YYYY-MM-DD HH:MM[:SS],open,high,low,close,volume";

/// Shortest good line of an intraday file, its `\n` included: five comma-separated fields (no
/// volume), the timestamp exactly 16 bytes (`YYYY-MM-DD HH:MM`) or 19 (`:SS`), each of the four
/// prices at least one byte (an empty field is no number); a volume, surrounding whitespace, a
/// BOM or a `\r` only add bytes. So `2021-03-01 09:30,1,1,1,1` (24 bytes) is the shortest, 25
/// with its `\n`.
pub const MIN_RECORD_BYTES: u64 = 25;

/// The same for a daily file: `2021-03-01,1,1,1,1` and its `\n`.
pub const MIN_DAILY_RECORD_BYTES: u64 = 19;

/// A FirstRate file's records, one per physical line. `DAILY`: a daily file, whose lines hold a
/// date instead of a date and time (a type parameter, so the one-minute path tests nothing).
#[derive(Debug)]
pub struct FirstRate<R, const DAILY: bool = false> {
    lines: LineReader<R>,
    /// Timestamp parser state (the last date seen).
    timestamps: LocalTimestamps,
    /// The number of fields of the file's first good line (5: no volume, 6); None before it.
    width: Option<usize>,
}

/// A daily FirstRate file (`_1day_`): `YYYY-MM-DD,open,high,low,close,volume`.
pub type FirstRateDaily<R> = FirstRate<R, true>;

impl<R: BufRead> FirstRate<R> {
    /// A one-minute (or any intraday) file.
    pub fn new(inner: R) -> Self {
        Self::reading(inner)
    }
}

impl<R: BufRead> FirstRateDaily<R> {
    /// A daily file.
    pub fn daily(inner: R) -> Self {
        Self::reading(inner)
    }
}

impl<R: BufRead, const DAILY: bool> FirstRate<R, DAILY> {
    fn reading(inner: R) -> Self {
        Self {
            lines: LineReader::new(inner),
            timestamps: LocalTimestamps::default(),
            width: None,
        }
    }
}

impl<R: BufRead, const DAILY: bool> Source for FirstRate<R, DAILY> {
    #[inline]
    fn next_record(&mut self) -> io::Result<Option<Parsed<'_>>> {
        let Some(line) = self.lines.next_line()? else {
            return Ok(None);
        };
        Ok(Some(parse_line::<DAILY>(
            &mut self.timestamps,
            &mut self.width,
            line,
        )))
    }

    fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }
}

/// A rejection of line 1 that is a header: refused as `bad_header` instead of its first field's
/// defect (the file is not the layout it was taken for, or has a header it should not have).
#[cold]
fn header_check(rejection: Rejection) -> Rejection {
    if rejection.line != 1 || !looks_like_header(rejection.raw.as_bytes()) {
        return rejection;
    }
    Rejection {
        reason: RejectReason::BadHeader,
        message: format!(
            "line 1 {:?} is a header, but FirstRate files have none (expected {LINE_FORM})",
            rejection.raw
        ),
        ..rejection
    }
}

/// One line into a record, or the rejection of the line. `width` is the file's width, set by
/// its first good line.
#[inline]
fn parse_line<'a, const DAILY: bool>(
    timestamps: &mut LocalTimestamps,
    width: &mut Option<usize>,
    line: Line<'a>,
) -> Parsed<'a> {
    let raw = RawLine {
        kept: line.bytes,
        len: line.len,
    };
    if line.too_long {
        return Err(Rejection {
            line: line.number,
            raw: raw.text(),
            reason: RejectReason::LineTooLong,
            message: format!(
                "line is {} bytes, longer than the limit of {MAX_LINE_BYTES}",
                line.len
            ),
        });
    }
    if text::is_blank(line.bytes) {
        return Err(Rejection::blank_line(line.number));
    }
    let reject = |defect: Defect| header_check(defect.at(line.number, raw.text()));
    let ([time, open, high, low, close, volume], fields) =
        split_fields(line.bytes).map_err(reject)?;
    let record = Record {
        line: line.number,
        raw,
        symbol: None,
        time: BarTime::Local(if DAILY {
            timestamps.parse_date(time).map_err(reject)?
        } else {
            timestamps.parse(time).map_err(reject)?
        }),
        open: text::parse_price("open", open).map_err(reject)?,
        high: text::parse_price("high", high).map_err(reject)?,
        low: text::parse_price("low", low).map_err(reject)?,
        close: text::parse_price("close", close).map_err(reject)?,
        volume: if fields == FIELD_COUNT {
            text::parse_volume(volume).map_err(reject)?
        } else {
            Volume::Shares(0)
        },
    };
    match *width {
        None => *width = Some(fields),
        Some(w) if w != fields => {
            return Err(reject(Defect::new(
                RejectReason::FieldCount,
                format!(
                    "{fields} fields, but the file's lines have {w} ({})",
                    if w == FIELD_COUNT {
                        "timestamp,open,high,low,close,volume"
                    } else {
                        "timestamp,open,high,low,close: no volume"
                    }
                ),
            )));
        }
        Some(_) => {}
    }
    Ok(record)
}

/// Checks the line is UTF-8 text without control bytes and cuts it into its six
/// comma-separated fields (or five, the volume then empty), each trimmed of surrounding ASCII
/// whitespace; with the number of fields. One pass over the bytes for a plain ASCII line (the
/// common case); the UTF-8 and control-byte checks only run when that pass saw something else.
#[inline]
fn split_fields(bytes: &[u8]) -> Result<([&[u8]; FIELD_COUNT], usize), Defect> {
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
        text::check_text(bytes)?;
    }
    if count == FIELD_COUNT_NO_VOLUME - 1 {
        let [c0, c1, c2, c3, _] = commas;
        let fields = [
            &bytes[..c0],
            &bytes[c0 + 1..c1],
            &bytes[c1 + 1..c2],
            &bytes[c2 + 1..c3],
            &bytes[c3 + 1..],
            &[][..],
        ];
        return Ok((fields.map(<[u8]>::trim_ascii), FIELD_COUNT_NO_VOLUME));
    }
    if count != FIELD_COUNT - 1 {
        return Err(Defect::new(
            RejectReason::FieldCount,
            format!(
                "{} fields, expected {FIELD_COUNT} (timestamp,open,high,low,close,volume) or \
                 {FIELD_COUNT_NO_VOLUME} without the volume",
                count + 1
            ),
        ));
    }
    let [c0, c1, c2, c3, c4] = commas;
    let fields = [
        &bytes[..c0],
        &bytes[c0 + 1..c1],
        &bytes[c1 + 1..c2],
        &bytes[c2 + 1..c3],
        &bytes[c3 + 1..c4],
        &bytes[c4 + 1..],
    ];
    Ok((fields.map(<[u8]>::trim_ascii), FIELD_COUNT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    /// A record as (line, time, volume); a rejection as (line, reason, raw text).
    type Item = Result<(u64, BarTime, Volume), (u64, RejectReason, String)>;

    /// Every item of `input`.
    fn items(input: &[u8]) -> Vec<Item> {
        let mut source = FirstRate::new(input);
        let mut out = Vec::new();
        while let Some(item) = source.next_record().expect("reading memory cannot fail") {
            out.push(
                item.map(|r| (r.line, r.time, r.volume))
                    .map_err(|r| (r.line, r.reason, r.raw)),
            );
        }
        assert_eq!(source.bytes_read(), input.len() as u64);
        out
    }

    fn local(s: &str) -> BarTime {
        BarTime::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test time"))
    }

    #[test]
    fn yields_local_records_with_line_numbers() {
        let mut source = FirstRate::new(
            &b"2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\r\n2005-01-03 08:01,1,2,0.5,1.5,7.0\n"[..],
        );
        let first = source.next_record().unwrap().unwrap().unwrap();
        assert_eq!(first.line, 1);
        assert_eq!(first.symbol, None);
        assert_eq!(first.time, local("2005-01-03 08:00:00"));
        assert_eq!(
            (first.open, first.high, first.low, first.close),
            (0.9911, 0.9911, 0.9839, 0.9839)
        );
        assert_eq!(first.volume, Volume::Shares(19209));
        assert_eq!(
            first.raw.text(),
            "2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209"
        );
        let second = source.next_record().unwrap().unwrap().unwrap();
        assert_eq!(
            (second.line, second.time, second.volume),
            (2, local("2005-01-03 08:01:00"), Volume::Decimal(7.0))
        );
        assert!(source.next_record().unwrap().is_none());
    }

    #[test]
    fn rejects_what_it_cannot_read_with_the_raw_text() {
        let got = items(
            b"2024-01-02 10:00:00,1,2,0.5,1.5,7\n\
              \n\
              2024-01-02 10:01:00,1,2\n\
              2024-13-02 10:02:00,1,2,0.5,1.5,7\n\
              2024-01-02 10:03:00,1,x,0.5,1.5,7\n\
              \xFF\n\
              2024-01-02 10:04:00,1,0.5,2,1.5,-7\n",
        );
        let want = vec![
            Ok((1, local("2024-01-02 10:00:00"), Volume::Shares(7))),
            Err((2, RejectReason::BlankLine, String::new())),
            Err((
                3,
                RejectReason::FieldCount,
                "2024-01-02 10:01:00,1,2".into(),
            )),
            Err((
                4,
                RejectReason::BadTimestamp,
                "2024-13-02 10:02:00,1,2,0.5,1.5,7".into(),
            )),
            Err((
                5,
                RejectReason::BadNumber,
                "2024-01-02 10:03:00,1,x,0.5,1.5,7".into(),
            )),
            Err((6, RejectReason::InvalidUtf8, "\u{FFFD}".into())),
            // Rules (high below low, negative volume) are validation's: the source reads it.
            Ok((7, local("2024-01-02 10:04:00"), Volume::Shares(-7))),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_header_on_line_1_is_a_bad_header_elsewhere_a_bad_timestamp() {
        let header = "timestamp,open,high,low,close,volume";
        let got = items(format!("{header}\n{header}\n").as_bytes());
        assert_eq!(
            got,
            [
                Err((1, RejectReason::BadHeader, header.into())),
                Err((2, RejectReason::BadTimestamp, header.into())),
            ]
        );
        let mut source = FirstRate::new(&b"Date,Open\n"[..]);
        let message = source.next_record().unwrap().unwrap().unwrap_err().message;
        assert!(
            message.contains("\"Date,Open\" is a header") && message.contains(LINE_FORM),
            "{message}"
        );
        // A bad first line that is no header keeps its own reason.
        assert_eq!(
            items(b"2024-13-02 10:02:00,1,2,0.5,1.5,7\n")[0],
            Err((
                1,
                RejectReason::BadTimestamp,
                "2024-13-02 10:02:00,1,2,0.5,1.5,7".into()
            ))
        );
    }

    #[test]
    fn daily_files_read_dates_as_midnight_and_refuse_times() {
        let input = b"2024-01-02,1,2,0.5,1.5,7\n2024-01-03 10:00:00,1,2,0.5,1.5,7\n";
        let mut source = FirstRateDaily::daily(&input[..]);
        let first = source.next_record().unwrap().unwrap().unwrap();
        assert_eq!(first.time, local("2024-01-02 00:00:00"));
        let second = source.next_record().unwrap().unwrap().unwrap_err();
        assert_eq!(second.reason, RejectReason::BadTimestamp);
        // A minute file refuses a date-only line.
        assert_eq!(
            items(input)[0].as_ref().unwrap_err().1,
            RejectReason::BadTimestamp
        );
        assert_eq!("2021-03-01,1,1,1,1\n".len() as u64, MIN_DAILY_RECORD_BYTES);
        assert_eq!("2021-03-01 09:30,1,1,1,1\n".len() as u64, MIN_RECORD_BYTES);
    }

    #[test]
    fn an_over_long_line_is_rejected_with_a_cut_raw_text() {
        let mut input = vec![b'9'; 10_000];
        input.push(b'\n');
        let got = items(&input);
        let Err((1, RejectReason::LineTooLong, raw)) = &got[0] else {
            panic!("{got:?}");
        };
        assert!(raw.ends_with("…[truncated, 10000 bytes]"), "{raw}");
    }

    #[test]
    fn index_lines_without_a_volume_read_as_volume_0_and_the_first_fixes_the_width() {
        let got = items(
            b"2024-01-02 10:00:00,1,2,0.5,1.5\n\
              2024-01-02 10:01:00,1,2,0.5,1.5,7\n\
              2024-01-02 10:02:00,1,2,0.5,1.5\n",
        );
        assert_eq!(
            got[0],
            Ok((1, local("2024-01-02 10:00:00"), Volume::Shares(0)))
        );
        assert_eq!(
            got[1],
            Err((
                2,
                RejectReason::FieldCount,
                "2024-01-02 10:01:00,1,2,0.5,1.5,7".into()
            ))
        );
        assert_eq!(
            got[2],
            Ok((3, local("2024-01-02 10:02:00"), Volume::Shares(0)))
        );
        // A file of six fields refuses a cut line of five, saying why.
        let mut source = FirstRate::new(
            &b"2024-01-02 10:00:00,1,2,0.5,1.5,7\n2024-01-02 10:01:00,1,2,0.5,1.5\n"[..],
        );
        assert!(source.next_record().unwrap().unwrap().is_ok());
        let cut = source.next_record().unwrap().unwrap().unwrap_err();
        assert_eq!(cut.reason, RejectReason::FieldCount);
        assert!(
            cut.message.contains("the file's lines have 6"),
            "{}",
            cut.message
        );
        // A bad first line fixes nothing; daily index files too.
        let got = items(b"2024-01-02 10:00:00,1,2\n2024-01-02 10:01:00,1,2,0.5,1.5\n");
        assert!(got[1].is_ok(), "{got:?}");
        let mut daily = FirstRateDaily::daily(&b"2024-01-02,1,2,0.5,1.5\n"[..]);
        let first = daily.next_record().unwrap().unwrap().unwrap();
        assert_eq!(first.volume, Volume::Shares(0));
    }
}
