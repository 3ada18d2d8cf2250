//! Cost of the time-zone gate per bar: feeds ten million one-minute bars (04:00–20:00 New York,
//! every weekday from 2005, in time order as a file holds them) to `SessionGate::observe`, then
//! takes the verdict; prints ns/bar (median of three runs) and the verdict's own time.
//! Run with `cargo run --release --example gate_cost`. A measurement, not a test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bar_ingest::pipeline::gate::{GateOptions, SessionGate};
use chrono::{Datelike, NaiveDate, TimeZone, Weekday};

const BARS: usize = 10_000_000;
const RUNS: usize = 3;

/// The bars' instants (UTC millis) and volumes, built before timing.
fn bars() -> Vec<(i64, f64)> {
    let tz = chrono_tz::America::New_York;
    let mut out = Vec::with_capacity(BARS);
    let mut date = NaiveDate::from_ymd_opt(2005, 1, 3).expect("a real date");
    while out.len() < BARS {
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            let midnight = date.and_hms_opt(0, 0, 0).expect("midnight");
            let start = tz
                .from_local_datetime(&midnight)
                .earliest()
                .expect("New York midnights exist")
                .timestamp_millis();
            for minute in (4 * 60)..(20 * 60) {
                if out.len() == BARS {
                    break;
                }
                out.push((start + minute * 60_000, ((minute * 37) % 5_000) as f64));
            }
        }
        date = date.succ_opt().expect("a following day");
    }
    out
}

fn main() {
    let bars = bars();
    let mut times = Vec::new();
    let mut verdict_time = Duration::ZERO;
    for _ in 0..RUNS {
        let mut gate = SessionGate::new(chrono_tz::America::New_York, GateOptions::default());
        let started = Instant::now();
        for &(ts, volume) in &bars {
            gate.observe(black_box(ts), black_box(volume));
        }
        times.push(started.elapsed());
        let started = Instant::now();
        black_box(gate.verdict());
        verdict_time = started.elapsed();
    }
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "gate: {BARS} bars, median {:.3} s: {:.2} ns/bar; verdict {:.2} ms",
        median.as_secs_f64(),
        median.as_nanos() as f64 / BARS as f64,
        verdict_time.as_secs_f64() * 1e3
    );
}
