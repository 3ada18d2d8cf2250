//! Plan: what one unit of a delivery is read as (its layout, the zone of its naive times, its
//! symbol, the time-zone gate), from the `[[source]]` rule that covers it and, where the rule
//! leaves the layout open, from the unit's first bytes.

use std::fs::File;
use std::io::Read;

use chrono_tz::Tz;

use super::outcome::LoadError;
use crate::config::{LayoutRule, SourceRule, SymbolFrom};
use crate::model::{Symbol, VolumeColumn};
use crate::pipeline::gate::{SessionGate, TimesReadAs};
use crate::pipeline::validate::Validator;
use crate::source::Interval;
use crate::source::container::Unit;
use crate::source::csv::CsvSpec;
use crate::source::layout::{self, Layout};

/// Bytes of a unit's start that detection reads (its first line, with room to spare).
const HEAD_BYTES: usize = 8192;

/// Symbol of a delivery whose records name their own (the load history's key for it).
pub(crate) const MANY_SYMBOLS: &str = "*";

/// How a unit is read.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) layout: Layout,
    /// The exchange's zone: buckets, days and the session gate go by it.
    pub(crate) exchange_tz: Tz,
    /// The zone naive times are wall times of (the rule's `timezone`, else the exchange's).
    pub(crate) naive_tz: Tz,
    /// The delivery's symbol; None when each record names its own.
    pub(crate) symbol: Option<Symbol>,
    /// The rule that covers the unit: its symbol renames, stamp and gate options.
    pub(crate) rule: SourceRule,
    /// The bar table's volume column (the loader's; `double` until it says otherwise).
    pub(crate) volumes: VolumeColumn,
}

impl Plan {
    /// Decides how to read `unit` of the opened delivery `file` under `rule`, in an exchange
    /// whose zone is `exchange_tz`. Blocking: it may read the unit's first bytes.
    pub(crate) fn decide(
        rule: SourceRule,
        unit: &Unit,
        file: &File,
        exchange_tz: Tz,
    ) -> Result<Plan, LoadError> {
        let name = unit.inner_name().to_string_lossy().into_owned();
        let column = matches!(rule.symbol, SymbolFrom::Column);
        let layout = match rule.layout {
            Some(fixed) => from_rule(fixed, &name, column),
            None => {
                let head = head(unit, file)?;
                let mut found = detect_or_firstrate(&name, &head)?;
                if let (Layout::Csv(spec), true) = (&mut found, column) {
                    spec.symbol_column = true;
                }
                found
            }
        };
        let symbol = if layout.multi_symbol() {
            None
        } else {
            let symbol = rule.symbol_for(&name).ok_or_else(|| LoadError::NoSymbol {
                file_name: unit.name().to_string_lossy().into_owned(),
                rule: rule.name.clone(),
                column,
            })?;
            Some(symbol)
        };
        Ok(Plan {
            layout,
            exchange_tz,
            naive_tz: rule.timezone.unwrap_or(exchange_tz),
            symbol,
            rule,
            volumes: VolumeColumn::default(),
        })
    }

    /// The validator of the unit's records.
    pub(crate) fn validator(&self) -> Validator {
        Validator::with_naive_zone(self.exchange_tz, self.naive_tz)
            .stamped(self.rule.stamp)
            .storing(self.volumes)
    }

    /// The time-zone gate for the unit: on when the rule has it on and the bars are intraday
    /// bars short enough for the session's edges to show (1 and 5 minutes); 30-minute, hourly
    /// and daily bars are not judged.
    pub(crate) fn gate(&self) -> SessionGate {
        let mut options = self.rule.gate.clone();
        let judged = matches!(
            self.layout.interval(),
            Interval::OneMinute | Interval::FiveMinutes
        );
        options.enabled &= judged;
        // A one-minute file's stamps are judged against the rule's (see the gate's `stamp`).
        options.stamp = (self.layout.interval() == Interval::OneMinute).then_some(self.rule.stamp);
        let read = match self.layout {
            Layout::Polygon | Layout::Databento => TimesReadAs::Instants,
            _ => TimesReadAs::Wall(self.naive_tz),
        };
        SessionGate::new(self.exchange_tz, options).reading(read)
    }

    /// The symbol the history records the unit under: its own, or [`MANY_SYMBOLS`].
    pub(crate) fn history_symbol(&self) -> String {
        self.symbol
            .as_ref()
            .map_or_else(|| MANY_SYMBOLS.to_owned(), ToString::to_string)
    }

    /// A record's symbol after the rule's renames (`FB` → `META`).
    #[inline]
    pub(crate) fn rename(&self, record_symbol: Option<Symbol>) -> Option<Symbol> {
        match record_symbol {
            Some(s) if !self.rule.symbol_map.is_empty() => {
                Some(self.rule.rename(&s).cloned().unwrap_or(s))
            }
            other => other,
        }
    }
}

/// The layout a rule fixes, completed from the file name where the rule leaves it open.
fn from_rule(fixed: LayoutRule, name: &str, symbol_column: bool) -> Layout {
    match fixed {
        LayoutRule::FirstRate { interval } => Layout::FirstRate {
            interval: interval
                .or_else(|| Interval::from_file_name(name))
                .unwrap_or(Interval::OneMinute),
        },
        LayoutRule::Polygon => Layout::Polygon,
        LayoutRule::Databento => Layout::Databento,
        LayoutRule::Kibot => Layout::Kibot,
        LayoutRule::Csv { epoch } => Layout::Csv(CsvSpec {
            epoch,
            symbol_column,
            ..CsvSpec::default()
        }),
    }
}

/// The layout detection finds; where it cannot tell and the first line is no header (blank,
/// garbage, a bar line of no known shape), FirstRate, whose validation then rejects every line
/// that is not a FirstRate bar, so the file is quarantined with its rejects in the dead-letter
/// log (as a FirstRate file of such lines always was). A header detection does not know is an
/// error that asks for a rule.
fn detect_or_firstrate(name: &str, head: &[u8]) -> Result<Layout, LoadError> {
    match layout::detect(name, head) {
        Ok(found) => Ok(found),
        Err(e) if e.header => Err(LoadError::Layout(e)),
        Err(_) => Ok(from_rule(
            LayoutRule::FirstRate { interval: None },
            name,
            false,
        )),
    }
}

/// The unit's first decoded bytes (at most [`HEAD_BYTES`]).
fn head(unit: &Unit, file: &File) -> Result<Vec<u8>, LoadError> {
    let read_error = |source| LoadError::Unit {
        unit: unit.name().to_string_lossy().into_owned(),
        source,
    };
    let reader = unit.open(file).map_err(read_error)?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    reader
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    Ok(head)
}
