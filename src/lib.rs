//! bar-ingest: loads one-minute OHLCV bar files into ScyllaDB exactly once, and reads them back.
//!
//! Module map, in the order data flows:
//! - [`config`] - the TOML file, validated into [`config::Settings`].
//! - [`exchange_time`] - exchange-local days and wall times as UTC instants.
//! - [`model`] - [`model::Bar`], [`model::Symbol`], [`model::Bucket`], shared by every stage.
//! - [`source`] - a delivery's layout into records (symbol, time, OHLCV) or rejections.
//! - [`pipeline`] - the stages: watch, claim, validate, batch, write.
//! - [`account`] - the load history and the dead-letter log.
//! - [`cell`] - the day-cell codec: one symbol's day of bars as one versioned, compressed cell.
//! - [`store`] - the session, the schema and the prepared statements.
//! - [`ingest`] - one file through every stage (used by the daemon and the `load` command).
//! - [`migrate`] - bar rows converted into day cells, resumably, verified bar for bar.
//! - [`daemon`] - `run`: watch, claim, ingest, archive, and a graceful stop on a shutdown future.
//! - [`fetch`] - the read side.
//! - [`calendar`] - the NYSE calendar (trading days, early closes).
//! - [`telemetry`] - logs, metrics, health endpoints, systemd notifications.
//! - [`names`] - derived file names that fit the filesystem, and names escaped for logs.
//!
//! The command line (clap, the progress bar, exit codes, signals) is the binary's, in
//! `src/bin/bar-ingest/`; this library has no command-line code.

pub mod account;
pub mod calendar;
pub mod cell;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod exchange_time;
pub mod fetch;
pub mod ingest;
pub mod migrate;
pub mod model;
pub mod names;
pub mod pipeline;
pub mod source;
pub mod store;
pub mod telemetry;
