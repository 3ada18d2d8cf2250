//! The NYSE trading calendar: trading days, holidays and early closes. (stub: being written)

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};

/// Whether NYSE trades on `date` (stub: weekdays only until the holiday rules land).
pub fn is_trading_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The early close time of `date` (13:00 on NYSE half days), or None on a full day.
pub fn early_close(_date: NaiveDate) -> Option<NaiveTime> {
    None
}
