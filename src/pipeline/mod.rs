//! The ingest stages, in flow order: watch, claim, parse, validate, batch, write.

pub mod batch;
pub mod claim;
pub mod parse;
pub mod validate;
pub mod watch;
pub mod write;
