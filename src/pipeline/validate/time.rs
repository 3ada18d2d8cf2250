//! Time: a record's [`BarTime`] into its UTC instant and exchange-local date, by the exchange
//! zone's rules (spring-forward gaps rejected, fall-back hours resolved to keep the file's times
//! running its way: increasing, or decreasing in a newest-first file).
//!
//! The hot path allocates nothing: the zone offset is cached per local hour (and per UTC hour
//! for UTC records). Rows are sorted, so one entry serves about sixty rows. Hours in which the
//! offset changes (DST transitions) are never cached: each of their rows is resolved on its own.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;

use super::rules::Direction;
use crate::model::reject::{Defect, RejectReason};
use crate::source::BarTime;

/// The last accepted instant of the record's symbol (UTC millis) and the file's direction: what
/// resolves an ambiguous local time.
pub type Previous = (i64, Direction);

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

const SECONDS_PER_DAY: i64 = 86_400;
const SECONDS_PER_HOUR: i64 = 3_600;
const MILLIS_PER_SECOND: i64 = 1_000;
/// A one-minute bar's length: an end-stamped bar opened this much before its stamp.
const MILLIS_PER_MINUTE: i64 = 60_000;

/// Where a bar falls: its UTC instant and the exchange-local date of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Milliseconds since the Unix epoch, UTC.
    pub millis: i64,
    /// The exchange-local date (what buckets and sessions go by).
    pub local_date: NaiveDate,
}

/// One local hour of the zone.
#[derive(Debug, Clone, Copy)]
struct LocalHour {
    date: NaiveDate,
    hour: u32,
    /// The UTC instant (millis) of the hour's first second when the whole hour has one offset;
    /// None for an hour with a transition in it (each row then resolved on its own).
    utc_millis: Option<i64>,
}

/// Seconds from the Unix epoch to the start of `date`, as if the date were in UTC.
fn local_epoch_seconds(date: NaiveDate) -> i64 {
    (i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE) * SECONDS_PER_DAY
}

/// Resolves times in one exchange zone, remembering recent offsets.
#[derive(Debug, Clone)]
pub struct ExchangeClock {
    /// The exchange's zone.
    tz: Tz,
    /// The last local hour seen and where it starts in UTC.
    local_hour: Option<LocalHour>,
    /// The UTC offset (seconds) of one UTC hour (hours since the epoch), when it is the same
    /// for the whole hour; `None` for an hour with a transition in it.
    utc_hour: Option<(i64, Option<i32>)>,
    /// The clock of the zone naive times are written in, when it is not the exchange's (a
    /// vendor writing UTC or Chicago wall times): it turns them into instants, and this clock
    /// gives their exchange-local date.
    naive: Option<Box<ExchangeClock>>,
}

impl ExchangeClock {
    pub fn new(tz: Tz) -> Self {
        Self {
            tz,
            local_hour: None,
            utc_hour: None,
            naive: None,
        }
    }

    /// A clock of the exchange zone `exchange` for naive times written in `naive`.
    pub fn with_naive_zone(exchange: Tz, naive: Tz) -> Self {
        let mut clock = Self::new(exchange);
        if naive != exchange {
            clock.naive = Some(Box::new(Self::new(naive)));
        }
        clock
    }

    /// The instant and local date of `time`. `last` is the last accepted instant of the same
    /// symbol and the file's direction: an ambiguous local time (fall-back) is the earlier
    /// instant unless that would not come after `last`, then the later one; in a newest-first
    /// file the later unless that would not come before `last`; while the direction is not known,
    /// the one nearer `last` (other than `last` itself). A local time in a gap is rejected.
    #[inline]
    pub fn place(&mut self, time: BarTime, last: Option<Previous>) -> Result<Placed, Defect> {
        match time {
            BarTime::Local(local) if self.naive.is_some() => {
                let naive = self.naive.as_deref_mut().expect("checked above");
                let millis = naive.local_to_utc(local, last)?;
                Ok(Placed {
                    millis,
                    local_date: self.local_date_of(millis)?,
                })
            }
            BarTime::Local(local) => Ok(Placed {
                millis: self.local_to_utc(local, last)?,
                local_date: local.date(),
            }),
            BarTime::Utc(millis) => Ok(Placed {
                millis,
                local_date: self.local_date_of(millis)?,
            }),
        }
    }

    /// The open of a one-minute bar stamped at its end: `time` placed as the bar's end (against
    /// `last`, the last accepted open, moved to its end), then one minute earlier, with the
    /// local date of that open (a bar stamped 00:00 opened the day before). Placing the end
    /// first keeps DST right: the bar stamped 03:00 on a spring-forward day opened at 01:59.
    #[inline]
    pub fn place_end(&mut self, time: BarTime, last: Option<Previous>) -> Result<Placed, Defect> {
        let last_end =
            last.map(|(at, direction)| (at.saturating_add(MILLIS_PER_MINUTE), direction));
        let end = self.place(time, last_end)?;
        let millis = end.millis.saturating_sub(MILLIS_PER_MINUTE);
        Ok(Placed {
            millis,
            local_date: self.local_date_of(millis)?,
        })
    }

