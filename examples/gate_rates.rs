//! False positives and false negatives of the time-zone gate over random generated files
//! (`bar_gen`: random symbol, seed, first day 2010–2025, 1 to 250 days): each file read in its
//! own zone (must not be suspect), with its times written in UTC or Chicago time and read as
//! New York time (must be suspect, naming UTC or a −1 h shift, when the gate saw its minimum
//! evidence), and the same for regular-session-only copies, regular-session copies with the
//! closing print stamped 16:00 (as some vendors do) and sparse copies (a random 0.5 % to 20 % of
//! the bars: an illiquid symbol). The bar-stamp check the same way: bar ends read as opens (must
//! be `suspect_bar_end`, +1 min), bar ends read with `stamp = "end"` (must pass) and bar opens
//! read with `stamp = "end"` (must be `suspect_bar_end`, −1 min). Prints one line per case.
//! Run with `cargo run --release --example gate_rates [FILES]` (default 200). A measurement.

use bar_gen::{GenBar, GenSpec, SymbolBars};
use bar_ingest::model::Stamp;
use bar_ingest::pipeline::gate::{GateOptions, SessionGate, Verdict};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NY: Tz = chrono_tz::America::New_York;

/// What a case expects of the gate.
#[derive(Clone, Copy)]
enum Expect {
    Pass,
    /// Suspect with this zone named, or this shift on the main clock when no zone is expected.
    Suspect(Option<&'static str>, i32),
    /// Suspect bar stamps, this many minutes late.
    BarEnd(i32),
}

/// One case: how the file's times were written and read.
struct Case {
    name: &'static str,
    /// The zone the vendor wrote wall times in (read as New York).
    written_in: Tz,
    /// Minutes the times land late once read (+1: bar ends read as opens; −1: opens read as
    /// ends, which the loader moves a minute earlier).
    late_minutes: i64,
    /// The rule's stamp the gate is told.
    stamp: Stamp,
    expect: Expect,
}

#[derive(Default)]
struct Tally {
    files: u32,
    suspect: u32,
    not_enough: u32,
    /// Of `not_enough`: too few bars or days (the rest: off-hours bars no shift explains).
    too_few: u32,
    wrong: u32,
}

fn random_file(rng: &mut StdRng) -> Vec<GenBar> {
    let len: usize = rng.random_range(1..=5);
    let symbol: String = (0..len)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect();
    let start = NaiveDate::from_ymd_opt(2010, 1, 1).expect("a date")
        + chrono::Days::new(rng.random_range(0..5_800));
    let spec = GenSpec {
        symbols: vec![symbol.clone()],
        start,
        end: start + chrono::Days::new(rng.random_range(0..250)),
        seed: rng.random(),
    };
    SymbolBars::new(&spec, &symbol).collect()
}

fn verdict(bars: &[GenBar], case: &Case) -> Verdict {
    let options = GateOptions {
        stamp: Some(case.stamp),
        ..GateOptions::default()
    };
    let (written_in, late) = (case.written_in, case.late_minutes * 60_000);
    let mut gate = SessionGate::new(NY, options);
    for b in bars {
        let Some(meant) = NY
            .from_local_datetime(&b.date.and_time(b.time()))
            .earliest()
        else {
            continue;
        };
        let text = meant.with_timezone(&written_in).naive_local();
        if let Some(read) = NY.from_local_datetime(&text).earliest() {
            gate.observe(read.timestamp_millis() + late, b.volume as f64);
        }
    }
    gate.verdict()
}

fn tally(t: &mut Tally, v: &Verdict, expect: Expect) {
    t.files += 1;
    match (v, expect) {
        (Verdict::Pass, Expect::Pass) => {}
        (Verdict::NotEnoughEvidence { message }, _) => {
            t.not_enough += 1;
            t.too_few += u32::from(message.starts_with("the time-zone gate needs"));
        }
        (Verdict::Suspect { .. } | Verdict::SuspectBarEnd { .. }, Expect::Pass) => {
            t.suspect += 1;
            t.wrong += 1;
        }
        (Verdict::SuspectBarEnd { late_minutes, .. }, expect) => {
            t.suspect += 1;
            t.wrong += u32::from(!matches!(expect, Expect::BarEnd(m) if m == *late_minutes));
        }
        (Verdict::Suspect { .. }, Expect::BarEnd(_)) => {
            t.suspect += 1;
            t.wrong += 1;
        }
        (
            Verdict::Suspect {
                reason,
                shift_hours,
                ..
            },
            Expect::Suspect(zone, shift),
        ) => {
            t.suspect += 1;
            let named_right = match zone {
                Some(z) => reason.zone == Some(z),
                None => *shift_hours == shift,
            };
            t.wrong += u32::from(!named_right);
        }
        (Verdict::Pass, Expect::Suspect(..) | Expect::BarEnd(_)) => t.wrong += 1,
    }
}

fn main() {
    let files: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut rng = StdRng::seed_from_u64(20_240_710);
    let chicago = chrono_tz::America::Chicago;
    let utc = chrono_tz::UTC;
    let case = |name, written_in, late_minutes, stamp, expect| Case {
        name,
        written_in,
        late_minutes,
        stamp,
        expect,
    };
    let cases = [
        case("in its zone", NY, 0, Stamp::Start, Expect::Pass),
        case(
            "UTC read as New York",
            utc,
            0,
            Stamp::Start,
            Expect::Suspect(Some("UTC"), 0),
        ),
        case(
            "Chicago read as New York",
            chicago,
            0,
            Stamp::Start,
            Expect::Suspect(Some("America/Chicago"), -1),
        ),
        case(
            "bar ends read as opens",
            NY,
            1,
            Stamp::Start,
            Expect::BarEnd(1),
        ),
        case("bar ends, stamp = end", NY, 0, Stamp::End, Expect::Pass),
        case(
            "bar opens, stamp = end",
            NY,
            -1,
            Stamp::End,
            Expect::BarEnd(-1),
        ),
    ];
    let shapes = [
        "whole day",
        "regular session only",
        "regular + 16:00 print",
        "sparse",
    ];
    let mut tallies: Vec<Tally> = (0..shapes.len() * cases.len())
        .map(|_| Tally::default())
        .collect();
    for _ in 0..files {
        let whole = random_file(&mut rng);
        let keep = rng.random_range(0.005..0.2);
        let sparse: Vec<GenBar> = whole
            .iter()
            .copied()
            .filter(|_| rng.random_bool(keep))
            .collect();
        let regular: Vec<GenBar> = whole
            .iter()
            .copied()
            .filter(|b| (570..960).contains(&b.minute))
            .collect();
        // The closing auction stamped 16:00: a bar there each day, as heavy as the last minute.
        let mut closing = Vec::with_capacity(regular.len());
        for (i, b) in regular.iter().enumerate() {
            closing.push(*b);
            let last_of_day = regular.get(i + 1).is_none_or(|n| n.date != b.date);
            if last_of_day && b.minute == 959 {
                closing.push(GenBar {
                    minute: 960,
                    volume: b.volume * 3,
                    ..*b
                });
            }
        }
        for (s, bars) in [&whole, &regular, &closing, &sparse]
            .into_iter()
            .enumerate()
        {
            for (c, case) in cases.iter().enumerate() {
                let t = &mut tallies[s * cases.len() + c];
                tally(t, &verdict(bars, case), case.expect);
            }
        }
    }
    println!(
        "{files} random files per line; wrong = false positive (in its zone) or false negative / misnamed (shifted)"
    );
    for (s, shape) in shapes.iter().enumerate() {
        for (c, case) in cases.iter().enumerate() {
            let case = case.name;
            let t = &tallies[s * cases.len() + c];
            let judged = t.files - t.not_enough;
            println!(
                "{shape:>21} | {case:<25} | suspect {:>4} | not enough evidence {:>4} ({} too few bars) | wrong {:>3} of {judged} judged ({:.1}%)",
                t.suspect,
                t.not_enough,
                t.too_few,
                t.wrong,
                100.0 * f64::from(t.wrong) / f64::from(judged.max(1))
            );
        }
    }
}
