//! bar-ingest: loads one-minute OHLCV bar files into ScyllaDB exactly once, and reads them back.
//!
//! Module map, in the order data flows:
//! - [`cli`] - the command line.
//! - [`config`] - the TOML file, validated into [`config::Settings`].
//! - [`model`] - [`model::Bar`], [`model::Symbol`], [`model::Bucket`], shared by every stage.
//! - [`store`] - the session, the schema and the prepared statements.
//! - [`daemon`] - `run`, the only module that wires the stages together.
//! - [`telemetry`] - logging (and, later, metrics).

pub mod account;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod fetch;
pub mod generate;
pub mod model;
pub mod pipeline;
pub mod store;
pub mod telemetry;
