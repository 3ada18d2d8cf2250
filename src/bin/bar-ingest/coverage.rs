//! `bar-ingest coverage`: the arguments, and the report written as a table, CSV or JSON lines.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bar_ingest::config::Settings;
use bar_ingest::coverage::output::{self, Table};
use bar_ingest::coverage::{
    AnomalyBounds, CoverageRequest, CoverageSession, DEFAULT_CONCURRENCY, Reader,
};
use bar_ingest::model::Symbol;
use chrono::NaiveDate;
use clap::ValueEnum;

/// Arguments of `bar-ingest coverage`.
#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// Ticker symbols.
    #[arg(value_name = "SYMBOL", required_unless_present_any = ["symbols_file", "all"])]
    pub symbols: Vec<String>,
    /// A file of symbols, one per line (blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE")]
    pub symbols_file: Option<PathBuf>,
    /// Every symbol the keyspace holds (a scan of the partition keys).
    #[arg(long)]
    pub all: bool,
    /// First exchange-local day (YYYY-MM-DD).
    #[arg(long, value_name = "DAY")]
    pub from: NaiveDate,
    /// Last exchange-local day, inclusive (YYYY-MM-DD).
    #[arg(long, value_name = "DAY")]
    pub to: NaiveDate,
    /// Expected minutes: regular [09:30, 16:00) (13:00 on half days), extended [04:00, 20:00)
    /// (17:00 on half days), or all minutes of the day.
    #[arg(long, value_enum, default_value_t = SessionArg::Regular)]
    pub session: SessionArg,
    /// Output: a table (default on a terminal), CSV, or JSON lines (default otherwise).
    #[arg(long, value_enum)]
    pub format: Option<CoverageFormat>,
    /// Also check prices (splits, jumps, identical runs): reads whole day cells, slower.
    #[arg(long)]
    pub anomalies: bool,
    /// Jump bound: a bar-to-bar or overnight move above this fraction is reported.
    #[arg(long, value_name = "FRACTION", default_value_t = AnomalyBounds::default().jump)]
    pub jump_bound: f64,
    /// Identical consecutive bars reported from this many on.
    #[arg(long, value_name = "BARS", default_value_t = AnomalyBounds::default().identical_run)]
    pub identical_run: usize,
    /// Partitions (symbol and month) read at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

/// `--session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionArg {
    Regular,
    Extended,
    All,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CoverageFormat {
    Table,
    Csv,
    Json,
}

/// Runs the command: exit 0 when the report was written.
pub async fn run(settings: Settings, args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let reader = Reader::connect(&settings).await?;
    let mut symbols = symbols_of(&args)?;
    if args.all {
        symbols.extend(reader.all_symbols().await?);
    }
    let mut request = CoverageRequest::new(symbols, args.from, args.to);
    request.session = match args.session {
        SessionArg::Regular => CoverageSession::Regular,
        SessionArg::Extended => CoverageSession::Extended,
        SessionArg::All => CoverageSession::All,
    };
    request.anomalies = args.anomalies;
    request.bounds.jump = args.jump_bound;
    request.bounds.identical_run = args.identical_run;
    request.concurrency = args.concurrency;
    let stdout = std::io::stdout();
    let format = args.format.unwrap_or(if stdout.is_terminal() {
        CoverageFormat::Table
    } else {
        CoverageFormat::Json
    });
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut table = Table::default();
    if format == CoverageFormat::Csv {
        writeln!(out, "{}", output::CSV_HEADER)?;
    }
    reader
        .run(request, |report| match format {
            CoverageFormat::Json => output::write_json(&mut out, &report),
            CoverageFormat::Csv => output::write_csv(&mut out, &report),
            CoverageFormat::Table => {
                table.add(report);
                Ok(())
            }
        })
        .await?;
    if format == CoverageFormat::Table {
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The symbols given and those of `--symbols-file`.
fn symbols_of(args: &CoverageArgs) -> anyhow::Result<Vec<Symbol>> {
    let mut raw: Vec<String> = args.symbols.clone();
    if let Some(path) = &args.symbols_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--symbols-file {}: {e}", path.display()))?;
        raw.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
                .filter(|l| !l.is_empty()),
        );
    }
    raw.iter()
        .map(|s| Symbol::new(s.trim()).ok_or_else(|| anyhow::anyhow!("not a symbol: {s}")))
        .collect()
}