    #[inline]
    fn local_to_utc(
        &mut self,
        local: NaiveDateTime,
        last: Option<Previous>,
    ) -> Result<i64, Defect> {
        let date = local.date();
        let seconds_of_day = i64::from(local.num_seconds_from_midnight());
        let hour = (seconds_of_day / SECONDS_PER_HOUR) as u32;
        let seconds_of_hour = seconds_of_day % SECONDS_PER_HOUR;
        let hour_start = match self.local_hour {
            Some(cached) if cached.date == date && cached.hour == hour => cached.utc_millis,
            _ => {
                let utc_millis = uniform_local_hour_offset(self.tz, date, hour).map(|offset| {
                    (local_epoch_seconds(date) + i64::from(hour) * SECONDS_PER_HOUR
                        - i64::from(offset))
                        * MILLIS_PER_SECOND
                });
                self.local_hour = Some(LocalHour {
                    date,
                    hour,
                    utc_millis,
                });
                utc_millis
            }
        };
        if let Some(start) = hour_start {
            return Ok(start + seconds_of_hour * MILLIS_PER_SECOND);
        }
        let local_seconds = local_epoch_seconds(date) + seconds_of_day;
        let at = |offset: i32| (local_seconds - i64::from(offset)) * MILLIS_PER_SECOND;
        // An hour with a transition in it: resolve this row on its own.
        match self.tz.offset_from_local_datetime(&local) {
            chrono::LocalResult::Single(o) => Ok(at(o.fix().local_minus_utc())),
            chrono::LocalResult::Ambiguous(a, b) => {
                let (x, y) = (at(a.fix().local_minus_utc()), at(b.fix().local_minus_utc()));
                let (earlier, later) = (x.min(y), x.max(y));
                Ok(match last {
                    None => earlier,
                    Some((last, Direction::Rising)) if earlier <= last => later,
                    Some((_, Direction::Rising)) => earlier,
                    Some((last, Direction::Falling)) if later >= last => earlier,
                    Some((_, Direction::Falling)) => later,
                    // The same time twice: the other instant (as the rising rule would).
                    Some((last, Direction::Unknown)) if earlier == last => later,
                    Some((last, Direction::Unknown)) if later == last => earlier,
                    Some((last, Direction::Unknown)) => {
                        if (later - last).abs() < (earlier - last).abs() {
                            later
                        } else {
                            earlier
                        }
                    }
                })
            }
            chrono::LocalResult::None => Err(Defect::new(
                RejectReason::NonexistentLocalTime,
                format!(
                    "{} does not exist in {} (clocks jump forward over it)",
                    local.format("%Y-%m-%d %H:%M:%S"),
                    self.tz.name()
                ),
            )),
        }
    }

    fn local_date_of(&mut self, millis: i64) -> Result<NaiveDate, Defect> {
        let seconds = millis.div_euclid(MILLIS_PER_SECOND);
        let hour = seconds.div_euclid(SECONDS_PER_HOUR);
        let offset = match self.utc_hour {
            Some((h, offset)) if h == hour => offset,
            _ => {
                let offset = uniform_utc_hour_offset(self.tz, hour);
                self.utc_hour = Some((hour, offset));
                offset
            }
        };
        let offset = match offset {
            Some(offset) => Some(offset),
            None => utc_offset_at(self.tz, seconds),
        };
        offset
            .and_then(|offset| {
                let local_days = (seconds + i64::from(offset)).div_euclid(SECONDS_PER_DAY);
                i32::try_from(local_days + UNIX_EPOCH_DAYS_FROM_CE)
                    .ok()
                    .and_then(NaiveDate::from_num_days_from_ce_opt)
            })
            .ok_or_else(|| {
                Defect::new(
                    RejectReason::BadTimestamp,
                    format!("instant {millis} ms after the Unix epoch is out of range"),
                )
            })
    }
}

/// The UTC offset (seconds east) of a whole local hour, or None when the hour has a
/// transition in it (or is skipped or repeated).
fn uniform_local_hour_offset(tz: Tz, date: NaiveDate, hour: u32) -> Option<i32> {
    let offset_at = |minute, second| match tz
        .offset_from_local_datetime(&date.and_hms_opt(hour, minute, second)?)
    {
        chrono::LocalResult::Single(o) => Some(o.fix().local_minus_utc()),
        _ => None,
    };
    let start = offset_at(0, 0)?;
    (offset_at(59, 59)? == start).then_some(start)
}

