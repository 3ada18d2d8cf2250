//! False positives and false negatives of the time-zone gate over random generated files
//! (`bar_gen`: random symbol, seed, first day 2010–2025, 1 to 250 days): each file read in its
//! own zone (must not be suspect), with its times written in UTC or Chicago time and read as
//! New York time (must be suspect, naming UTC or a −1 h shift, when the gate saw its minimum
//! evidence), and the same for regular-session-only copies and sparse copies (a random 0.5 % to
//! 20 % of the bars: an illiquid symbol). Prints one line per case.
//! Run with `cargo run --release --example gate_rates [FILES]` (default 200). A measurement.

use bar_gen::{GenBar, GenSpec, SymbolBars};
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

fn verdict(bars: &[GenBar], written_in: Tz) -> Verdict {
    let mut gate = SessionGate::new(NY, GateOptions::default());
    for b in bars {
        let Some(meant) = NY
            .from_local_datetime(&b.date.and_time(b.time()))
            .earliest()
        else {
            continue;
        };
        let text = meant.with_timezone(&written_in).naive_local();
        if let Some(read) = NY.from_local_datetime(&text).earliest() {
            gate.observe(read.timestamp_millis(), b.volume as i64);
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
        (Verdict::Suspect { .. }, Expect::Pass) => {
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
        (Verdict::Pass, Expect::Suspect(..)) => t.wrong += 1,
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
    let cases: [(&str, Tz, Expect); 3] = [
        ("in its zone", NY, Expect::Pass),
        ("UTC read as New York", utc, Expect::Suspect(Some("UTC"), 0)),
        (
            "Chicago read as New York",
            chicago,
            Expect::Suspect(Some("America/Chicago"), -1),
        ),
    ];
    let shapes = ["whole day", "regular session only", "sparse"];
    let mut tallies: Vec<Tally> = (0..9).map(|_| Tally::default()).collect();
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
        for (s, bars) in [&whole, &regular, &sparse].into_iter().enumerate() {
            for (c, (_, zone, expect)) in cases.iter().enumerate() {
                tally(&mut tallies[s * 3 + c], &verdict(bars, *zone), *expect);
            }
        }
    }
    println!(
        "{files} random files per line; wrong = false positive (in its zone) or false negative / misnamed (shifted)"
    );
    for (s, shape) in shapes.iter().enumerate() {
        for (c, (case, _, _)) in cases.iter().enumerate() {
            let t = &tallies[s * 3 + c];
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
