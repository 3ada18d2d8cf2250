//! The time-zone gate: decides from a file's good bars whether their times sit where the NYSE
//! session is, or a whole number of hours away (a file read in the wrong time zone).
//!
//! [`SessionGate::observe`] takes every good bar once (its UTC instant and volume) and adds it
//! to two fixed histograms by exchange-local minute of day, one per clock of the exchange zone
//! (daylight-saving and standard time), over NYSE trading days; bars on weekends and holidays
//! are only counted. Per bar that is a range check against the cached local day, an index and
//! two additions: no allocation, no time-zone lookup (one per local day).
//!
//! [`SessionGate::verdict`] then scores candidate explanations, each a whole-hour shift per clock
//! (so "UTC read as New York", +4 h in summer and +5 h in winter, is one candidate, and a fixed
//! −1 h from Chicago another): how sharply the volume (or the bar count) rises at 09:30 and falls
//! after 15:59 once the shift is undone, plus the share of bars inside 04:00–20:00. A file is
//! [`Verdict::Suspect`] when a shift explains it clearly, and clearly better than its times as
//! read; it names what it found and the rule that fixes it. Too little data is
//! [`Verdict::NotEnoughEvidence`]: the file passes, and the verdict says so.
//!
//! When the hour is right, the [`stamp`] check asks whether the session starts at the right
//! minute: a one-minute file stamped at bar ends but read as opens (or the reverse, under
//! `stamp = "end"`) is [`Verdict::SuspectBarEnd`].
//!
//! For one-minute (and other intraday) bars only: daily bars carry no time of day to check, and
//! must not be fed; the stamp check, for one-minute bars only ([`GateOptions::stamp`]). A multi-symbol file may share one gate: every symbol runs on the exchange's
//! clock.

mod explain;
mod score;
mod stamp;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Datelike, NaiveDate, Offset};
use chrono_tz::{OffsetComponents, Tz};

use crate::calendar;
use crate::model::Stamp;
pub use explain::Explanation;
use score::{Histograms, MINUTES_PER_DAY};

/// The stable reason code of a file the gate quarantines for its time zone.
pub const SUSPECT_TIMEZONE: &str = "suspect_timezone";
/// The stable reason code of a file the gate quarantines for its bar stamps (bar ends read as
/// opens, or the reverse).
pub const SUSPECT_BAR_END: &str = "suspect_bar_end";

const MILLIS_PER_MINUTE: i64 = 60_000;
const MILLIS_PER_DAY: i64 = 86_400_000;
/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;
/// Distinct trading days the gate can tell apart (a bit set indexed by day number modulo this):
/// exact for files spanning fewer days, a lower bound beyond.
const DAY_SLOTS: usize = 1024;

/// Thresholds of the gate; the defaults suit one-minute bars of US equities.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOptions {
    /// Off: every file passes, the gate costs one branch per bar.
    pub enabled: bool,
    /// Fewest bars on trading days for a verdict (fewer: [`Verdict::NotEnoughEvidence`]).
    pub min_bars: u64,
    /// Fewest distinct trading days for a verdict. One by default: a day of a liquid symbol, or
    /// a day file of many symbols, shows the session clearly.
    pub min_days: u32,
    /// How clear the session edges must be at the shift found, from 0 (none) to 1 (no bar
    /// before 09:30 or after 16:00): the contrast of the half hours either side of the open,
    /// and of the close, the lesser of the two, by volume or by bar count, whichever is clearer.
    pub min_edge_contrast: f64,
    /// How much better the shift found must explain the file than its times as read (score =
    /// edge contrast, −1..1, plus the share of bars inside 04:00–20:00, 0..1).
    pub min_score_gain: f64,
    /// A share of bars outside 04:00–20:00 above this, with no shift to explain it, is said in
    /// the [`Verdict::NotEnoughEvidence`] message (the file still passes).
    pub max_outside_share: f64,
    /// How the file's times were read (the rule's `stamp`), for the bar-stamp check; None: not
    /// checked (bars longer than a minute).
    pub stamp: Option<Stamp>,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            min_bars: 300,
            min_days: 1,
            min_edge_contrast: 0.5,
            min_score_gain: 0.5,
            max_outside_share: 0.05,
            stamp: Some(Stamp::Start),
        }
    }
}

