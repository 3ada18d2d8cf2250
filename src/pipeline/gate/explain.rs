//! The gate's judgement: the candidate shifts (common zones first, then every whole-hour shift
//! per clock), the best of them against the times as read, and the message that names it; when
//! the hour is right, the bar-stamp check ([`stamp`]).

use std::fmt::Write as _;

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;

use super::score::{
    EXTENDED_CLOSE, EXTENDED_OPEN, Fit, Profile, REGULAR_CLOSE, REGULAR_OPEN, Shift, Weight, ratio,
};
use super::{SessionGate, TimesReadAs, Verdict, stamp};

/// Zones vendors commonly write times in, most likely first: a candidate matching one of them
/// is named in the verdict (and wins a tie against an unnamed shift).
const COMMON_ZONES: [Tz; 11] = [
    chrono_tz::UTC,
    chrono_tz::America::Chicago,
    chrono_tz::America::New_York,
    chrono_tz::America::Denver,
    chrono_tz::America::Los_Angeles,
    chrono_tz::America::Phoenix,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Tokyo,
    chrono_tz::Asia::Hong_Kong,
    chrono_tz::Australia::Sydney,
];
/// Scores this close count as a tie: the earlier candidate (the times as read, then a named
/// zone) is kept.
const TIE: f64 = 0.02;
/// A clock holding fewer bars than this share is left out of the message's peaks.
const MIN_CLOCK_SHARE_SHOWN: f64 = 0.05;
const CLOCK_NAMES: [&str; 2] = ["winter", "summer"];

/// Why the gate suspects a file: the hours its times are late on each clock of the exchange,
/// and the zone they look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Hours late in the exchange's standard time (winter); None when no bar fell in it.
    pub winter_hours: Option<i32>,
    /// Hours late in the exchange's daylight-saving time (summer); None when no bar fell in it.
    pub summer_hours: Option<i32>,
    /// The zone the file's times look like (`UTC`, `America/Chicago`), when a common one fits.
    pub zone: Option<&'static str>,
}

/// A way the file's times may have been shifted.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    shift: Shift,
    /// The common zone whose wall times, read as the file was read, give this shift.
    zone: Option<Tz>,
}

/// The verdict on a gate with enough evidence.
pub(super) fn judge(gate: &SessionGate) -> Verdict {
    let profile = Profile::new(&gate.histograms);
    let fits: Vec<(Candidate, Fit)> = candidates(gate)
        .into_iter()
        .map(|c| (c, profile.fit(c.shift)))
        .collect();
    let (_, as_read) = fits[0];
    let best_score = fits.iter().map(|(_, f)| f.score()).fold(f64::MIN, f64::max);
    let Some(&(best, fit)) = fits.iter().find(|(_, f)| f.score() >= best_score - TIE) else {
        return Verdict::Pass;
    };
    let options = &gate.options;
    if best.shift != [0, 0]
        && fit.edges >= options.min_edge_contrast
        && fit.score() - as_read.score() >= options.min_score_gain
    {
        return suspect(gate, &profile, best, as_read, fit);
    }
    // The hour is right: are the bars stamped at the minute the rule says?
    if let Some(stamp) = options.stamp
        && as_read.edges >= options.min_edge_contrast
        && let Some(verdict) = stamp::judge(&profile, stamp, options.min_edge_contrast)
    {
        return verdict;
    }
    let outside = 1.0 - as_read.inside;
    if outside > options.max_outside_share {
        return Verdict::NotEnoughEvidence {
            message: format!(
                "{} of the bars fall outside {} exchange time, but no whole-hour shift \
                 explains them: the file is loaded as read",
                percent(outside),
                extended_hours()
            ),
        };
    }
    Verdict::Pass
}

/// The times as read first, then the common zones, then every whole-hour shift: the same on
/// both clocks, or one hour apart (a zone without daylight-saving time read as one with it, or
/// the reverse).
fn candidates(gate: &SessionGate) -> Vec<Candidate> {
    let mut out = vec![Candidate {
        shift: [0, 0],
        zone: None,
    }];
    out.extend(COMMON_ZONES.iter().filter_map(|&zone| {
        Some(Candidate {
            shift: zone_shift(gate, zone)?,
            zone: Some(zone),
        })
    }));
    for hours in -11..=12 {
        for winter_extra in [0, 1, -1] {
            out.push(Candidate {
                shift: [wrap_hours(hours + winter_extra), hours],
                zone: None,
            });
        }
    }
    out
}

/// The shift on each clock that wall times of `zone`, read as the gate's file was, produce;
/// None when the zone is not a whole number of hours from the read one, or no bar was seen.
fn zone_shift(gate: &SessionGate, zone: Tz) -> Option<Shift> {
    let mut shift = [None, None];
    for (clock, instant) in gate.clock_instant.iter().enumerate() {
        let Some(at) = instant.and_then(DateTime::from_timestamp_millis) else {
            continue;
        };
        let read = match gate.read {
            TimesReadAs::Wall(tz) => offset_seconds(tz, at),
            TimesReadAs::Instants => 0,
        };
        let late = offset_seconds(zone, at) - read;
        if late % 3600 != 0 {
            return None;
        }
        shift[clock] = Some(wrap_hours(late / 3600));
    }
    match shift {
        [Some(w), Some(s)] => Some([w, s]),
        [Some(h), None] | [None, Some(h)] => Some([h, h]),
        [None, None] => None,
    }
}

