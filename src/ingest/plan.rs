//! Plan: what one unit of a delivery is read as (its layout, the zone of its naive times, its
//! symbol, the time-zone gate), from the `[[source]]` rule that covers it and, where the rule
//! leaves the layout open, from the unit's first bytes.

use std::fs::File;
use std::io::Read;

use chrono_tz::Tz;

use super::outcome::LoadError;
use super::{BINARY_UNIT, NOT_ONE_MINUTE, OTHER_ADJUSTMENT};
use crate::config::{LayoutRule, SourceRule, SymbolFrom};
use crate::model::{Symbol, VolumeColumn};
use crate::pipeline::gate::{SessionGate, TimesReadAs};
use crate::pipeline::validate::Validator;
use crate::source::binary;
use crate::source::container::Unit;
use crate::source::csv::CsvSpec;
use crate::source::layout::{self, Layout};
use crate::source::{Adjustment, Interval};

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
    /// Refused before a row is read (binary, not one-minute bars by its name or rule, another
    /// adjustment): nothing is validated or written.
    pub(crate) refused: Option<Refusal>,
    /// The bar table's volume column (the loader's; `double` until it says otherwise).
    pub(crate) volumes: VolumeColumn,
}

/// Why a unit is quarantined whole: a stable reason code and the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: &'static str,
    pub(crate) why: String,
}

impl Refusal {
    /// A unit whose bars are not one-minute bars: `seen` names the interval, `how` says how it
    /// was known.
    pub(crate) fn not_one_minute(seen: &str, how: &str) -> Self {
        Self {
            code: NOT_ONE_MINUTE,
            why: format!(
                "not one-minute bars ({seen}, by {how}); the store holds one-minute bars only, \
                 nothing written"
            ),
        }
    }
}

