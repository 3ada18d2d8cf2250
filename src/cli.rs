//! The command line: global options and one subcommand per job.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ENV_CONFIG, ENV_CONTACT_POINTS};
use crate::telemetry::LogFormat;

/// Loads one-minute OHLCV bar files into ScyllaDB exactly once, and reads them back.
#[derive(Debug, Parser)]
#[command(name = "bar-ingest", version, about)]
pub struct Cli {
    /// Config file (TOML). Without it, built-in defaults are used.
    #[arg(long, short, global = true, env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Contact points `host[:port],...`, overriding `database.contact_points`.
    #[arg(long, global = true, env = ENV_CONTACT_POINTS, value_name = "LIST")]
    pub contact_points: Option<String>,

    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,

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
    Load(crate::load::LoadArgs),
    /// Create the keyspace and tables if they are missing, then exit.
    InitSchema,
    /// Print bars of a symbol over a time range (CSV or JSON lines).
    Fetch(crate::fetch::FetchArgs),
    /// Validate a config file; print what is wrong and exit non-zero if anything is.
    CheckConfig {
        /// The file to check (default: --config, or $BAR_INGEST_CONFIG).
        file: Option<PathBuf>,
    },
}
