//! Reader: a [`Source`] chained into validated [`Row`]s, one per record, with the blank-line
//! policy (blank lines before more data are rejected, blank lines at the end are tolerated).

use std::io::{self, BufRead};

use chrono_tz::Tz;

use super::{Row, Validator};
use crate::model::reject::{RejectReason, Rejection};
use crate::source::Source;
use crate::source::firstrate::FirstRate;

/// Reads and validates a delivery: every record becomes exactly one [`Row`], except blank
/// lines at the very end of the file (tolerated, not counted). Blank lines followed by more
/// data are rejected as [`RejectReason::BlankLine`]. After an I/O error it yields that error
/// once and then ends.
#[derive(Debug)]
pub struct BarReader<S> {
    source: S,
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

impl<R: BufRead> BarReader<FirstRate<R>> {
    /// A reader of a FirstRate-layout file whose times are local to `tz`.
    pub fn new(inner: R, tz: Tz) -> Self {
        Self::from_source(FirstRate::new(inner), tz)
    }
}

impl<S: Source> BarReader<S> {
    /// A reader of any layout: `source` yields its records, local times are resolved in `tz`.
    pub fn from_source(source: S, tz: Tz) -> Self {
        Self::with_validator(source, Validator::new(tz))
    }

    /// A reader of any layout, checked by `validator`.
    pub fn with_validator(source: S, validator: Validator) -> Self {
        Self {
            source,
            validator,
            blank_first: 0,
            blank_count: 0,
            held: None,
            failed: false,
        }
    }

    /// Bytes consumed from the input so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
    }
}

impl<S: Source> Iterator for BarReader<S> {
    type Item = io::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.held.is_some() && self.blank_count > 0 {
                let line = self.blank_first;
                self.blank_first += 1;
                self.blank_count -= 1;
                return Some(Ok(Row::Rejected(Rejection::blank_line(line))));
            }
            if let Some(row) = self.held.take() {
                return Some(Ok(row));
            }
            if self.failed {
                return None;
            }
            let row = match self.source.next_record() {
                Ok(Some(Ok(record))) => self.validator.validate(record),
                Ok(Some(Err(blank))) if blank.reason == RejectReason::BlankLine => {
                    if self.blank_count == 0 {
                        self.blank_first = blank.line;
                    }
                    self.blank_count += 1;
                    continue;
                }
                Ok(Some(Err(rejection))) => Row::Rejected(rejection),
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
            if self.blank_count == 0 {
                return Some(Ok(row));
            }
            self.held = Some(row);
        }
    }
}
