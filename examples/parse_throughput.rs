//! Throughput check for the read path: about two million FirstRate-style lines generated in
//! memory, read and validated by `BarReader`; prints rows/s and ns/row (median of three runs).
//! Run with `cargo run --release --example parse_throughput`. A measurement, not a test: it
//! asserts nothing about speed.
//!
//! `-- --layout NAME` writes the same bars in another layout and reads them through
//! `Layout::open` (a boxed source): `firstrate-boxed`, `polygon`, `databento`, `kibot`,
//! `csv-utc`, `csv-epoch-ms` (the default, `firstrate`, reads with `BarReader::new`).

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use bar_ingest::pipeline::validate::{BarReader, Row};
use bar_ingest::source::Interval;
use bar_ingest::source::csv::CsvSpec;
use bar_ingest::source::layout::Layout;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};

/// Lines to generate: enough that one run takes long enough to time well.
const LINES: usize = 2_000_000;
/// Timed runs; the median is reported.
const RUNS: usize = 3;
/// One line in this many is made invalid (a high below its low), so the reject path is in the mix
/// the way a real file's few bad lines are.
const REJECT_EVERY: usize = 10_000;

/// One generated bar: local date and minute, prices in ticks (1/10 000), volume.
struct GenRow {
    date: NaiveDate,
    minute: u32,
    /// Open, high, low, close.
    prices: [i64; 4],
    volume: usize,
}

/// Minute bars of the extended session, 04:00 to 20:00 local, on weekdays from 2005-01-03,
/// with 4-decimal prices around a slow walk: the shape of a real FirstRate file.
fn generate() -> Vec<GenRow> {
    let mut rows = Vec::with_capacity(LINES);
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
                rows.push(GenRow {
                    date,
                    minute,
                    prices: [o, hi, lo, c],
                    volume: (n * 31) % 50_000,
                });
                n += 1;
            }
        }
        date = date.succ_opt().expect("a following day");
    }
    rows
}

/// A price as FirstRate writes it here: always four decimals.
fn price(t: i64) -> String {
    format!("{}.{:04}", t / 10_000, t % 10_000)
}

/// The row's open as UTC milliseconds (New York time).
fn utc_millis(row: &GenRow) -> i64 {
    let time = NaiveTime::from_hms_opt(row.minute / 60, row.minute % 60, 0).expect("a minute");
    chrono_tz::America::New_York
        .from_local_datetime(&NaiveDateTime::new(row.date, time))
        .earliest()
        .expect("no bar in a DST gap")
        .timestamp_millis()
}

/// The rows as text in the layout `name`, and the layout to read them with.
fn format(name: &str, rows: &[GenRow]) -> (Vec<u8>, Layout) {
    let mut out = Vec::with_capacity(LINES * 80);
    let header = |out: &mut Vec<u8>, h: &str| writeln!(out, "{h}").expect("writing to memory");
    let layout = match name {
        "firstrate" | "firstrate-boxed" => Layout::FirstRate {
            interval: Interval::OneMinute,
        },
        "polygon" => {
            header(
                &mut out,
                "ticker,volume,open,close,high,low,window_start,transactions",
            );
            Layout::Polygon
        }
        "databento" => {
            header(
                &mut out,
                "ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume,symbol",
            );
            Layout::Databento
        }
        "kibot" => Layout::Kibot,
        "csv-utc" | "csv-epoch-ms" => {
            header(&mut out, "timestamp,open,high,low,close,volume");
            Layout::Csv(CsvSpec::default())
        }
        other => panic!("unknown layout {other:?}"),
    };
    for row in rows {
        write_row(&mut out, name, row).expect("writing to memory");
    }
    (out, layout)
}

/// One row as a line of the layout `name`.
fn write_row(out: &mut Vec<u8>, name: &str, row: &GenRow) -> std::io::Result<()> {
    let [o, h, l, c] = row.prices.map(price);
    let v = row.volume;
    let (hour, minute) = (row.minute / 60, row.minute % 60);
    let ns = i128::from(utc_millis(row)) * 1_000_000;
    let fixed = row.prices.map(|t| t * 100_000);
    match name {
        "firstrate" | "firstrate-boxed" => {
            let date = row.date.format("%Y-%m-%d");
            writeln!(out, "{date} {hour:02}:{minute:02}:00,{o},{h},{l},{c},{v}")
        }
        "polygon" => writeln!(out, "SYM,{v},{o},{c},{h},{l},{ns},1"),
        "databento" => {
            let [o, h, l, c] = fixed;
            writeln!(out, "{ns},33,2,1,{o},{h},{l},{c},{v},SYM")
        }
        "kibot" => {
            let date = row.date.format("%m/%d/%Y");
            writeln!(out, "{date},{hour:02}:{minute:02},{o},{h},{l},{c},{v}")
        }
        "csv-utc" => {
            let at = chrono::DateTime::from_timestamp_millis(utc_millis(row)).expect("in range");
            let at = at.format("%Y-%m-%dT%H:%M:%SZ");
            writeln!(out, "{at},{o},{h},{l},{c},{v}")
        }
        _ => writeln!(out, "{},{o},{h},{l},{c},{v}", utc_millis(row)),
    }
}

/// One pass over the input: (bars, rejections, time taken). With a layout, through
/// `Layout::open` (a boxed source), else FirstRate through `BarReader::new`.
fn run(input: &'static [u8], layout: Option<Layout>) -> (u64, u64, Duration) {
    let tz = chrono_tz::America::New_York;
    let started = Instant::now();
    let (mut bars, mut rejected) = (0u64, 0u64);
    match layout {
        None => {
            for row in BarReader::new(input, tz) {
                match black_box(row.expect("reading memory cannot fail")) {
                    Row::Bar(_) => bars += 1,
                    Row::Rejected(_) => rejected += 1,
                }
            }
        }
        Some(layout) => {
            for row in BarReader::from_source(layout.open(input), tz) {
                match black_box(row.expect("reading memory cannot fail")) {
                    Row::Bar(_) => bars += 1,
                    Row::Rejected(_) => rejected += 1,
                }
            }
        }
    }
    (bars, rejected, started.elapsed())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = match &args[1..] {
        [] => "firstrate",
        [flag, name] if flag == "--layout" => name.as_str(),
        _ => panic!("usage: parse_throughput [--layout NAME]"),
    };
    let (input, layout) = format(name, &generate());
    // Leaked: a boxed source needs a 'static reader, and the example ends after the runs.
    let input: &'static [u8] = Vec::leak(input);
    let layout = (name != "firstrate").then_some(layout);
    println!(
        "{name}: {LINES} lines, {:.1} MiB",
        input.len() as f64 / (1 << 20) as f64
    );
    let mut times = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        let (bars, rejected, took) = run(input, layout);
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