fn offset_seconds(tz: Tz, at: DateTime<chrono::Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// Hours into −12..=11 (a shift of the time of day is modulo a day).
fn wrap_hours(hours: i32) -> i32 {
    (hours + 12).rem_euclid(24) - 12
}

fn suspect(
    gate: &SessionGate,
    profile: &Profile,
    best: Candidate,
    as_read: Fit,
    fit: Fit,
) -> Verdict {
    let bars = [
        profile.total(Weight::Count, 0),
        profile.total(Weight::Count, 1),
    ];
    let seen = |clock: usize| (bars[clock] > 0.0).then_some(best.shift[clock]);
    let reason = Explanation {
        winter_hours: seen(0),
        summer_hours: seen(1),
        zone: best.zone.map(|z| z.name()),
    };
    let main_clock = usize::from(bars[1] >= bars[0]);
    let mut message = String::new();
    describe_peaks(&mut message, profile, bars);
    let _ = write!(
        message,
        "; {} of the bars fall outside {} ({} once shifted back)",
        percent(1.0 - as_read.inside),
        extended_hours(),
        percent(1.0 - fit.inside)
    );
    if gate.off_day_bars > 0 {
        let _ = write!(
            message,
            "; {} bars fall on weekends or NYSE holidays",
            gate.off_day_bars
        );
    }
    message.push_str("; ");
    describe_cause(&mut message, gate.read, &reason);
    Verdict::Suspect {
        shift_hours: best.shift[main_clock],
        reason,
        message,
    }
}

/// "the volume peaks at 13:30 and 19:59 exchange time in summer (14:30 and 20:59 in winter)
/// instead of 09:30 and 15:59".
fn describe_peaks(out: &mut String, profile: &Profile, bars: [f64; 2]) {
    let total = bars[0] + bars[1];
    let shown: Vec<(usize, (i64, i64))> = (0..2)
        .rev()
        .filter(|&clock| ratio(bars[clock], total) >= MIN_CLOCK_SHARE_SHOWN)
        .filter_map(|clock| Some((clock, profile.edges_seen(clock)?)))
        .collect();
    out.push_str("the volume peaks at ");
    for (i, (clock, (open, close))) in shown.iter().enumerate() {
        let both = shown.len() > 1;
        match (i, both) {
            (0, false) => {
                let _ = write!(out, "{} and {} exchange time", hhmm(*open), hhmm(*close));
            }
            (0, true) => {
                let _ = write!(
                    out,
                    "{} and {} exchange time in {}",
                    hhmm(*open),
                    hhmm(*close),
                    CLOCK_NAMES[*clock]
                );
            }
            _ => {
                let _ = write!(
                    out,
                    " ({} and {} in {})",
                    hhmm(*open),
                    hhmm(*close),
                    CLOCK_NAMES[*clock]
                );
            }
        }
    }
    let _ = write!(
        out,
        " instead of {} and {}",
        hhmm(REGULAR_OPEN),
        hhmm(REGULAR_CLOSE - 1)
    );
}

/// "the times look like UTC read as America/New_York (+4 h in summer, +5 h in winter): set
/// `timezone = "UTC"` in the `[[source]]` rule for these files".
fn describe_cause(out: &mut String, read: TimesReadAs, reason: &Explanation) {
    let hours = describe_hours(reason);
    match (reason.zone, read) {
        (Some(zone), TimesReadAs::Wall(tz)) => {
            let _ = write!(
                out,
                "the times look like {zone} read as {} ({hours}): set `timezone = \"{zone}\"` \
                 in the `[[source]]` rule for these files",
                tz.name()
            );
        }
        (Some(zone), TimesReadAs::Instants) => {
            let _ = write!(
                out,
                "the file's instants look like {zone} wall times taken for UTC ({hours}): the \
                 vendor's times are not UTC; check the layout the `[[source]]` rule gives \
                 these files"
            );
        }
        (None, _) => {
            let _ = write!(
                out,
                "the times sit {hours} off the exchange session, which no common time zone \
                 explains: check the vendor's time zone and set `timezone` in the \
                 `[[source]]` rule for these files"
            );
        }
    }
}

/// "+4 h in summer, +5 h in winter", or "-1 h" when the clocks agree (or only one was seen).
fn describe_hours(reason: &Explanation) -> String {
    let h = |n: i32| format!("{n:+} h");
    match (reason.summer_hours, reason.winter_hours) {
        (Some(s), Some(w)) if s != w => format!("{} in summer, {} in winter", h(s), h(w)),
        (Some(x), _) | (None, Some(x)) => h(x),
        (None, None) => "0 h".into(),
    }
}

pub(super) fn hhmm(minute: i64) -> String {
    let m = minute.rem_euclid(1440);
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn extended_hours() -> String {
    format!("{}–{}", hhmm(EXTENDED_OPEN), hhmm(EXTENDED_CLOSE))
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}