/// How the file's times became instants: what the verdict names as the zone they were read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimesReadAs {
    /// Naive wall times, read in this zone (the source rule's `timezone`).
    Wall(Tz),
    /// The layout gave instants (UTC, epoch): no zone was applied.
    Instants,
}

/// What the gate concludes of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The bars sit where the exchange trades (or the gate is off).
    Pass,
    /// Too few bars or days to tell, or bars off-hours that no shift explains: the file passes;
    /// the message says why the gate could not decide.
    NotEnoughEvidence { message: String },
    /// The bars sit a whole number of hours off the session: quarantine the file with reason
    /// [`SUSPECT_TIMEZONE`].
    Suspect {
        /// Hours the stored times are late (positive) or early, on the clock most bars fell
        /// in (daylight-saving or standard time).
        shift_hours: i32,
        /// Per clock shifts, and the zone the times look like when a common one fits.
        reason: Explanation,
        /// What was found and the rule to set, for the quarantine record.
        message: String,
    },
    /// The session starts a minute off (09:31, or 09:29 under `stamp = "end"`): the stamps are
    /// not what the rule says; quarantine the file with reason [`SUSPECT_BAR_END`].
    SuspectBarEnd {
        /// Minutes the stored times would be late: 1 for bar ends read as opens, −1 for opens
        /// read as ends.
        late_minutes: i32,
        /// What was found and the rule to set, for the quarantine record.
        message: String,
    },
}

impl Verdict {
    /// The quarantine reason code, for a suspect file.
    pub fn reason_code(&self) -> Option<&'static str> {
        match self {
            Verdict::Suspect { .. } => Some(SUSPECT_TIMEZONE),
            Verdict::SuspectBarEnd { .. } => Some(SUSPECT_BAR_END),
            Verdict::Pass | Verdict::NotEnoughEvidence { .. } => None,
        }
    }
}

/// The exchange clock of the cached local day (or of one minute, on a day whose UTC offset
/// changes).
#[derive(Debug, Clone, Copy)]
struct DaySpan {
    /// UTC millis, the first instant covered.
    start: i64,
    /// UTC millis, the first instant not covered.
    end: i64,
    /// The instant of local midnight under the span's offset: minute of day = (ts - base) / 60 000.
    minute_base: i64,
    /// 1 in daylight-saving time, 0 in standard time.
    clock: usize,
    /// Whether NYSE trades on the day.
    trading: bool,
}

/// What the gate has seen of a file so far; see the module documentation.
#[derive(Debug, Clone)]
pub struct SessionGate {
    exchange: Tz,
    read: TimesReadAs,
    options: GateOptions,
    /// Bars and volume by exchange-local minute, per clock, over trading days.
    histograms: Box<Histograms>,
    /// Bars on days NYSE does not trade (weekends, holidays): a sign of a shift across midnight.
    off_day_bars: u64,
    /// The local day of the last bar: its span, so most bars need no zone lookup.
    day: DaySpan,
    /// The bit of each trading day seen (day number modulo [`DAY_SLOTS`]).
    days_seen: [u64; DAY_SLOTS / 64],
    days: u32,
    /// The first instant seen on each clock: where the verdict reads zone offsets.
    clock_instant: [Option<i64>; 2],
}

impl SessionGate {
    /// A gate for bars of the exchange whose zone is `tz` (the NYSE's, `America/New_York`;
    /// the calendar and the session hours are NYSE's), with naive times read in that zone.
    pub fn new(tz: Tz, options: GateOptions) -> Self {
        Self {
            exchange: tz,
            read: TimesReadAs::Wall(tz),
            options,
            histograms: Box::default(),
            off_day_bars: 0,
            day: DaySpan {
                start: 0,
                end: 0,
                minute_base: 0,
                clock: 0,
                trading: false,
            },
            days_seen: [0; DAY_SLOTS / 64],
            days: 0,
            clock_instant: [None; 2],
        }
    }

