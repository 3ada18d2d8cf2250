//! The command line: global options, one subcommand per job, and the arguments' value enums
//! (mapped onto the library's types, which know nothing of clap).

use std::path::PathBuf;

use bar_ingest::config::{ENV_CONFIG, ENV_CONTACT_POINTS};
use bar_ingest::fetch::columnar::BatchFormat;
use bar_ingest::fetch::output::Format;
use bar_ingest::fetch::{DEFAULT_CONCURRENCY, Interval, MAX_CONCURRENCY, SessionFilter};
use bar_ingest::telemetry::LogFormat;
use clap::{Parser, Subcommand, ValueEnum};

/// The version and the commit the binary was built from: `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BAR_INGEST_COMMIT"),
    ")"
);

/// Loads one-minute OHLCV bar files into ScyllaDB exactly once, and reads them back.
#[derive(Debug, Parser)]
#[command(name = "bar-ingest", version = VERSION, about)]
pub struct Cli {
    /// Config file (TOML). Without it, built-in defaults are used.
    #[arg(long, short, global = true, env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Contact points `host[:port],...`, overriding `database.contact_points`.
    #[arg(long, global = true, env = ENV_CONTACT_POINTS, value_name = "LIST")]
    pub contact_points: Option<String>,

    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormatArg,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: create the schema, then watch the inbox and load every complete file.
    Run,
    /// Load files or folders once (in place), with progress and a summary. Exit 0: all
    /// written; 1: rows rejected or files failed; 2: could not run.
    Load(LoadArgs),
    /// Create the keyspace and tables if they are missing, then exit.
    InitSchema,
    /// Print bars of one or more symbols over a time range (CSV, JSON lines, Parquet or Arrow).
    Fetch(FetchArgs),
    /// Validate a config file; print what is wrong and exit non-zero if anything is.
    CheckConfig {
        /// The file to check (default: --config, or $BAR_INGEST_CONFIG).
        file: Option<PathBuf>,
        /// Also connect (credentials, TLS), check the schema (read only, no DDL) and the
        /// permissions `load` and `run` need.
        #[arg(long)]
        connect: bool,
    },
    /// Print the CQL that creates the keyspace and tables (for an administrator), and the
    /// GRANTs of the roles named.
    Schema {
        /// Role that runs `load` and `run`: print its GRANTs.
        #[arg(long, value_name = "ROLE")]
        loader: Option<String>,
        /// Role that runs `fetch`: print its GRANTs.
        #[arg(long, value_name = "ROLE")]
        reader: Option<String>,
    },
    /// Convert bar rows into day cells (all symbols or some, a range of days), resumably,
    /// verifying every bar. Exit 0: all verified; 1: a cell differs from its rows; 2: could not
    /// run; 3: interrupted (run again to resume).
    Migrate(MigrateArgs),
    /// Print the manual page (roff) of bar-ingest and its commands, for `man -l -`.
    Man,
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Report missing minutes, gaps, bars on closed days and price anomalies per symbol-day.
    Coverage(crate::coverage::CoverageArgs),
}

/// Arguments of `bar-ingest load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Files or folders (folders are walked recursively; dot-files, *.part and *.tmp skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Load files even if the same content is recorded as loaded.
    #[arg(long)]
    pub force: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// Arguments of `bar-ingest migrate`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which_symbols").required(true).multiple(true)
    .args(["symbols", "all", "symbols_file"])))]
pub struct MigrateArgs {
    /// Ticker symbols to convert.
    #[arg(value_name = "SYMBOL")]
    pub symbols: Vec<String>,
    /// Every symbol of the bars table.
    #[arg(long, conflicts_with_all = ["symbols", "symbols_file"])]
    pub all: bool,
    /// A file of symbols, one per line (blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE")]
    pub symbols_file: Option<PathBuf>,
    /// First exchange-local day converted, YYYY-MM-DD (default: the first).
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// Last exchange-local day converted, YYYY-MM-DD, inclusive (default: the last).
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    /// Only compare the day cells with the rows; write nothing.
    #[arg(long)]
    pub verify_only: bool,
    /// Convert the partitions recorded as done too.
    #[arg(long)]
    pub restart: bool,
    /// Partitions (symbol-months) converted at once.
    #[arg(long, value_name = "N", default_value_t = bar_ingest::migrate::DEFAULT_CONCURRENCY,
          value_parser = parse_migrate_concurrency)]
    pub concurrency: usize,
    /// Stop as if interrupted after N partitions (for tests of resumption).
    #[arg(long, value_name = "N", hide = true)]
    pub stop_after: Option<usize>,
    /// Cell bodies compressed with zstd (for the disk benchmark; the product stores them).
    #[arg(long, hide = true)]
    pub zstd_cells: bool,
}

fn parse_migrate_concurrency(s: &str) -> Result<usize, String> {
    let max = bar_ingest::migrate::MAX_CONCURRENCY;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from 1 to {max}")),
    }
}

