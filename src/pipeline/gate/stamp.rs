//! The bar-stamp check: whether a one-minute file's session starts one minute late (bars
//! stamped at their end, read as opens: the 09:30-09:31 bar at 09:31) or, under
//! `stamp = "end"`, one minute early (bars stamped at their open, read as ends).
//!
//! Each edge minute is placed between two levels of the same weight (bar count, volume): the
//! mean minute outside the session next to the edge (0) and the mean minute inside it (1). At
//! the open a start-stamped file has 09:29 outside and 09:30 inside; an end-stamped one read as
//! opens has 09:30 outside (its bar is 09:29-09:30, pre-market, or none) and 09:31 inside, and at
//! the close 16:00 inside (the 15:59-16:00 bar). A weight whose levels are too close to tell
//! (a file trading every minute of extended hours has no count edge) is left out; every weight
//! left must agree. A start-stamped file with the closing auction printed at 16:00 is judged by
//! its open, so it passes.

use std::fmt::Write as _;

use super::Verdict;
use super::explain::hhmm;
use super::score::{Profile, REGULAR_CLOSE, REGULAR_OPEN, Weight, contrast};
use crate::model::Stamp;

/// Minutes averaged for a level outside or inside the session, next to an edge (the edge
/// minutes themselves left out).
const LEVEL_MINUTES: i64 = 30;
/// The first minute of the inside level at the open (09:32: after both minutes judged).
const INSIDE_OPEN: i64 = REGULAR_OPEN + 2;
/// A minute at least this far from the outside level towards the inside one is in the session.
const INSIDE: f64 = 0.5;
/// A minute less far than this is outside it.
const OUTSIDE: f64 = 0.25;
/// Fewest bars per minute of the session next to the open (over the file's symbols and trading
/// days) for a verdict: at one minute's resolution a few days (or symbols) are needed before a
/// missing 09:30 bar means more than chance; fewer, and the file passes unjudged.
const MIN_SESSION_BARS_PER_MINUTE: f64 = 3.0;

/// The two levels one edge minute is placed between.
#[derive(Debug, Clone, Copy)]
struct Levels {
    weight: Weight,
    outside: f64,
    inside: f64,
}

impl Levels {
    /// Where the weight at `minute` sits: 0 at the outside level, 1 at the inside one.
    fn position(&self, profile: &Profile, minute: i64) -> f64 {
        (profile.at(self.weight, minute) - self.outside) / (self.inside - self.outside)
    }
}

/// The levels either side of the open, per weight clear enough to tell (contrast of the
/// levels at least `min_contrast`): outside is [08:59, 09:29), inside [09:32, 10:02), so that
/// neither holds a minute the check looks at.
fn open_levels(profile: &Profile, min_contrast: f64) -> Vec<Levels> {
    levels(
        profile,
        min_contrast,
        REGULAR_OPEN - 1 - LEVEL_MINUTES,
        INSIDE_OPEN,
    )
}

/// The levels either side of the close: inside [15:29, 15:59), outside [16:02, 16:32).
fn close_levels(profile: &Profile, min_contrast: f64) -> Vec<Levels> {
    levels(
        profile,
        min_contrast,
        REGULAR_CLOSE + 2,
        REGULAR_CLOSE - 1 - LEVEL_MINUTES,
    )
}

fn levels(profile: &Profile, min_contrast: f64, outside: i64, inside: i64) -> Vec<Levels> {
    [Weight::Count, Weight::Volume]
        .into_iter()
        .map(|weight| Levels {
            weight,
            outside: profile.mean(weight, outside, outside + LEVEL_MINUTES),
            inside: profile.mean(weight, inside, inside + LEVEL_MINUTES),
        })
        .filter(|l| contrast(l.inside, l.outside) >= min_contrast)
        .collect()
}

