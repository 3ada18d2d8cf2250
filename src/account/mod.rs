//! Accounting: what happened to every file (the load history) and to every rejected row (the
//! dead-letter log).

pub mod dead_letter;
pub mod history;