impl Plan {
    /// Decides how to read `unit` of the opened delivery `file` under `rule`, in an exchange
    /// whose zone is `exchange_tz`. Blocking: it may read the unit's first bytes.
    pub(crate) fn decide(
        rule: SourceRule,
        unit: &Unit,
        file: &File,
        exchange_tz: Tz,
        adjustment: Adjustment,
    ) -> Result<Plan, LoadError> {
        let name = unit.inner_name().to_string_lossy().into_owned();
        let column = matches!(rule.symbol, SymbolFrom::Column);
        let head = head(unit, file)?;
        if let Some(what) = binary::looks_binary(&head) {
            let refused = Refusal {
                code: BINARY_UNIT,
                why: format!(
                    "the unit is {what}; {}; nothing written",
                    binary::WHAT_TO_DO
                ),
            };
            let symbol = rule.symbol_for(&name);
            return Ok(Self::refused(rule, exchange_tz, symbol, refused));
        }
        let layout = match rule.layout {
            Some(fixed) => from_rule(fixed, &name, column),
            None => {
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
        let refused =
            not_one_minute(&rule, &name, layout).or_else(|| other_adjustment(&name, adjustment));
        Ok(Plan {
            layout,
            exchange_tz,
            naive_tz: rule.timezone.unwrap_or(exchange_tz),
            symbol,
            rule,
            refused,
            volumes: VolumeColumn::default(),
        })
    }

    /// The plan of a unit refused before its layout is known: nothing of it is read but its
    /// bytes (for its fingerprint). `symbol`: the one its name gives, if any (the history's key).
    fn refused(
        rule: SourceRule,
        exchange_tz: Tz,
        symbol: Option<Symbol>,
        refused: Refusal,
    ) -> Plan {
        Plan {
            layout: Layout::FirstRate {
                interval: Interval::OneMinute,
            },
            exchange_tz,
            naive_tz: exchange_tz,
            symbol,
            rule,
            refused: Some(refused),
            volumes: VolumeColumn::default(),
        }
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

/// The refusal of a unit whose rule, name or layout says its bars are not one-minute bars. A
/// rule that names the interval decides; else the name; else the lines (date-only: daily).
fn not_one_minute(rule: &SourceRule, name: &str, layout: Layout) -> Option<Refusal> {
    if let Some(LayoutRule::FirstRate {
        interval: Some(interval),
    }) = rule.layout
    {
        // The rule's word goes before the name's (the spacing of the times is still checked).
        let how = format!(
            "the [[source]] rule `{}`: interval = \"{interval}\"",
            rule.name
        );
        return (interval != Interval::OneMinute)
            .then(|| Refusal::not_one_minute(interval.name(), &how));
    }
    if let Some((interval, part)) = Interval::stated_by(name)
        && interval != Interval::OneMinute
    {
        let how = format!("its name: `{part}`");
        return Some(Refusal::not_one_minute(interval.name(), &how));
    }
    let interval = layout.interval();
    (interval != Interval::OneMinute).then(|| {
        let how = "its lines: dates without a time of day";
        Refusal::not_one_minute(interval.name(), how)
    })
}

/// The refusal of a unit whose name states an adjustment other than the store's.
fn other_adjustment(name: &str, store: Adjustment) -> Option<Refusal> {
    let stated = Adjustment::stated_by(name).filter(|&a| a != store)?;
    Some(Refusal {
        code: OTHER_ADJUSTMENT,
        why: format!(
            "another adjustment: its name says `{}` ({} prices), but the store holds `{}` ({}, \
             input.adjustment = \"{store}\"); nothing written",
            stated.vendor_part(),
            stated.describe(),
            store.vendor_part(),
            store.describe(),
        ),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(interval: Option<Interval>) -> SourceRule {
        SourceRule {
            name: "r".into(),
            layout: Some(LayoutRule::FirstRate { interval }),
            ..SourceRule::default_rule()
        }
    }

    fn firstrate(interval: Interval) -> Layout {
        Layout::FirstRate { interval }
    }

    #[test]
    fn the_rule_then_the_name_then_the_lines_say_the_interval() {
        let minute = firstrate(Interval::OneMinute);
        let why = |r: Option<Refusal>| r.map(|r| (r.code, r.why));
        let by_rule = why(not_one_minute(
            &rule(Some(Interval::OneHour)),
            "AAPL.txt",
            firstrate(Interval::OneHour),
        ))
        .unwrap();
        assert_eq!(by_rule.0, NOT_ONE_MINUTE);
        assert!(
            by_rule
                .1
                .starts_with("not one-minute bars (1hour, by the [[source]] rule `r`: interval"),
            "{}",
            by_rule.1
        );
        // A rule that says 1min decides over the name.
        assert_eq!(
            not_one_minute(&rule(Some(Interval::OneMinute)), "AAPL_5min.txt", minute),
            None
        );
        let by_name = why(not_one_minute(
            &rule(None),
            "AAPL_full_5min_adjsplit.txt",
            minute,
        ));
        assert!(
            by_name.unwrap().1.contains("(5min, by its name: `5min`)"),
            "the name, whatever layout detection found"
        );
        let by_lines = why(not_one_minute(
            &SourceRule::default_rule(),
            "AAPL.txt",
            firstrate(Interval::OneDay),
        ));
        assert!(by_lines.unwrap().1.contains("(1day, by its lines: dates"));
        assert_eq!(
            not_one_minute(&SourceRule::default_rule(), "AAPL.txt", Layout::Polygon),
            None
        );
    }

    #[test]
    fn only_a_name_stating_another_adjustment_is_refused() {
        let refused =
            other_adjustment("AAPL_full_1min_adjsplitdiv.txt", Adjustment::Split).unwrap();
        assert_eq!(refused.code, OTHER_ADJUSTMENT);
        assert!(
            refused.why.contains(
                "its name says `adjsplitdiv` (split- and dividend-adjusted prices), but the \
                 store holds `adjsplit` (split-adjusted, input.adjustment = \"split\")"
            ),
            "{}",
            refused.why
        );
        assert_eq!(
            other_adjustment("AAPL_full_1min_adjsplit.txt", Adjustment::Split),
            None
        );
        assert_eq!(
            other_adjustment("AAPL_full_1min.txt", Adjustment::Unadjusted),
            None
        );
        assert!(other_adjustment("AAPL_full_1min_adjsplit.txt", Adjustment::Unadjusted).is_some());
    }
}
