//! The ingest stages, in flow order: watch, claim, (the [`crate::source`] reads), validate,
//! batch, write.

pub mod batch;
pub mod claim;
pub mod validate;
pub mod watch;
pub mod write;
