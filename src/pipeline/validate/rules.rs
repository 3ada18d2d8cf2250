//! Rules: what makes a record's values a bar (finite positive prices, `low <= open,close <=
//! high`, a whole non-negative volume) and its time acceptable (strictly after the last accepted
//! bar of the same symbol).

use std::collections::HashMap;

use crate::model::Symbol;
use crate::model::reject::{Defect, RejectReason};
use crate::source::{Record, Volume};

/// 2^63, the first f64 past `i64::MAX`: every integral f64 below it converts exactly.
const I64_LIMIT_AS_F64: f64 = 9_223_372_036_854_775_808.0;

/// Checks a record's prices and volume; the volume in shares when they pass. The order of the
/// checks decides which reason a line with several faults gets: finiteness (and a volume too
/// large for 64 bits), then positive prices, high/low, open, close, then the volume's sign and
/// fractional part.
#[inline]
pub fn check_values(r: &Record<'_>) -> Result<i64, Defect> {
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
    check_volume(volume)
}

/// A volume as a number the next checks can judge: a non-finite or too large decimal is
/// rejected here (before the price rules, as the text parser always did).
#[inline]
fn check_volume_range(volume: Volume) -> Result<Volume, Defect> {
    if let Volume::Decimal(v) = volume {
        if !v.is_finite() {
            return Err(Defect::new(
                RejectReason::NonFinite,
                format!("volume {v} is not a finite number"),
            ));
        }
        if v >= I64_LIMIT_AS_F64 {
            return Err(Defect::new(
                RejectReason::BadNumber,
                format!("volume {v} is too large"),
            ));
        }
    }
    Ok(volume)
}

/// The volume's sign and whole-number rules; the shares when they pass.
#[inline]
fn check_volume(volume: Volume) -> Result<i64, Defect> {
    let negative = |shown: String| {
        Defect::new(
            RejectReason::NegativeVolume,
            format!("volume {shown} is negative"),
        )
    };
    match volume {
        Volume::Shares(v) if v < 0 => Err(negative(v.to_string())),
        Volume::Shares(v) => Ok(v),
        Volume::Decimal(v) if v < 0.0 => Err(negative(v.to_string())),
        Volume::Decimal(v) if v.fract() != 0.0 => Err(Defect::new(
            RejectReason::FractionalVolume,
            format!("volume {v} is not a whole number"),
        )),
        // Finite, non-negative, integral and below 2^63 (checked above): the conversion is exact.
        Volume::Decimal(v) => Ok(v as i64),
    }
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