    /// The same gate, for times that were read another way than as exchange wall times.
    pub fn reading(mut self, read: TimesReadAs) -> Self {
        self.read = read;
        self
    }

    /// Adds one good bar: its open instant (UTC millis) and its volume.
    #[inline]
    pub fn observe(&mut self, ts_millis: i64, volume: f64) {
        if !self.options.enabled {
            return;
        }
        if ts_millis < self.day.start || ts_millis >= self.day.end {
            self.enter_day(ts_millis);
        }
        if !self.day.trading {
            self.off_day_bars += 1;
            return;
        }
        let minute = ((ts_millis - self.day.minute_base) / MILLIS_PER_MINUTE) as usize;
        self.histograms
            .add(self.day.clock, minute.min(MINUTES_PER_DAY - 1), volume);
    }

    /// Caches the local day of `ts_millis` (one zone lookup and one calendar lookup per day).
    #[cold]
    fn enter_day(&mut self, ts_millis: i64) {
        let Some(utc) = DateTime::from_timestamp_millis(ts_millis) else {
            // Beyond chrono's range: counted as off-day, never cached.
            self.day = DaySpan {
                start: ts_millis,
                end: ts_millis,
                minute_base: 0,
                clock: 0,
                trading: false,
            };
            return;
        };
        let local = utc.with_timezone(&self.exchange);
        let offset = local.offset();
        let offset_millis = i64::from(offset.fix().local_minus_utc()) * 1000;
        let date = local.date_naive();
        let minute_base = days_since_epoch(date) * MILLIS_PER_DAY - offset_millis;
        let clock = usize::from(!offset.dst_offset().is_zero());
        let (start, end) = if self.offset_millis_at(minute_base) == Some(offset_millis)
            && self.offset_millis_at(minute_base + MILLIS_PER_DAY - 1) == Some(offset_millis)
        {
            (minute_base, minute_base + MILLIS_PER_DAY)
        } else {
            // The offset changes this day: cache this minute only.
            let minute = ts_millis.div_euclid(MILLIS_PER_MINUTE) * MILLIS_PER_MINUTE;
            (minute, minute + MILLIS_PER_MINUTE)
        };
        let trading = calendar::is_trading_day(date);
        self.day = DaySpan {
            start,
            end,
            minute_base,
            clock,
            trading,
        };
        if trading {
            self.clock_instant[clock].get_or_insert(ts_millis);
            self.count_day(date);
        }
    }

    fn offset_millis_at(&self, ts_millis: i64) -> Option<i64> {
        let utc = DateTime::from_timestamp_millis(ts_millis)?;
        let local = utc.with_timezone(&self.exchange);
        Some(i64::from(local.offset().fix().local_minus_utc()) * 1000)
    }

    fn count_day(&mut self, date: NaiveDate) {
        let slot = days_since_epoch(date).rem_euclid(DAY_SLOTS as i64) as usize;
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.days_seen[word] & bit == 0 {
            self.days_seen[word] |= bit;
            self.days += 1;
        }
    }

    /// Bars seen on trading days, and on other days.
    pub fn bars(&self) -> (u64, u64) {
        (self.histograms.total_bars(), self.off_day_bars)
    }

    /// Distinct trading days seen (exact for files spanning fewer than 1024 days).
    pub fn days(&self) -> u32 {
        self.days
    }

    /// The verdict on everything observed; see the module documentation.
    pub fn verdict(&self) -> Verdict {
        if !self.options.enabled {
            return Verdict::Pass;
        }
        let (bars, _) = self.bars();
        if bars < self.options.min_bars || self.days < self.options.min_days {
            return Verdict::NotEnoughEvidence {
                message: format!(
                    "the time-zone gate needs {} bars on {} trading day(s) to judge a file, \
                     it saw {bars} bars on {} trading day(s) (and {} on weekends or holidays)",
                    self.options.min_bars, self.options.min_days, self.days, self.off_day_bars
                ),
            };
        }
        explain::judge(self)
    }
}

/// Days from 1970-01-01 to `date`.
fn days_since_epoch(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE
}
