//! The ingest stages, in flow order: watch, claim, parse, validate, batch, write.

pub mod parse;
pub mod validate;
pub mod watch;
