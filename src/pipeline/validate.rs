//! Validate: raw fields into a [`crate::model::Bar`] with its bucket, or a rejection with a reason code.
//! (stub: being written)
