//! The gate on generated files (`bar_gen`): read in the right zone, in UTC, in Chicago time,
//! regular-session or extended-hours only, sparse; and its per-minute binning against chrono.

use bar_gen::{GenBar, GenSpec, SymbolBars};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;
use crate::model::Stamp;

const NY: Tz = chrono_tz::America::New_York;
const UTC: Tz = chrono_tz::UTC;
const CHICAGO: Tz = chrono_tz::America::Chicago;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn generated(symbol: &str, seed: u64, start: NaiveDate, end: NaiveDate) -> Vec<GenBar> {
    let spec = GenSpec {
        symbols: vec![symbol.into()],
        start,
        end,
        seed,
    };
    SymbolBars::new(&spec, symbol).collect()
}

fn wall(b: &GenBar) -> NaiveDateTime {
    b.date.and_time(b.time())
}

/// The instant the loader stores for a generated bar (New York wall time) whose vendor wrote
/// it as a `written_in` wall time, read back as a `read_in` wall time; None when that wall time
/// does not exist in `read_in` (the validator rejects such a row).
fn stored(b: &GenBar, written_in: Tz, read_in: Tz) -> Option<i64> {
    let meant = NY.from_local_datetime(&wall(b)).earliest()?;
    let text = meant.with_timezone(&written_in).naive_local();
    Some(
        read_in
            .from_local_datetime(&text)
            .earliest()?
            .timestamp_millis(),
    )
}

/// Feeds `bars` as written in `written_in` and read in `read_in` to a default gate reading in
/// `read_in`; the verdict.
fn verdict_of(bars: &[GenBar], written_in: Tz, read_in: Tz) -> Verdict {
    verdict_with(bars, written_in, read_in, GateOptions::default())
}

fn verdict_with(bars: &[GenBar], written_in: Tz, read_in: Tz, options: GateOptions) -> Verdict {
    let mut gate = SessionGate::new(NY, options).reading(TimesReadAs::Wall(read_in));
    for b in bars {
        if let Some(ts) = stored(b, written_in, read_in) {
            gate.observe(ts, b.volume as f64);
        }
    }
    gate.verdict()
}

fn suspect(v: &Verdict) -> (i32, &Explanation, &str) {
    match v {
        Verdict::Suspect {
            shift_hours,
            reason,
            message,
        } => (*shift_hours, reason, message.as_str()),
        other => panic!("expected Suspect, got {other:?}"),
    }
}

/// Spans both 2024 DST changes (March 10, November 3).
fn across_dst() -> Vec<GenBar> {
    generated("AAPL", 1, d(2024, 2, 20), d(2024, 11, 20))
}

#[test]
fn generated_bars_in_their_zone_pass() {
    assert_eq!(verdict_of(&across_dst(), NY, NY), Verdict::Pass);
}