/// Whether, by every weight in `levels` (and there is one), the session starts at `first`:
/// the minute before it outside, `first` inside.
fn starts_at(profile: &Profile, levels: &[Levels], first: i64) -> bool {
    !levels.is_empty()
        && levels.iter().all(|l| {
            l.position(profile, first - 1) < OUTSIDE && l.position(profile, first) >= INSIDE
        })
}

/// The verdict on the stamps of a file whose session sits at the right hour, read as `stamp`
/// says; None when they look right or the edges are not clear enough to tell.
pub(super) fn judge(profile: &Profile, stamp: Stamp, min_contrast: f64) -> Option<Verdict> {
    let inside_bars = profile.mean(Weight::Count, INSIDE_OPEN, INSIDE_OPEN + LEVEL_MINUTES);
    if inside_bars < MIN_SESSION_BARS_PER_MINUTE {
        return None;
    }
    let open = open_levels(profile, min_contrast);
    match stamp {
        Stamp::Start => {
            let close = close_levels(profile, min_contrast);
            let late = starts_at(profile, &open, REGULAR_OPEN + 1)
                && !close.is_empty()
                && close
                    .iter()
                    .all(|l| l.position(profile, REGULAR_CLOSE) >= INSIDE);
            late.then(|| Verdict::SuspectBarEnd {
                late_minutes: 1,
                message: late_message(profile),
            })
        }
        Stamp::End => starts_at(profile, &open, REGULAR_OPEN - 1).then(|| Verdict::SuspectBarEnd {
            late_minutes: -1,
            message: early_message(profile),
        }),
    }
}

/// Bars at `minute` (over the file's trading days), as a whole number.
fn bars_at(profile: &Profile, minute: i64) -> u64 {
    profile.at(Weight::Count, minute) as u64
}

/// "the activity peaks at 09:31 and 16:00 exchange time instead of 09:30 and 15:59 (0 bars at
/// 09:30 and 61 at 09:31, 61 at 16:00): the times look like bar ends ...; set `stamp = "end"`".
fn late_message(profile: &Profile) -> String {
    let mut m = format!(
        "the activity peaks at {} and {} exchange time instead of {} and {} (on trading days: \
         {} bars at {}, {} at {}, {} at {} and {} at {})",
        hhmm(REGULAR_OPEN + 1),
        hhmm(REGULAR_CLOSE),
        hhmm(REGULAR_OPEN),
        hhmm(REGULAR_CLOSE - 1),
        bars_at(profile, REGULAR_OPEN),
        hhmm(REGULAR_OPEN),
        bars_at(profile, REGULAR_OPEN + 1),
        hhmm(REGULAR_OPEN + 1),
        bars_at(profile, REGULAR_CLOSE - 1),
        hhmm(REGULAR_CLOSE - 1),
        bars_at(profile, REGULAR_CLOSE),
        hhmm(REGULAR_CLOSE),
    );
    let _ = write!(
        m,
        "; the times look like bar ends (the {}-{} bar stamped {}), which would be stored one \
         minute late: set `stamp = \"end\"` in the `[[source]]` rule for these files",
        hhmm(REGULAR_OPEN),
        hhmm(REGULAR_OPEN + 1),
        hhmm(REGULAR_OPEN + 1),
    );
    m
}

/// "read as bar ends, the session opens at 09:29 instead of 09:30 ...; remove `stamp = "end"`".
fn early_message(profile: &Profile) -> String {
    format!(
        "read as bar ends (`stamp = \"end\"`), the session opens at {} exchange time instead of \
         {} (on trading days: {} bars at {}, {} at {}): the times look like bar opens, which \
         would be stored one minute early: remove `stamp = \"end\"` from the `[[source]]` rule \
         for these files",
        hhmm(REGULAR_OPEN - 1),
        hhmm(REGULAR_OPEN),
        bars_at(profile, REGULAR_OPEN - 2),
        hhmm(REGULAR_OPEN - 2),
        bars_at(profile, REGULAR_OPEN - 1),
        hhmm(REGULAR_OPEN - 1),
    )
}
