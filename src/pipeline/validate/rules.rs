//! Rules: what makes a record's values a bar (finite positive prices, `low <= open,close <=
//! high`, a finite non-negative volume, whole where the table stores whole volumes) and its time
//! acceptable (strictly after the last accepted bar of the same symbol).

use std::collections::HashMap;

use crate::model::reject::{Defect, RejectReason};
use crate::model::{MAX_VOLUME, Symbol, VolumeColumn};
use crate::source::{Record, Volume};

/// Checks a record's prices and volume; the volume as stored when they pass. The order of the
/// checks decides which reason a line with several faults gets: finiteness (and a volume too
/// large to keep exactly), then positive prices, high/low, open, close, then the volume's sign
/// and, for a `bigint` column, its fractional part.
#[inline]
pub fn check_values(r: &Record<'_>, column: VolumeColumn) -> Result<f64, Defect> {
    let prices = [
        ("open", r.open),
        ("high", r.high),
        ("low", r.low),
        ("close", r.close),
    ];
    for (name, value) in prices {
        if !value.is_finite() {
            return Err(Defect::new(
                RejectReason::NonFinite,
                format!("{name} {value} is not a finite number"),
            ));
        }
    }
    let volume = check_volume_range(r.volume)?;
    for (name, value) in prices {
        if value <= 0.0 {
            return Err(Defect::new(
                RejectReason::NonPositivePrice,
                format!("{name} {value} is not above zero"),
            ));
        }
    }
    let (open, high, low, close) = (r.open, r.high, r.low, r.close);
    if high < low {
        return Err(Defect::new(
            RejectReason::HighBelowLow,
            format!("high {high} is below low {low}"),
        ));
    }
    if !(low..=high).contains(&open) {
        return Err(Defect::new(
            RejectReason::OpenOutOfRange,
            format!("open {open} is outside low {low} .. high {high}"),
        ));
    }
    if !(low..=high).contains(&close) {
        return Err(Defect::new(
            RejectReason::CloseOutOfRange,
            format!("close {close} is outside low {low} .. high {high}"),
        ));
    }
    check_volume(volume, column)
}

/// The volume as the `f64` it is stored as: the integer exactly, the decimal text as the
/// nearest `f64` (which prints back as the same text up to 15 significant digits). A
/// non-finite volume, or one above [`MAX_VOLUME`] (an integer beyond it would be stored
/// rounded), is rejected here, before the price rules (as the text parser always did).
#[inline]
fn check_volume_range(volume: Volume) -> Result<f64, Defect> {
    let too_large = |shown: String| {
        Defect::new(
            RejectReason::BadNumber,
            format!(
                "volume {shown} is too large: above 2^53 ({}), the largest kept exactly",
                MAX_VOLUME as u64
            ),
        )
    };
    match volume {
        Volume::Shares(v) if v > MAX_VOLUME as i64 => Err(too_large(v.to_string())),
        // Not above 2^53 (a negative one is rejected later): the conversion is exact.
        Volume::Shares(v) => Ok(v as f64),
        Volume::Decimal(v) if !v.is_finite() => Err(Defect::new(
            RejectReason::NonFinite,
            format!("volume {v} is not a finite number"),
        )),
        Volume::Decimal(v) if v > MAX_VOLUME => Err(too_large(v.to_string())),
        Volume::Decimal(v) => Ok(v),
    }
}

/// The volume's sign, and for a `bigint` column its fractional part; the volume when they pass.
#[inline]
fn check_volume(v: f64, column: VolumeColumn) -> Result<f64, Defect> {
    if v < 0.0 {
        return Err(Defect::new(
            RejectReason::NegativeVolume,
            format!("volume {v} is negative"),
        ));
    }
    if column == VolumeColumn::BigInt && v.fract() != 0.0 {
        return Err(Defect::new(
            RejectReason::FractionalVolume,
            format!(
                "volume {v} is not a whole number, and the bar table's `volume` column is \
                 `bigint`: it stores whole volumes only (a table created by an older version; \
                 nothing was truncated)"
            ),
        ));
    }
    // `-0.0` (written `-0`) is zero shares.
    Ok(v + 0.0)
}

/// Which way a file's times run: learned from the first two distinct times of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Not known yet (fewer than two bars of any symbol).
    #[default]
    Unknown,
    /// Oldest first (the usual order).
    Rising,
    /// Newest first (Alpha Vantage writes whole files so).
    Falling,
}

