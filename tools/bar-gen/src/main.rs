//! The `bar-gen` binary: parse the command line, write the files, print what was written.
//!
//! Same flags as the former hidden `bar-ingest generate` command.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bar_gen::download::{GenInterval, Order, write_download};
use bar_gen::layouts::{OutLayout, write_layout_variant};
use bar_gen::numbered_symbols;
use bar_gen::pack::{Pack, pack};
use bar_gen::{GenSpec, Variant};
use chrono::NaiveDate;
use clap::Parser;

/// Exit code when the files could not be written (bad arguments exit 2 through clap too).
const EXIT_FAILED: u8 = 2;

/// Writes deterministic, realistic bar files in a vendor layout (for tests, demos and benchmarks).
#[derive(Debug, Parser)]
#[command(name = "bar-gen", version, about)]
#[command(group(clap::ArgGroup::new("which_symbols").required(true).args(["symbols", "symbol_list"])))]
struct Args {
    /// Folder to write the files into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// How many symbols, named SYM000, SYM001, ...
    #[arg(long)]
    symbols: Option<usize>,
    /// The symbols, comma-separated (e.g. AAPL,BRK.B).
    #[arg(long, value_delimiter = ',')]
    symbol_list: Vec<String>,
    /// First day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    from: NaiveDate,
    /// Last day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    to: NaiveDate,
    /// Seed: the same arguments give byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pack the files: each gzipped (`.gz`), each zstd-compressed (`.zst`), or all in one
    /// `bundle.zip`. Default: plain files.
    #[arg(long, value_enum)]
    pack: Option<Pack>,
    /// The layout: firstrate (a file per symbol), polygon (a YYYY-MM-DD.csv per day, every
    /// symbol, UTC ns), databento (one file, symbol column, fixed-point prices), kibot,
    /// csv-utc or csv-epoch-ms (a file per symbol with a header). The bars are the same.
    #[arg(long, default_value = "firstrate", value_parser = parse_layout)]
    layout: OutLayout,
    /// A FirstRate download: one file per interval and symbol,
    /// `{SYMBOL}_full_{INTERVAL}_adjsplit.txt`, comma-separated from 1min, 5min, 30min, 1hour,
    /// 1day (e.g. `--intervals 1min,5min,30min,1hour,1day`); the coarser bars are aggregated
    /// from the 1min bars, the daily ones over the regular session, written date-only. Only
    /// with the firstrate layout.
    #[arg(long, value_delimiter = ',', value_parser = parse_interval)]
    intervals: Vec<GenInterval>,
    /// Write every file newest first (its lines in reverse time order, as Alpha Vantage
    /// does). Only with the firstrate layout.
    #[arg(long)]
    newest_first: bool,
    /// Stamp every bar at its end, one minute after its open (as NinjaTrader, Bloomberg,
    /// TradeStation and older Alpha Vantage exports do): `start` (default) or `end`.
    #[arg(long, default_value = "start", value_parser = ["start", "end"])]
    stamp: String,
    /// Volumes with six decimals, as Massive (Polygon) flat files since 2026-02-23 (polygon
    /// layout only).
    #[arg(long)]
    decimal_volumes: bool,
}

fn parse_interval(name: &str) -> Result<GenInterval, String> {
    GenInterval::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = GenInterval::ALL.iter().map(|(_, n)| *n).collect();
        format!("unknown interval {name:?} (one of {})", names.join(", "))
    })
}

fn parse_layout(name: &str) -> Result<OutLayout, String> {
    OutLayout::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = OutLayout::ALL.iter().map(|(_, n)| *n).collect();
        format!("unknown layout {name:?} (one of {})", names.join(", "))
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bar-gen: error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let symbols = match args.symbols {
        Some(0) => anyhow::bail!("--symbols must be at least 1"),
        Some(n) => numbered_symbols(n),
        None => args.symbol_list,
    };
    if args.from > args.to {
        anyhow::bail!("--from {} is after --to {}", args.from, args.to);
    }
    let spec = GenSpec {
        symbols,
        start: args.from,
        end: args.to,
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let variant = Variant {
        end_stamps: args.stamp == "end",
        decimal_volumes: args.decimal_volumes,
    };
    let download = !args.intervals.is_empty() || args.newest_first;
    if download && args.layout != OutLayout::FirstRate {
        anyhow::bail!(
            "--intervals and --newest-first write FirstRate files: use --layout firstrate"
        );
    }
    if download && (variant.end_stamps || variant.decimal_volumes) {
        anyhow::bail!(
            "--intervals and --newest-first cannot be combined with --stamp end or --decimal-volumes"
        );
    }
    let written = if download {
        let intervals = match args.intervals.as_slice() {
            [] => vec![GenInterval::OneMinute],
            some => some.to_vec(),
        };
        let order = if args.newest_first {
            Order::NewestFirst
        } else {
            Order::OldestFirst
        };
        write_download(&spec, &intervals, order, &args.out)
    } else {
        write_layout_variant(&spec, args.layout, variant, &args.out)
    }
    .with_context(|| format!("writing files into {}", args.out.display()))?;
    let written = match args.pack {
        Some(how) => pack(&written, how, &args.out)
            .with_context(|| format!("packing the files in {}", args.out.display()))?,
        None => written,
    };
    let rows: u64 = written.iter().map(|(_, rows)| rows).sum();
    let mut bytes = 0;
    for (path, _) in &written {
        bytes += fs::metadata(path)
            .with_context(|| format!("reading the size of {}", path.display()))?
            .len();
    }
    println!(
        "generated {} files, {rows} rows, {bytes} bytes in {} ({:.1}s)",
        written.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
