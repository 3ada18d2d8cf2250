//! Kibot: `MM/DD/YYYY,HH:MM,open,high,low,close,volume` lines, no header, naive exchange-local
//! times, one symbol per file (named by the file).
//!
//! The date is zero-padded `MM/DD/YYYY`, the time `HH:MM` (`HH:MM:SS` is taken too). A header on
//! line 1 is refused as `bad_header`. Index files have no volume: six fields,
//! `MM/DD/YYYY,HH:MM,open,high,low,close`, read as volume 0. A file's first good line fixes its
//! width: a line of the other width after it is a `field_count` rejection (a cut line never loads
//! as volume 0).

use std::io::{self, BufRead};

use chrono::NaiveDateTime;

use super::columns::{self, Fields};
use super::lines::{Line, LineReader};
use super::times;
use super::{BarTime, Parsed, Record, Rejection, Source, Volume, text};
use crate::model::reject::{Defect, RejectReason};

/// The fields of a Kibot line.
const FIELD_COUNT: usize = 7;

/// The fields of a Kibot line without volume (an index).
const FIELD_COUNT_NO_VOLUME: usize = 6;

/// What a Kibot line looks like, for messages.
pub const LINE_FORM: &str = "MM/DD/YYYY,HH:MM,open,high,low,close,volume";

/// Shortest good line, its `\n` included: `01/02/2024,09:30,1,1,1,1` is 24 bytes.
pub const MIN_RECORD_BYTES: u64 = 25;

/// A Kibot file's records, one per physical line.
#[derive(Debug)]
pub struct Kibot<R> {
    lines: LineReader<R>,
    /// Field spans of the current line, reused.
    spans: Vec<(usize, usize)>,
    /// The number of fields of the file's first good line (6: no volume, 7); None before it.
    width: Option<usize>,
}

impl<R: BufRead> Kibot<R> {
    pub fn new(inner: R) -> Self {
        Self {
            lines: LineReader::new(inner),
            spans: Vec::with_capacity(FIELD_COUNT),
            width: None,
        }
    }
}

impl<R: BufRead> Source for Kibot<R> {
    fn next_record(&mut self) -> io::Result<Option<Parsed<'_>>> {
        let Some(line) = self.lines.next_line()? else {
            return Ok(None);
        };
        let parsed = parse_line(&mut self.spans, line);
        if parsed.is_ok() {
            let fields = self.spans.len();
            match self.width {
                None => self.width = Some(fields),
                Some(w) if w != fields => return Ok(Some(Err(other_width(line, fields, w)))),
                Some(_) => {}
            }
        }
        Ok(Some(parsed))
    }

    fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }
}

fn parse_line<'a>(spans: &mut Vec<(usize, usize)>, line: Line<'a>) -> Parsed<'a> {
    if let Some(rejection) = line.unreadable() {
        return Err(rejection);
    }
    let raw = line.raw();
    let reject = |defect: Defect| defect.at(line.number, raw.text());
    if line.number == 1 && columns::looks_like_header(line.bytes) {
        return Err(reject(Defect::new(
            RejectReason::BadHeader,
            format!(
                "line 1 {:?} is a header, but Kibot files have none (expected {LINE_FORM})",
                text::lossy(line.bytes)
            ),
        )));
    }
    columns::split(line.bytes, spans).map_err(reject)?;
    if !matches!(spans.len(), FIELD_COUNT | FIELD_COUNT_NO_VOLUME) {
        return Err(reject(Defect::new(
            RejectReason::FieldCount,
            format!(
                "{} fields, expected {FIELD_COUNT} ({LINE_FORM}), or \
                 {FIELD_COUNT_NO_VOLUME} without volume",
                spans.len()
            ),
        )));
    }
    let f = Fields::new(line.bytes, spans);
    Ok(Record {
        line: line.number,
        raw,
        symbol: None,
        time: time(f.get(0), f.get(1)).map_err(reject)?,
        open: text::parse_price("open", f.get(2)).map_err(reject)?,
        high: text::parse_price("high", f.get(3)).map_err(reject)?,
        low: text::parse_price("low", f.get(4)).map_err(reject)?,
        close: text::parse_price("close", f.get(5)).map_err(reject)?,
        volume: if spans.len() == FIELD_COUNT {
            text::parse_volume(f.get(6)).map_err(reject)?
        } else {
            Volume::Shares(0)
        },
    })
}