/// The last accepted instant of each symbol in a file: bars must strictly increase per symbol,
/// or strictly decrease in a file whose first two times of a symbol decrease (newest first).
#[derive(Debug, Clone, Default)]
pub struct LastBars {
    /// For records without a symbol (the file's one symbol): the common case, kept out of the map.
    file: Option<i64>,
    /// For records that name their symbol (multi-symbol layouts).
    by_symbol: HashMap<Symbol, i64>,
    /// The file's direction, one for all its symbols.
    direction: Direction,
}

impl LastBars {
    /// The last accepted instant (UTC millis) of `symbol` (None = the file's symbol).
    #[inline]
    pub fn last(&self, symbol: Option<&Symbol>) -> Option<i64> {
        match symbol {
            None => self.file,
            Some(s) => self.by_symbol.get(s).copied(),
        }
    }

    /// The file's direction so far.
    #[inline]
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Accepts `millis` as the next bar of `symbol` if it comes after the last accepted one in
    /// the file's direction (the first two distinct times of a symbol set the direction);
    /// else a duplicate or out-of-order rejection. `shown` renders the record's time for the
    /// message (only called on a rejection).
    #[inline]
    pub fn advance(
        &mut self,
        symbol: Option<&Symbol>,
        millis: i64,
        shown: impl FnOnce() -> String,
    ) -> Result<(), Defect> {
        let last = self.last(symbol);
        if let (Some(last), Direction::Unknown) = (last, self.direction) {
            if millis > last {
                self.direction = Direction::Rising;
            } else if millis < last {
                self.direction = Direction::Falling;
            }
        }
        match last {
            Some(last) if millis == last => Err(Defect::new(
                RejectReason::DuplicateTimestamp,
                format!("{} repeats the previous bar's time", shown()),
            )),
            Some(last) if millis < last && self.direction == Direction::Rising => Err(Defect::new(
                RejectReason::OutOfOrder,
                format!(
                    "{} is earlier than the previous bar (rows must be in time order)",
                    shown()
                ),
            )),
            Some(last) if millis > last && self.direction == Direction::Falling => {
                Err(Defect::new(
                    RejectReason::OutOfOrder,
                    format!(
                        "{} is later than the previous bar (the file runs newest first, so \
                         every row must be earlier than the one before it)",
                        shown()
                    ),
                ))
            }
            _ => {
                match symbol {
                    None => self.file = Some(millis),
                    Some(s) => match self.by_symbol.get_mut(s) {
                        Some(last) => *last = millis,
                        None => {
                            self.by_symbol.insert(s.clone(), millis);
                        }
                    },
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_per_symbol() {
        let (a, b) = (Symbol::new("A"), Symbol::new("B"));
        let mut last = LastBars::default();
        let shown = || String::from("t");
        assert!(last.advance(a.as_ref(), 9, shown).is_ok());
        assert!(last.advance(b.as_ref(), 5, shown).is_ok());
        assert!(last.advance(None, 1, shown).is_ok());
        assert!(last.advance(a.as_ref(), 10, shown).is_ok());
        let reason = |r: Result<(), Defect>| r.unwrap_err().reason;
        assert_eq!(
            reason(last.advance(a.as_ref(), 10, shown)),
            RejectReason::DuplicateTimestamp
        );
        assert_eq!(
            reason(last.advance(b.as_ref(), 4, shown)),
            RejectReason::OutOfOrder
        );
        assert!(last.advance(b.as_ref(), 6, shown).is_ok());
        assert_eq!(last.last(a.as_ref()), Some(10));
        assert_eq!(last.last(b.as_ref()), Some(6));
        assert_eq!(last.last(None), Some(1));
        assert_eq!(last.direction(), Direction::Rising);
    }

    #[test]
    fn a_file_whose_first_two_times_fall_must_keep_falling() {
        let mut last = LastBars::default();
        let shown = || String::from("t");
        let reason = |r: Result<(), Defect>| r.unwrap_err().reason;
        assert!(last.advance(None, 10, shown).is_ok());
        assert_eq!(
            reason(last.advance(None, 10, shown)),
            RejectReason::DuplicateTimestamp
        );
        assert_eq!(last.direction(), Direction::Unknown);
        assert!(last.advance(None, 9, shown).is_ok());
        assert_eq!(last.direction(), Direction::Falling);
        assert!(last.advance(None, 5, shown).is_ok());
        let later = last.advance(None, 7, shown).unwrap_err();
        assert_eq!(later.reason, RejectReason::OutOfOrder);
        assert!(later.message.contains("newest first"), "{}", later.message);
        assert!(last.advance(None, 4, shown).is_ok());
        // One direction for every symbol of the file.
        let a = Symbol::new("A");
        assert!(last.advance(a.as_ref(), 1, shown).is_ok());
        assert_eq!(
            reason(last.advance(a.as_ref(), 2, shown)),
            RejectReason::OutOfOrder
        );
    }
}
