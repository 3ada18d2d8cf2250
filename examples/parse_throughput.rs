//! Throughput check for the read path: about two million FirstRate-style lines generated in
//! memory, read and validated by `BarReader`; prints rows/s and ns/row (median of three runs).
//! Run with `cargo run --release --example parse_throughput`. A measurement, not a test: it
//! asserts nothing about speed.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use bar_ingest::pipeline::validate::{BarReader, Row};
use chrono::{Datelike, NaiveDate, Weekday};

/// Lines to generate: enough that one run takes long enough to time well.
const LINES: usize = 2_000_000;
/// Timed runs; the median is reported.
const RUNS: usize = 3;
/// One line in this many is made invalid (a high below its low), so the reject path is in the mix
/// the way a real file's few bad lines are.
const REJECT_EVERY: usize = 10_000;

/// Minute bars of the extended session, 04:00 to 20:00 local, on weekdays from 2005-01-03,
/// with 4-decimal prices around a slow walk: the shape of a real FirstRate file.
fn generate() -> Vec<u8> {
    let mut out = Vec::with_capacity(LINES * 56);
    let mut date = NaiveDate::from_ymd_opt(2005, 1, 3).expect("a real date");
    let mut ticks: i64 = 1_000_000;
    let mut n = 0usize;
    while n < LINES {
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            for minute in (4 * 60)..(20 * 60) {
                if n == LINES {
                    break;
                }
                // A cheap deterministic wiggle.
                ticks += ((n as i64 * 7919) % 61) - 30;
                let (o, c) = (ticks, ticks + (n as i64 % 17) - 8);
                let (mut lo, mut hi) = (o.min(c) - 5, o.max(c) + 5);
                if n % REJECT_EVERY == REJECT_EVERY - 1 {
                    std::mem::swap(&mut lo, &mut hi);
                }
                let p = |t: i64| format!("{}.{:04}", t / 10_000, t % 10_000);
                writeln!(
                    out,
                    "{} {:02}:{:02}:00,{},{},{},{},{}",
                    date.format("%Y-%m-%d"),
                    minute / 60,
                    minute % 60,
                    p(o),
                    p(hi),
                    p(lo),
                    p(c),
                    (n * 31) % 50_000
                )
                .expect("writing to memory");
                n += 1;
            }
        }
        date = date.succ_opt().expect("a following day");
    }
    out
}

/// One pass over the input: (bars, rejections, time taken).
fn run(input: &[u8]) -> (u64, u64, Duration) {
    let started = Instant::now();
    let (mut bars, mut rejected) = (0u64, 0u64);
    for row in BarReader::new(input, chrono_tz::America::New_York) {
        match black_box(row.expect("reading memory cannot fail")) {
            Row::Bar(_) => bars += 1,
            Row::Rejected(_) => rejected += 1,
        }
    }
    (bars, rejected, started.elapsed())
}

fn main() {
    let input = generate();
    println!(
        "{LINES} lines, {:.1} MiB",
        input.len() as f64 / (1 << 20) as f64
    );
    let mut times = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        let (bars, rejected, took) = run(&input);
        let rows = bars + rejected;
        println!(
            "run {i}: {bars} bars + {rejected} rejected in {:.3} s: {:.0} rows/s, {:.1} ns/row",
            took.as_secs_f64(),
            rows as f64 / took.as_secs_f64(),
            took.as_nanos() as f64 / rows as f64
        );
        times.push(took);
    }
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "median: {:.0} rows/s, {:.1} ns/row",
        LINES as f64 / median.as_secs_f64(),
        median.as_nanos() as f64 / LINES as f64
    );
}
