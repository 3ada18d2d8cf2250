//! Parse (moved): the line reader and the file-name symbol now live in [`crate::source`];
//! re-exported here for callers that still import them from the pipeline.

pub use crate::source::lines::{Line, LineReader, MAX_LINE_BYTES};
pub use crate::source::symbol_from_file_name;