/// The rejection of a good line of `fields` fields in a file whose lines have `width`.
fn other_width(line: Line<'_>, fields: usize, width: usize) -> Rejection {
    let form = if width == FIELD_COUNT {
        LINE_FORM
    } else {
        "MM/DD/YYYY,HH:MM,open,high,low,close: no volume"
    };
    Defect::new(
        RejectReason::FieldCount,
        format!("{fields} fields, but the file's lines have {width} ({form})"),
    )
    .at(line.number, line.raw().text())
}

/// The local time of a date field and a time field.
fn time(date: &[u8], clock: &[u8]) -> Result<BarTime, Defect> {
    let date = times::us_date(date).ok_or_else(|| times::bad(date, "a date MM/DD/YYYY"))?;
    let clock = times::time_of_day(clock).ok_or_else(|| times::bad(clock, "a time HH:MM"))?;
    Ok(BarTime::Local(NaiveDateTime::new(date, clock)))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = Result<(u64, BarTime, [f64; 4], Volume), (u64, RejectReason)>;

    fn items(input: &str) -> Vec<Item> {
        let mut source = Kibot::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some(p) = source.next_record().unwrap() {
            out.push(
                p.map(|r| (r.line, r.time, [r.open, r.high, r.low, r.close], r.volume))
                    .map_err(|r| (r.line, r.reason)),
            );
        }
        assert_eq!(source.bytes_read(), input.len() as u64);
        out
    }

    fn local(s: &str) -> BarTime {
        BarTime::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
    }

    #[test]
    fn reads_kibot_lines_as_local_times() {
        let got = items(
            "07/10/2023,09:30,189.84,189.95,189.8,189.9,4930\r\n\
             07/10/2023,09:31:00,1,2,0.5,1.5,200.0\n",
        );
        assert_eq!(
            got,
            [
                Ok((
                    1,
                    local("2023-07-10 09:30:00"),
                    [189.84, 189.95, 189.8, 189.9],
                    Volume::Shares(4930)
                )),
                Ok((
                    2,
                    local("2023-07-10 09:31:00"),
                    [1.0, 2.0, 0.5, 1.5],
                    Volume::Decimal(200.0)
                )),
            ]
        );
    }

    #[test]
    fn rejects_headers_and_each_bad_field() {
        let got = items(
            "Date,Time,Open,High,Low,Close,Volume\n\
             2023-07-10,09:30,1,2,0.5,1.5,7\n\
             07/10/2023,9:30,1,2,0.5,1.5,7\n\
             02/30/2023,09:30,1,2,0.5,1.5,7\n\
             07/10/2023,09:30,1,2,x,1.5,7\n\
             07/10/2023,09:30,1,2,0.5\n\
             \n\
             07/10/2023,09:30,1,2,0.5,1.5,7\n",
        );
        use RejectReason::*;
        let reasons: Vec<_> = got
            .iter()
            .map(|i| i.as_ref().map(|r| r.0).map_err(|r| *r))
            .collect();
        assert_eq!(
            reasons,
            [
                Err((1, BadHeader)),
                Err((2, BadTimestamp)),
                Err((3, BadTimestamp)),
                Err((4, BadTimestamp)),
                Err((5, BadNumber)),
                Err((6, FieldCount)),
                Err((7, BlankLine)),
                Ok(8),
            ]
        );
    }

    #[test]
    fn an_index_file_without_volume_reads_volume_zero_and_keeps_its_width() {
        let got = items(
            "07/10/2023,09:30,4500.5,4501,4500,4500.25\n\
             07/10/2023,09:31,4500.5,4501,4500,4500.25,7\n\
             07/10/2023,09:32,4500.5,4501,4500,4500.25\n",
        );
        assert_eq!(
            got[0],
            Ok((
                1,
                local("2023-07-10 09:30:00"),
                [4500.5, 4501.0, 4500.0, 4500.25],
                Volume::Shares(0)
            ))
        );
        assert_eq!(
            got[1],
            Err((2, RejectReason::FieldCount)),
            "the other width"
        );
        assert!(got[2].is_ok());
        // A file with volumes refuses a line that lost its volume.
        let got = items("07/10/2023,09:30,1,2,0.5,1.5,7\n07/10/2023,09:31,1,2,0.5,1.5\n");
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err((2, RejectReason::FieldCount)));
        assert_eq!("01/02/2024,09:30,1,1,1,1\n".len() as u64, MIN_RECORD_BYTES);
    }
}