/// Arguments of `bar-ingest fetch`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Times: YYYY-MM-DD (--from: start of that day; --to: the whole day), \
    \"YYYY-MM-DD HH:MM[:SS]\" in exchange time (input.timezone), or RFC 3339 with an offset \
    (2024-03-08T14:30:00Z). Both ends are inclusive."
)]
pub struct FetchArgs {
    /// Ticker symbols, as in the file names (AAPL, BRK.B). With several (or --symbols-file),
    /// the output has a first column `symbol` and is ordered by symbol, then time.
    #[arg(value_name = "SYMBOL", required_unless_present = "symbols_file")]
    pub symbols: Vec<String>,

    /// A file of symbols, one per line (blank lines and `#` comments skipped), fetched with any
    /// SYMBOL given.
    #[arg(long, value_name = "FILE")]
    pub symbols_file: Option<PathBuf>,

    /// First bar time included.
    #[arg(long, value_name = "T")]
    pub from: String,

    /// Last bar time included.
    #[arg(long, value_name = "T")]
    pub to: String,

    /// Which bars of each day: the regular session (09:30 to 16:00, 13:00 on half days, trading
    /// days only), extended hours (trading days outside it), or all.
    #[arg(long, value_enum, default_value_t = SessionArg::All)]
    pub session: SessionArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    pub format: FormatArg,

    /// Bar length: one-minute bars as stored, or aggregated (intraday bins aligned to 09:30;
    /// 1d from the regular session only).
    #[arg(long, value_enum, default_value_t = IntervalArg::Minute1)]
    pub interval: IntervalArg,

    /// Timestamps in UTC (RFC 3339) instead of exchange time (csv, jsonl). Parquet and Arrow
    /// timestamps are instants labelled UTC by default.
    #[arg(long, conflicts_with = "exchange_time")]
    pub utc: bool,

    /// Label Parquet and Arrow timestamps with the exchange's time zone (input.timezone) instead
    /// of UTC; the instants are the same. (csv and jsonl are in exchange time by default.)
    #[arg(long)]
    pub exchange_time: bool,

    /// Write to FILE (via FILE.tmp, renamed when complete) instead of stdout (parquet and arrow
    /// are not written to a terminal).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Month buckets queried at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from 1 to {MAX_CONCURRENCY}")),
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines (timestamps omitted under systemd, where journald adds them).
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(a: LogFormatArg) -> Self {
        match a {
            LogFormatArg::Text => Self::Text,
            LogFormatArg::Json => Self::Json,
        }
    }
}

/// `--session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionArg {
    /// The regular session: [09:30, 16:00), [09:30, 13:00) on half days, trading days only.
    Regular,
    /// Trading days outside the regular session: pre- and post-market.
    Extended,
    /// Every bar.
    All,
}

impl From<SessionArg> for SessionFilter {
    fn from(a: SessionArg) -> Self {
        match a {
            SessionArg::Regular => Self::Regular,
            SessionArg::Extended => Self::Extended,
            SessionArg::All => Self::All,
        }
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// `timestamp,open,high,low,close,volume` with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// A Parquet file (typed columns, zstd, the time zone in the schema).
    Parquet,
    /// An Arrow IPC stream (typed record batches, as they arrive).
    Arrow,
}

/// What `--format` writes: text lines or record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Text(Format),
    Batches(BatchFormat),
}

impl From<FormatArg> for OutputKind {
    fn from(a: FormatArg) -> Self {
        match a {
            FormatArg::Csv => Self::Text(Format::Csv),
            FormatArg::Jsonl => Self::Text(Format::Jsonl),
            FormatArg::Parquet => Self::Batches(BatchFormat::Parquet),
            FormatArg::Arrow => Self::Batches(BatchFormat::ArrowIpc),
        }
    }
}

/// `--interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntervalArg {
    /// One minute: the stored bars as they are.
    #[value(name = "1m")]
    Minute1,
    #[value(name = "5m")]
    Minutes5,
    #[value(name = "15m")]
    Minutes15,
    #[value(name = "30m")]
    Minutes30,
    #[value(name = "1h")]
    Hour1,
    /// One bar per trading day, from the regular session only.
    #[value(name = "1d")]
    Day1,
}

impl From<IntervalArg> for Interval {
    fn from(a: IntervalArg) -> Self {
        match a {
            IntervalArg::Minute1 => Self::Minute1,
            IntervalArg::Minutes5 => Self::Minutes5,
            IntervalArg::Minutes15 => Self::Minutes15,
            IntervalArg::Minutes30 => Self::Minutes30,
            IntervalArg::Hour1 => Self::Hour1,
            IntervalArg::Day1 => Self::Day1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value clap accepts maps to the library value of the same name.
    #[test]
    fn interval_names_match_the_library() {
        for a in IntervalArg::value_variants() {
            let name = a.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Interval::from(*a).name(), name);
        }
    }
}
