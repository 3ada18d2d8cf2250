//! Peak memory of loading one Polygon day file sorted by time (every ticker's minute 04:00,
//! then every ticker's 04:01, ...) into day cells: the day builder keeps one open day per
//! ticker. Needs the dev node (`./scripts/dev-db start`). `scripts/bench-day-memory` measures the
//! same with the release binary (no example build with the dev-dependencies needed).
//!
//! `cargo run --release --example day_memory -- [TICKERS]` (default 10,000): writes the file
//! (bar-gen's bars: about 520 a ticker, 04:00-19:59 with gaps), loads it into a scratch
//! keyspace with layout `days`, checks the bars written, prints bars, seconds, bars/s and the
//! process's peak RSS (VmHWM), and drops the keyspace.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bar_gen::layouts::utc_millis;
use bar_gen::{GenBar, GenSpec, SymbolBars};
use bar_ingest::config::{Settings, StorageLayout};
use bar_ingest::ingest::{FileResult, LoadOptions, Loader, WaitForDatabase};
use bar_ingest::store::{self, Schema};
use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let tickers: usize = std::env::args().nth(1).map_or(Ok(10_000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("2024-03-05.csv");
    let bars = write_time_sorted_day(&path, tickers)?;
    let size = std::fs::metadata(&path)?.len();
    println!("file: {tickers} tickers, {bars} bars, {size} bytes, sorted by time");
    let rss_before = peak_rss_kib();
    let mut settings = Settings::defaults(Some("127.0.0.1:9042"))?;
    settings.database.keyspace = format!("bench_daymem_{}", std::process::id());
    settings.database.consistency = scylla::statement::Consistency::One;
    settings.layout = Some(StorageLayout::Days);
    let session = store::connect(&settings).await?;
    let schema = Schema::from_config(&settings.database);
    store::init_schema(&session, &schema).await?;
    let loader = connect(&settings, dir.path()).await?;
    let started = Instant::now();
    let result = loader
        .load(
            &path,
            LoadOptions::default(),
            &CancellationToken::new(),
            None,
        )
        .await;
    let took = started.elapsed().as_secs_f64();
    let drop = format!("DROP KEYSPACE IF EXISTS {}", schema.keyspace);
    session.query_unpaged(drop, ()).await?;
    let written = match result.into_single() {
        Some(FileResult::Loaded(s)) => s.rows_written,
        other => anyhow::bail!("the day file did not load: {other:?}"),
    };
    anyhow::ensure!(written == bars, "{written} bars written of {bars}");
    println!(
        "loaded into day cells: {written} bars in {took:.1} s ({:.0} bars/s)",
        written as f64 / took
    );
    println!(
        "peak RSS (VmHWM): {:.1} MiB (after writing the file, before loading: {:.1} MiB)",
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    Ok(())
}

/// A loader on the dev node.
async fn connect(
    settings: &Settings,
    dead_letter: &std::path::Path,
) -> anyhow::Result<Arc<Loader>> {
    let health = Arc::new(bar_ingest::telemetry::health::Health::default());
    let cancel = CancellationToken::new();
    let loader = Loader::connect(
        settings,
        health,
        dead_letter.to_owned(),
        WaitForDatabase::No,
        &cancel,
    )
    .await?;
    loader.ok_or_else(|| anyhow::anyhow!("cancelled"))
}

/// Writes a Polygon minute-aggregates day file of `tickers` tickers in time order; returns the
/// bars written.
fn write_time_sorted_day(path: &std::path::Path, tickers: usize) -> anyhow::Result<u64> {
    let day = NaiveDate::from_ymd_opt(2024, 3, 5).expect("a date");
    let spec = GenSpec {
        symbols: bar_gen::numbered_symbols(tickers),
        start: day,
        end: day,
        seed: 7,
    };
    let mut gens: Vec<(String, std::iter::Peekable<SymbolBars>)> = spec
        .symbols
        .iter()
        .map(|s| (s.clone(), SymbolBars::new(&spec, s).peekable()))
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"ticker,volume,open,close,high,low,window_start,transactions\n")?;
    let mut bars = 0;
    for minute in 0..1440 {
        for (ticker, g) in &mut gens {
            if let Some(b) = g.next_if(|b| b.minute == minute) {
                write_line(&mut out, ticker, &b)?;
                bars += 1;
            }
        }
    }
    out.flush()?;
    Ok(bars)
}

fn write_line(out: &mut impl Write, ticker: &str, b: &GenBar) -> std::io::Result<()> {
    let p = bar_gen::ticks_to_price;
    writeln!(
        out,
        "{ticker},{},{},{},{},{},{},{}",
        b.volume,
        p(b.open),
        p(b.close),
        p(b.high),
        p(b.low),
        i128::from(utc_millis(b)) * 1_000_000,
        b.volume / 100 + 1
    )
}

/// The process's peak resident set, KiB (`VmHWM` in /proc/self/status).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
