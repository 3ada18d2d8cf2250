//! The ingest stages, in flow order: watch, claim, (the [`crate::source`] reads), validate,
//! batch, write. `parse` only re-exports what moved to the source.

pub mod batch;
pub mod claim;
pub mod parse;
pub mod validate;
pub mod watch;
pub mod write;
