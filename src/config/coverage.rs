//! `[coverage]`: the symbols whose staleness the daemon watches, and how often it looks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::KeyError;
use crate::model::Symbol;

/// The most symbols `coverage.watch` may list (one gauge pair each).
pub const MAX_WATCHED: usize = 1000;

/// `[coverage]`: by default nothing is watched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoverageConfig {
    /// Symbols whose last bar time and sessions behind are exported (at most [`MAX_WATCHED`]).
    pub watch: Vec<String>,
    /// How often their last bars are read (also once at start).
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self {
            watch: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

impl CoverageConfig {
    /// The watched symbols, checked: at most [`MAX_WATCHED`], each a valid symbol.
    pub(super) fn validate(&self) -> Result<Vec<Symbol>, KeyError> {
        if self.watch.len() > MAX_WATCHED {
            return Err(KeyError::new(
                "coverage.watch",
                format!("lists {} symbols, at most {MAX_WATCHED}", self.watch.len()),
            ));
        }
        if self.refresh_interval < Duration::from_secs(1) {
            return Err(KeyError::new(
                "coverage.refresh_interval",
                "must be at least 1s".to_owned(),
            ));
        }
        let mut symbols = Vec::with_capacity(self.watch.len());
        for raw in &self.watch {
            let symbol = Symbol::new(raw).ok_or_else(|| {
                KeyError::new("coverage.watch", format!("{raw:?} is not a symbol"))
            })?;
            symbols.push(symbol);
        }
        symbols.sort_unstable();
        symbols.dedup();
        Ok(symbols)
    }
}
