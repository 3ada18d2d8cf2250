//! The ingest stages, in flow order: watch, claim, (the [`crate::source`] reads), validate,
//! (the time-zone [`gate`] judges the validated bars), batch (or gather [`days`] into day
//! cells), write (at the [`pace`] of the configured caps, under the adaptive [`limit`] on
//! batches in flight). [`rename`] is the one way files move between the inbox and the state
//! folders.

pub mod batch;
pub mod claim;
pub(crate) mod days;
pub mod gate;
pub(crate) mod limit;
pub(crate) mod pace;
pub mod rename;
pub mod validate;
pub mod watch;
pub mod write;