/// The UTC offset (seconds east) of the zone at a UTC instant (seconds), None out of range.
fn utc_offset_at(tz: Tz, seconds: i64) -> Option<i32> {
    let utc = DateTime::from_timestamp(seconds, 0)?.naive_utc();
    Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// The UTC offset of a whole UTC hour (hours since the epoch), or None when it changes inside.
fn uniform_utc_hour_offset(tz: Tz, hour: i64) -> Option<i32> {
    let start = hour.checked_mul(SECONDS_PER_HOUR)?;
    let first = utc_offset_at(tz, start)?;
    (utc_offset_at(tz, start + SECONDS_PER_HOUR - 1)? == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    const NY: Tz = chrono_tz::America::New_York;

    #[test]
    fn utc_instants_get_the_local_date_of_the_zone_across_transitions() {
        let mut clock = ExchangeClock::new(NY);
        // Every 7 minutes across the 2024 fall-back and a local midnight.
        let start = Utc.with_ymd_and_hms(2024, 11, 2, 20, 0, 0).unwrap();
        for step in 0..400 {
            let t = start + chrono::Duration::minutes(7 * step);
            let want = t.with_timezone(&NY).date_naive();
            let got = clock
                .place(BarTime::Utc(t.timestamp_millis()), None)
                .unwrap();
            assert_eq!(got.millis, t.timestamp_millis());
            assert_eq!(got.local_date, want, "{t}");
        }
    }

    #[test]
    fn fall_back_times_resolve_the_way_the_file_runs() {
        // 2024-11-03: 01:00-01:59 happens twice in New York (EDT, then EST).
        let local = |h: u32, m: u32| {
            BarTime::Local(
                chrono::NaiveDate::from_ymd_opt(2024, 11, 3)
                    .unwrap()
                    .and_hms_opt(h, m, 0)
                    .unwrap(),
            )
        };
        let edt = |m: i64| 1_730_610_000_000 + m * 60_000; // 01:00 EDT = 05:00 UTC
        let est = |m: i64| edt(m) + 3_600_000;
        let mut clock = ExchangeClock::new(NY);
        let mut at = |t, last| clock.place(t, last).unwrap().millis;
        // Oldest first: 01:59 EDT then 01:00 is the second 01:00 (EST).
        assert_eq!(at(local(1, 0), Some((edt(59), Direction::Rising))), est(0));
        assert_eq!(
            at(local(1, 30), Some((edt(10), Direction::Rising))),
            edt(30)
        );
        // Newest first: after 01:00 EST, 01:59 is the first 01:59 (EDT); after 02:00 EST,
        // 01:59 is EST.
        assert_eq!(
            at(local(1, 59), Some((est(0), Direction::Falling))),
            edt(59)
        );
        assert_eq!(
            at(local(1, 59), Some((est(0) + 3_600_000, Direction::Falling))),
            est(59)
        );
        // The second bar of a file: the nearer instant, which sets the direction.
        assert_eq!(
            at(local(1, 29), Some((edt(30), Direction::Unknown))),
            edt(29)
        );
        assert_eq!(at(local(1, 0), Some((edt(59), Direction::Unknown))), est(0));
        assert_eq!(at(local(1, 0), None), edt(0));
    }

    #[test]
    fn an_instant_out_of_range_is_a_bad_timestamp() {
        let err = ExchangeClock::new(NY)
            .place(BarTime::Utc(i64::MAX), None)
            .unwrap_err();
        assert_eq!(err.reason, RejectReason::BadTimestamp);
    }

    #[test]
    fn naive_times_of_another_zone_become_its_instants_with_the_exchange_date() {
        let local = |d: u32, h: u32, m: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 3, d)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap()
        };
        let mut utc = ExchangeClock::with_naive_zone(NY, chrono_tz::UTC);
        // 13:30 UTC on 11 March 2024 (EDT) is 09:30 in New York, the same day.
        let at = utc.place(BarTime::Local(local(11, 13, 30)), None).unwrap();
        assert_eq!(at.millis, 1_710_163_800_000);
        assert_eq!(
            at.local_date,
            chrono::NaiveDate::from_ymd_opt(2024, 3, 11).unwrap()
        );
        // 02:30 UTC on 8 March (EST) is 21:30 on the 7th in New York; and 02:30 on the
        // spring-forward Sunday exists in UTC, so it is no gap there.
        let late = utc.place(BarTime::Local(local(8, 2, 30)), None).unwrap();
        assert_eq!(
            late.local_date,
            chrono::NaiveDate::from_ymd_opt(2024, 3, 7).unwrap()
        );
        assert!(utc.place(BarTime::Local(local(10, 2, 30)), None).is_ok());
        // Chicago wall times: one hour behind New York all year.
        let mut chicago = ExchangeClock::with_naive_zone(NY, chrono_tz::America::Chicago);
        let c = chicago
            .place(BarTime::Local(local(11, 8, 30)), None)
            .unwrap();
        assert_eq!(c.millis, at.millis);
        // The same zone twice is the plain exchange clock.
        assert!(ExchangeClock::with_naive_zone(NY, NY).naive.is_none());
        assert!(
            ExchangeClock::with_naive_zone(NY, chrono_tz::UTC)
                .place(BarTime::Local(local(10, 2, 30)), None)
                .is_ok()
        );
        assert!(
            ExchangeClock::new(NY)
                .place(BarTime::Local(local(10, 2, 30)), None)
                .is_err()
        );
    }
}