#[test]
fn utc_times_read_as_new_york_are_named_utc_across_dst() {
    let v = verdict_of(&across_dst(), UTC, NY);
    let (shift, reason, message) = suspect(&v);
    assert_eq!(shift, 4, "most bars are in summer: {message}");
    assert_eq!(
        reason,
        &Explanation {
            winter_hours: Some(5),
            summer_hours: Some(4),
            zone: Some("UTC"),
        }
    );
    assert_eq!(v.reason_code(), Some(SUSPECT_TIMEZONE));
    for part in [
        "the volume peaks at 13:30 and 19:59 exchange time in summer (14:30 and 20:59 in winter) \
         instead of 09:30 and 15:59",
        "outside 04:00–20:00",
        "on weekends or NYSE holidays",
        "the times look like UTC read as America/New_York (+4 h in summer, +5 h in winter): \
         set `timezone = \"UTC\"` in the `[[source]]` rule for these files",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn utc_times_of_one_season_are_named_utc() {
    let summer = generated("MSFT", 2, d(2023, 7, 10), d(2023, 7, 21));
    let v = verdict_of(&summer, UTC, NY);
    let (shift, reason, message) = suspect(&v);
    assert_eq!((shift, reason.zone), (4, Some("UTC")), "{message}");
    assert!(message.contains("(+4 h)"), "{message}");
    let winter = generated("MSFT", 2, d(2023, 1, 9), d(2023, 1, 20));
    let v = verdict_of(&winter, UTC, NY);
    let (shift, reason, message) = suspect(&v);
    assert_eq!((shift, reason.zone), (5, Some("UTC")), "{message}");
    assert!(
        message.contains("14:30 and 20:59 exchange time"),
        "{message}"
    );
}

#[test]
fn chicago_times_read_as_new_york_are_one_hour_early() {
    let v = verdict_of(&across_dst(), CHICAGO, NY);
    let (shift, reason, message) = suspect(&v);
    assert_eq!(shift, -1);
    assert_eq!(
        reason,
        &Explanation {
            winter_hours: Some(-1),
            summer_hours: Some(-1),
            zone: Some("America/Chicago"),
        }
    );
    assert!(
        message.contains("(-1 h): set `timezone = \"America/Chicago\"`"),
        "{message}"
    );
}

#[test]
fn new_york_times_read_as_utc_name_new_york() {
    let v = verdict_of(&across_dst(), NY, UTC);
    let (shift, reason, message) = suspect(&v);
    assert_eq!(shift, -4);
    assert_eq!(reason.zone, Some("America/New_York"));
    assert!(message.contains("read as UTC (-4 h in summer, -5 h in winter)"));
    // Read with the right rule, the same file passes.
    assert_eq!(verdict_of(&across_dst(), UTC, UTC), Verdict::Pass);
}

#[test]
fn an_unnamed_shift_is_reported_as_hours() {
    // Three hours late on both clocks: Atlantic time is -4/-3 (+1), no common zone is +3.
    let bars = across_dst();
    let mut gate = SessionGate::new(NY, GateOptions::default());
    for b in &bars {
        let ts = stored(b, NY, NY).unwrap() + 3 * 3_600_000;
        gate.observe(ts, b.volume as f64);
    }
    let v = gate.verdict();
    let (shift, reason, message) = suspect(&v);
    assert_eq!((shift, reason.zone), (3, None));
    assert!(message.contains("the times sit +3 h off"), "{message}");
}

#[test]
fn instants_that_are_wall_times_are_suspect() {
    // A layout of UTC instants whose vendor wrote New York wall times as if UTC.
    let mut gate = SessionGate::new(NY, GateOptions::default()).reading(TimesReadAs::Instants);
    for b in &across_dst() {
        gate.observe(wall(b).and_utc().timestamp_millis(), b.volume as f64);
    }
    let v = gate.verdict();
    let (_, reason, message) = suspect(&v);
    assert_eq!(reason.zone, Some("America/New_York"));
    assert!(message.contains("wall times taken for UTC"), "{message}");
    // True instants (a Polygon-style file) pass.
    let mut gate = SessionGate::new(NY, GateOptions::default()).reading(TimesReadAs::Instants);
    for b in &across_dst() {
        gate.observe(stored(b, NY, NY).unwrap(), b.volume as f64);
    }
    assert_eq!(gate.verdict(), Verdict::Pass);
}

fn regular(b: &GenBar) -> bool {
    (9 * 60 + 30..16 * 60).contains(&b.minute)
}

#[test]
fn regular_session_only_passes_and_is_caught_in_utc() {
    let bars: Vec<GenBar> = across_dst().into_iter().filter(regular).collect();
    assert_eq!(verdict_of(&bars, NY, NY), Verdict::Pass);
    let v = verdict_of(&bars, UTC, NY);
    assert_eq!(suspect(&v).1.zone, Some("UTC"));
    // The one sign here is where the session sits: every bar is inside 04:00–20:00 as read.
    assert!(suspect(&v).2.contains("13:30 and 19:59"), "{v:?}");
}

#[test]
fn extended_hours_files_pass() {
    // The whole extended session (what bar_gen writes) was the first test; here only the
    // bars outside the regular session, and only the pre-market.
    let off_regular: Vec<GenBar> = across_dst().into_iter().filter(|b| !regular(b)).collect();
    let v = verdict_of(&off_regular, NY, NY);
    assert!(!matches!(v, Verdict::Suspect { .. }), "{v:?}");
    let pre: Vec<GenBar> = off_regular
        .into_iter()
        .filter(|b| b.minute < 9 * 60 + 30)
        .collect();
    let v = verdict_of(&pre, NY, NY);
    assert!(!matches!(v, Verdict::Suspect { .. }), "{v:?}");
}

/// A liquid symbol: a bar every minute 04:00–19:59 on every trading day of `days`, 100 shares
/// a minute off-hours, 1 000 in the regular session, and the closing auction's `close_print`
/// shares stamped on the 16:00 bar (as some vendors do).
fn liquid(start: NaiveDate, days: u64, close_print: u64) -> Vec<GenBar> {
    let mut out = Vec::new();
    for date in (0..days).map(|i| start + chrono::Days::new(i)) {
        if !calendar::is_trading_day(date) {
            continue;
        }
        for minute in 4 * 60..20 * 60 {
            let volume = match minute {
                960 => close_print,
                570..960 => 1_000,
                _ => 100,
            };
            out.push(GenBar {
                date,
                minute,
                open: 10_000,
                high: 10_000,
                low: 10_000,
                close: 10_000,
                volume,
            });
        }
    }
    out
}

#[test]
fn a_closing_auction_stamped_at_16_00_does_not_hide_a_shift() {
    // The 16:00 print outweighs the last half hour of the session; every minute has a bar, so
    // the bar count shows no edge at all: only the volume tells, without the 16:00 bar.
    let bars = liquid(d(2023, 7, 10), 14, 40_000);
    assert_eq!(verdict_of(&bars, NY, NY), Verdict::Pass);
    let v = verdict_of(&bars, UTC, NY);
    assert_eq!(suspect(&v).1.zone, Some("UTC"), "{v:?}");
}

#[test]
fn partial_days_alone_are_never_suspect() {
    // Black Friday 2024 (regular session to 13:00) on its own, and a day cut off at noon (a
    // daily update file written mid-session): one edge each, at a place a shift could move.
    let half_day = generated("AAPL", 4, d(2024, 11, 29), d(2024, 11, 29));
    let morning: Vec<GenBar> = generated("AAPL", 4, d(2024, 11, 26), d(2024, 11, 26))
        .into_iter()
        .filter(|b| b.minute < 12 * 60)
        .collect();
    // Enough evidence to judge them (a half day has about 230 bars, fewer than the default).
    let options = GateOptions {
        min_bars: 150,
        ..GateOptions::default()
    };
    for bars in [half_day, morning] {
        assert!(bars.len() >= 150, "{}", bars.len());
        let v = verdict_with(&bars, NY, NY, options.clone());
        assert!(!matches!(v, Verdict::Suspect { .. }), "{v:?}");
    }
}

/// Every `n`th bar: an illiquid symbol's file.
fn sparse(bars: Vec<GenBar>, n: usize) -> Vec<GenBar> {
    bars.into_iter().step_by(n).collect()
}

#[test]
fn fifty_bars_are_not_enough_evidence() {
    let bars = sparse(across_dst(), across_dst().len() / 50);
    assert!((50..=52).contains(&bars.len()));
    for written_in in [NY, UTC, CHICAGO] {
        let v = verdict_of(&bars, written_in, NY);
        let Verdict::NotEnoughEvidence { message } = v else {
            panic!("{written_in}: {v:?}");
        };
        assert!(message.contains("needs 300 bars"), "{message}");
    }
}

#[test]
fn sparse_files_in_their_zone_pass() {
    let all = across_dst();
    for n in [50, 100, 200, 300] {
        let bars = sparse(all.clone(), n);
        let v = verdict_of(&bars, NY, NY);
        assert!(!matches!(v, Verdict::Suspect { .. }), "every {n}th: {v:?}");
    }
}

#[test]
fn the_thresholds_are_the_options() {
    let bars = across_dst();
    let verdict = |options: GateOptions| {
        let mut gate = SessionGate::new(NY, options);
        for b in &bars {
            if let Some(ts) = stored(b, UTC, NY) {
                gate.observe(ts, b.volume as f64);
            }
        }
        gate.verdict()
    };
    let defaults = GateOptions::default();
    assert!(matches!(verdict(defaults.clone()), Verdict::Suspect { .. }));
    // No shift can gain this much (scores run from −1 to 2), nor have edges this clear.
    for options in [
        GateOptions {
            min_score_gain: 3.0,
            ..defaults.clone()
        },
        GateOptions {
            min_edge_contrast: 1.01,
            ..defaults.clone()
        },
    ] {
        let v = verdict(options.clone());
        assert!(!matches!(v, Verdict::Suspect { .. }), "{options:?}: {v:?}");
    }
    for options in [
        GateOptions {
            min_bars: bars.len() as u64 + 1,
            ..defaults.clone()
        },
        GateOptions {
            min_days: 1000,
            ..defaults
        },
    ] {
        let v = verdict(options.clone());
        assert!(
            matches!(v, Verdict::NotEnoughEvidence { .. }),
            "{options:?}: {v:?}"
        );
    }
}

#[test]
fn the_gate_turned_off_passes_everything() {
    let options = GateOptions {
        enabled: false,
        ..GateOptions::default()
    };
    let mut gate = SessionGate::new(NY, options);
    for b in &across_dst() {
        gate.observe(stored(b, UTC, NY).unwrap_or(0), b.volume as f64);
    }
    assert_eq!(gate.verdict(), Verdict::Pass);
    assert_eq!(gate.bars(), (0, 0));
}

#[test]
fn off_hours_bars_no_shift_explains_are_said_not_suspected() {
    // Bars all day and night, evenly (a 24-hour market): nothing to align, 33% outside.
    let mut gate = SessionGate::new(NY, GateOptions::default());
    let start = NY
        .from_local_datetime(&d(2024, 4, 1).and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    for minute in 0..4 * 1440 {
        gate.observe(start + minute * 60_000, 100.0);
    }
    let v = gate.verdict();
    let Verdict::NotEnoughEvidence { message } = &v else {
        panic!("{v:?}")
    };
    assert!(
        message.starts_with("33% of the bars fall outside 04:00–20:00"),
        "{message}"
    );
}

#[test]
fn the_day_after_spring_forward_is_its_own_day() {
    // Sunday 2024-03-10 lasts 23 hours: a bar on it before the change (standard time) must
    // not make the gate take Monday 00:30 for Sunday (24 hours from Sunday's midnight reach
    // Monday 01:00).
    let at = |day: u32, h: u32, m: u32| {
        NY.from_local_datetime(&d(2024, 3, day).and_hms_opt(h, m, 0).unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let mut gate = SessionGate::new(NY, GateOptions::default());
    gate.observe(at(10, 1, 0), 1.0);
    gate.observe(at(11, 0, 30), 1.0);
    gate.observe(at(11, 9, 30), 1.0);
    assert_eq!(gate.bars(), (2, 1));
    let mut want = Histograms::default();
    want.add(1, 30, 1.0);
    want.add(1, 9 * 60 + 30, 1.0);
    assert_eq!(gate.histograms.as_ref(), &want);
    assert_eq!(gate.days(), 1);
}

/// The minute of day and clock chrono gives an instant in New York.
fn chrono_minute(ts: i64) -> (usize, usize, NaiveDate) {
    use chrono_tz::OffsetComponents;
    let local = DateTime::from_timestamp_millis(ts)
        .unwrap()
        .with_timezone(&NY);
    let clock = usize::from(!local.offset().dst_offset().is_zero());
    let minute = (local.hour() * 60 + local.minute()) as usize;
    (clock, minute, local.date_naive())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every bar lands in the minute and clock chrono gives it, or among the off-day bars,
    /// whatever the order (DST days, midnight, jumps back and forth).
    #[test]
    fn observe_bins_like_chrono(stamps in prop::collection::vec(
        // 2023-01-01 .. 2025-12-31, any second.
        1_672_531_200_000i64..1_767_139_200_000, 1..200)) {
        let mut gate = SessionGate::new(NY, GateOptions::default());
        let mut want = Histograms::default();
        let mut off_days = 0;
        for &ts in &stamps {
            gate.observe(ts, 7.0);
            let (clock, minute, date) = chrono_minute(ts);
            if calendar::is_trading_day(date) {
                want.add(clock, minute, 7.0);
            } else {
                off_days += 1;
            }
        }
        prop_assert_eq!(gate.histograms.as_ref(), &want);
        prop_assert_eq!(gate.bars().1, off_days);
    }
}

/// A random generated file: symbol, seed, first day 2015..2025, 1 to 120 days long.
fn random_file() -> impl Strategy<Value = Vec<GenBar>> {
    ("[A-Z]{1,5}", any::<u64>(), 0u32..3650, 0u32..120).prop_map(|(symbol, seed, from, len)| {
        let start = d(2015, 1, 1) + chrono::Days::new(u64::from(from));
        generated(
            &symbol,
            seed,
            start,
            start + chrono::Days::new(u64::from(len)),
        )
    })
}

fn has_evidence(bars: &[GenBar]) -> bool {
    let options = GateOptions::default();
    let days: std::collections::BTreeSet<NaiveDate> = bars.iter().map(|b| b.date).collect();
    bars.len() as u64 >= options.min_bars && days.len() as u32 >= options.min_days
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Generated files read in their zone are never suspect; read as UTC they always are
    /// (when they hold the minimum evidence), and the verdict names UTC.
    #[test]
    fn generated_files_pass_and_their_utc_copies_do_not(bars in random_file()) {
        let right = verdict_of(&bars, NY, NY);
        prop_assert!(!matches!(right, Verdict::Suspect { .. }), "{:?}", right);
        let wrong = verdict_of(&bars, UTC, NY);
        if has_evidence(&bars) {
            let zone = match &wrong {
                Verdict::Suspect { reason, .. } => reason.zone,
                _ => None,
            };
            prop_assert_eq!(zone, Some("UTC"), "{:?}", wrong);
        } else {
            prop_assert!(!matches!(wrong, Verdict::Suspect { .. }), "{:?}", wrong);
        }
    }
}

/// bar-gen's bars over `start..=end`, stamped at their end when `end_stamps`.
fn stamped(seed: u64, start: NaiveDate, end: NaiveDate, end_stamps: bool) -> Vec<GenBar> {
    let spec = GenSpec {
        symbols: vec!["NT".into()],
        start,
        end,
        seed,
    };
    SymbolBars::new(&spec, "NT")
        .end_stamped(end_stamps)
        .collect()
}

/// The verdict of a gate told `stamp`, on `bars` (New York wall times) moved `shift_ms` as the
/// loader would store them.
fn stamp_verdict(bars: &[GenBar], stamp: Stamp, shift_ms: i64) -> Verdict {
    let options = GateOptions {
        stamp: Some(stamp),
        ..GateOptions::default()
    };
    let mut gate = SessionGate::new(NY, options);
    for b in bars {
        gate.observe(stored(b, NY, NY).unwrap() + shift_ms, b.volume as f64);
    }
    gate.verdict()
}

/// Bar ends read as opens (no rule): `suspect_bar_end`, naming the rule. Before the stamp
/// check, such a file passed the gate and was stored a minute late.
#[test]
fn bar_ends_read_as_opens_are_suspect_bar_end() {
    let ends = stamped(3, d(2024, 2, 20), d(2024, 4, 19), true);
    let v = stamp_verdict(&ends, Stamp::Start, 0);
    let Verdict::SuspectBarEnd {
        late_minutes,
        message,
    } = &v
    else {
        panic!("{v:?}")
    };
    assert_eq!(*late_minutes, 1);
    assert_eq!(v.reason_code(), Some(SUSPECT_BAR_END));
    for part in [
        "the activity peaks at 09:31 and 16:00 exchange time instead of 09:30 and 15:59",
        "set `stamp = \"end\"` in the `[[source]]` rule for these files",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    // Regular-session bars only: bars at 16:00, none at 09:30.
    let regular: Vec<GenBar> = ends
        .iter()
        .copied()
        .filter(|b| (571..=960).contains(&b.minute))
        .collect();
    let v = stamp_verdict(&regular, Stamp::Start, 0);
    assert!(
        matches!(&v, Verdict::SuspectBarEnd { message, .. } if message.contains("0 bars at 09:30")),
        "{v:?}"
    );
}

/// With `stamp = "end"` the loader stores each bar a minute earlier: the same file passes. A
/// start-stamped file under that rule is `suspect_bar_end` the other way.
#[test]
fn the_end_rule_passes_bar_ends_and_refuses_bar_opens() {
    let ends = stamped(4, d(2023, 10, 2), d(2023, 11, 30), true);
    assert_eq!(stamp_verdict(&ends, Stamp::End, -60_000), Verdict::Pass);
    let opens = stamped(4, d(2023, 10, 2), d(2023, 11, 30), false);
    let v = stamp_verdict(&opens, Stamp::End, -60_000);
    let Verdict::SuspectBarEnd {
        late_minutes,
        message,
    } = &v
    else {
        panic!("{v:?}")
    };
    assert_eq!(*late_minutes, -1);
    assert!(
        message.contains("the session opens at 09:29")
            && message.contains("remove `stamp = \"end\"`"),
        "{message}"
    );
}

/// Normal files pass: bar-gen's (extended hours), regular-session only (no bar at 16:00), and
/// with the closing auction printed at 16:00 as some vendors stamp it (a heavy bar there every
/// day); and a file too thin to judge at one minute's resolution passes unjudged.
#[test]
fn start_stamped_files_pass_the_stamp_check() {
    let opens = stamped(5, d(2024, 5, 1), d(2024, 6, 28), false);
    assert_eq!(stamp_verdict(&opens, Stamp::Start, 0), Verdict::Pass);
    let regular: Vec<GenBar> = opens
        .iter()
        .copied()
        .filter(|b| (570..960).contains(&b.minute))
        .collect();
    assert_eq!(stamp_verdict(&regular, Stamp::Start, 0), Verdict::Pass);
    let mut closing = Vec::new();
    for (i, b) in regular.iter().enumerate() {
        closing.push(*b);
        if regular.get(i + 1).is_none_or(|n| n.date != b.date) {
            closing.push(GenBar {
                minute: 960,
                volume: b.volume * 5,
                ..*b
            });
        }
    }
    assert_eq!(stamp_verdict(&closing, Stamp::Start, 0), Verdict::Pass);
    // One day of bar ends: too few bars per minute to tell; the time-zone gate still judges.
    let one_day = stamped(5, d(2024, 5, 1), d(2024, 5, 1), true);
    assert_eq!(stamp_verdict(&one_day, Stamp::Start, 0), Verdict::Pass);
    // Not one-minute bars (no stamp to judge): bar ends pass.
    let ends = stamped(5, d(2024, 5, 1), d(2024, 6, 28), true);
    let unjudged = GateOptions {
        stamp: None,
        ..GateOptions::default()
    };
    assert_eq!(verdict_with(&ends, NY, NY, unjudged), Verdict::Pass);
}
