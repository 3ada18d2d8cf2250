//! `[[source]]`: per-source rules, each saying how files whose name matches a glob are read.
//!
//! A rule names its files by a glob on the file's own name (any leading folders are ignored),
//! then settles what detection would otherwise guess: the layout (with its interval or epoch
//! unit), the zone of naive times, where the symbol comes from (the file name, a regex on it,
//! or a column), renames of symbols, and the time-zone gate. Rules are tried in file order; the
//! first that matches wins, else the built-in [`SourceRule::default_rule`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono_tz::Tz;
use serde::Deserialize;

use super::KeyError;
use crate::model::Symbol;
use crate::pipeline::gate::GateOptions;
use crate::source::times::EpochUnit;
use crate::source::{Interval, symbol_from_file_name};

/// Values of `layout`, `auto` (detect) first.
const LAYOUT_NAMES: &str = "auto, firstrate, polygon, databento, kibot, csv";
/// Values of `interval`.
const INTERVAL_NAMES: &str = "1min, 5min, 30min, 1hour, 1day";
/// Values of `epoch_unit`.
const EPOCH_UNIT_NAMES: &str = "auto, s, ms, us, ns";
/// Values of `symbol`.
const SYMBOL_NAMES: &str = "name, column";
/// The name of the built-in rule (no user rule may take it).
const DEFAULT_RULE_NAME: &str = "default";

/// One `[[source]]` table as written (unknown keys refused); [`validate`] checks it into a
/// [`SourceRule`]. Only `pattern` is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// The rule's name in logs (default `source[i]`).
    pub name: Option<String>,
    /// Glob on the file's own name (`*.csv.gz`, `*_1min_*.txt`), case-sensitive. Required.
    pub pattern: Option<String>,
    /// `auto` (detect), `firstrate`, `polygon`, `databento`, `kibot` or `csv`.
    pub layout: String,
    /// IANA zone of naive times (None: `input.timezone`).
    pub timezone: Option<String>,
    /// FirstRate only: `1min`, `5min`, `30min`, `1hour`, `1day` (None: from the file name).
    pub interval: Option<String>,
    /// CSV only: `auto`, `s`, `ms`, `us`, `ns` (None: auto).
    pub epoch_unit: Option<String>,
    /// `name` (the file name gives the symbol) or `column` (each record names it). None: `column`
    /// for polygon and databento, else `name`.
    pub symbol: Option<String>,
    /// With `symbol = "name"`: a regex with one capture group, run on the file's own name.
    pub symbol_pattern: Option<String>,
    /// Renames applied to every symbol of a matching file (`{ FB = "META" }`).
    pub symbol_map: BTreeMap<String, String>,
    /// Whether the time-zone gate runs.
    pub gate: bool,
    /// Fewest bars on trading days for a gate verdict.
    pub gate_min_bars: i64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            name: None,
            pattern: None,
            layout: "auto".into(),
            timezone: None,
            interval: None,
            epoch_unit: None,
            symbol: None,
            symbol_pattern: None,
            symbol_map: BTreeMap::new(),
            gate: true,
            gate_min_bars: GateOptions::default().min_bars as i64,
        }
    }
}

/// How files matching a rule are read: what the rule settles, the rest left to detection and
/// the `[input]` defaults.
#[derive(Debug, Clone)]
pub struct SourceRule {
    /// The rule's `name`, else `source[i]` (0-based); `default` for the built-in rule.
    pub name: String,
    /// The glob on the file's own name; None only for the built-in default rule.
    pub pattern: Option<globset::GlobMatcher>,
    /// None: detect the layout (`layout = "auto"`).
    pub layout: Option<LayoutRule>,
    /// The zone of naive times; None: `input.timezone` (the exchange zone).
    pub timezone: Option<Tz>,
    /// Where a record's symbol comes from.
    pub symbol: SymbolFrom,
    /// Renames applied to every symbol of a matching file (FB → META).
    pub symbol_map: BTreeMap<Symbol, Symbol>,
    /// The time-zone gate's options (`gate`, `gate_min_bars`; the rest default).
    pub gate: GateOptions,
}

/// The layout a rule names, with what it settles about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutRule {
    /// None: the interval from the file name ([`Interval::from_file_name`]), else one minute.
    FirstRate { interval: Option<Interval> },
    Polygon,
    Databento,
    Kibot,
    /// Generic CSV; whether it has a symbol column comes from the rule's [`SymbolFrom`].
    Csv { epoch: EpochUnit },
}

/// Where the symbol of a file's records comes from.
#[derive(Debug, Clone)]
pub enum SymbolFrom {
    /// The file name, by [`symbol_from_file_name`] (the default).
    FileName,
    /// A regex with exactly one capture group, run on the file's own name: the capture is the
    /// symbol.
    Pattern(regex::Regex),
    /// Each record names its symbol (polygon, databento, CSV with a symbol/ticker column).
    Column,
}

impl SourceRule {
    /// The rule of files no `[[source]]` matches: detect the layout, naive times in
    /// `input.timezone`, the symbol from the file name, no renames, the default gate.
    pub fn default_rule() -> SourceRule {
        SourceRule {
            name: DEFAULT_RULE_NAME.into(),
            pattern: None,
            layout: None,
            timezone: None,
            symbol: SymbolFrom::FileName,
            symbol_map: BTreeMap::new(),
            gate: GateOptions::default(),
        }
    }

    /// Whether the rule's glob matches the file's own name (leading folders ignored); the
    /// default rule matches everything.
    pub fn matches(&self, file_name: &str) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|glob| glob.is_match(base_name(file_name)))
    }

    /// The symbol the file name gives, renamed per `symbol_map`: by [`symbol_from_file_name`] or
    /// the rule's regex. None for [`SymbolFrom::Column`], a regex that does not match, or a
    /// capture that is no valid [`Symbol`].
    pub fn symbol_for(&self, file_name: &str) -> Option<Symbol> {
        let symbol = match &self.symbol {
            SymbolFrom::FileName => symbol_from_file_name(file_name)?,
            SymbolFrom::Pattern(regex) => {
                let captured = regex.captures(base_name(file_name))?.get(1)?;
                Symbol::new(captured.as_str())?
            }
            SymbolFrom::Column => return None,
        };
        Some(self.rename(&symbol).cloned().unwrap_or(symbol))
    }

    /// What `symbol_map` renames `symbol` to, if it names it.
    pub fn rename(&self, symbol: &Symbol) -> Option<&Symbol> {
        self.symbol_map.get(symbol)
    }
}

/// The built-in default rule, shared (so a lookup can hand out a reference).
pub(super) fn default_rule_ref() -> &'static SourceRule {
    static DEFAULT: OnceLock<SourceRule> = OnceLock::new();
    DEFAULT.get_or_init(SourceRule::default_rule)
}

/// The first rule matching `unit_name`, else the first matching `delivery_name`, else the
/// default rule.
pub(super) fn select<'a>(
    rules: &'a [SourceRule],
    unit_name: &str,
    delivery_name: &str,
) -> &'a SourceRule {
    rules
        .iter()
        .find(|r| r.matches(unit_name))
        .or_else(|| rules.iter().find(|r| r.matches(delivery_name)))
        .unwrap_or_else(|| default_rule_ref())
}

/// The name after the last `/` or `\`.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Checks every `[[source]]` table, in file order; the first unusable value is named
/// `source[i].<key>`.
pub(super) fn validate(tables: Vec<SourceConfig>) -> Result<Vec<SourceRule>, KeyError> {
    let mut rules: Vec<SourceRule> = Vec::with_capacity(tables.len());
    for (i, table) in tables.into_iter().enumerate() {
        let rule = table.validate(i)?;
        if let Some(j) = rules.iter().position(|r| r.name == rule.name) {
            return Err(KeyError::new(
                format!("source[{i}].name"),
                format!("`{}` is already the name of source[{j}]", rule.name),
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

impl SourceConfig {
    /// Checks the table at index `i` into a rule.
    fn validate(self, i: usize) -> Result<SourceRule, KeyError> {
        let key = |k: &str| format!("source[{i}].{k}");
        let invalid = |k: &str, reason: String| KeyError::new(key(k), reason);

        let pattern = match self.pattern.as_deref() {
            None | Some("") => {
                return Err(invalid(
                    "pattern",
                    "required: a glob on the file name, e.g. `*.csv.gz` or `*_1min_*.txt`".into(),
                ));
            }
            Some(p) => globset::Glob::new(p)
                .map_err(|e| invalid("pattern", format!("`{p}` is not a valid glob: {}", e.kind())))?
                .compile_matcher(),
        };
        let name = match self.name {
            None => format!("source[{i}]"),
            Some(n) if n.trim().is_empty() => {
                return Err(invalid("name", "must not be empty".into()));
            }
            Some(n) if n == DEFAULT_RULE_NAME => {
                return Err(invalid(
                    "name",
                    format!("`{DEFAULT_RULE_NAME}` is the name of the built-in rule"),
                ));
            }
            Some(n) => n,
        };
        let layout_name = self.layout.as_str();
        let interval = match &self.interval {
            None => None,
            Some(_) if layout_name != "firstrate" => {
                return Err(invalid(
                    "interval",
                    format!("only with layout = \"firstrate\" (layout is `{layout_name}`)"),
                ));
            }
            Some(v) => Some(
                Interval::ALL
                    .into_iter()
                    .find(|i| i.name() == v)
                    .ok_or_else(|| {
                        invalid("interval", format!("`{v}`: use one of {INTERVAL_NAMES}"))
                    })?,
            ),
        };
        let epoch = match &self.epoch_unit {
            None => EpochUnit::Auto,
            Some(_) if layout_name != "csv" => {
                return Err(invalid(
                    "epoch_unit",
                    format!("only with layout = \"csv\" (layout is `{layout_name}`)"),
                ));
            }
            Some(v) => EpochUnit::from_name(v).ok_or_else(|| {
                invalid("epoch_unit", format!("`{v}`: use one of {EPOCH_UNIT_NAMES}"))
            })?,
        };
        let layout = match layout_name {
            "auto" => None,
            "firstrate" => Some(LayoutRule::FirstRate { interval }),
            "polygon" => Some(LayoutRule::Polygon),
            "databento" => Some(LayoutRule::Databento),
            "kibot" => Some(LayoutRule::Kibot),
            "csv" => Some(LayoutRule::Csv { epoch }),
            other => {
                return Err(invalid(
                    "layout",
                    format!("`{other}`: use one of {LAYOUT_NAMES}"),
                ));
            }
        };
        let timezone = match &self.timezone {
            None => None,
            Some(tz) => Some(tz.parse::<Tz>().map_err(|_| {
                invalid(
                    "timezone",
                    format!("`{tz}` is not an IANA time zone name (e.g. America/New_York, or UTC)"),
                )
            })?),
        };
        let per_record = matches!(layout, Some(LayoutRule::Polygon | LayoutRule::Databento));
        let from_column = match self.symbol.as_deref() {
            None => per_record,
            Some("column") => {
                if let Some(LayoutRule::FirstRate { .. } | LayoutRule::Kibot) = layout {
                    return Err(invalid(
                        "symbol",
                        format!(
                            "\"column\" is not possible with layout = \"{layout_name}\": its \
                             lines carry no symbol; use \"name\""
                        ),
                    ));
                }
                true
            }
            Some("name") => {
                if per_record {
                    return Err(invalid(
                        "symbol",
                        format!(
                            "\"name\" is not possible with layout = \"{layout_name}\": each of \
                             its lines names its symbol; use \"column\""
                        ),
                    ));
                }
                false
            }
            Some(other) => {
                return Err(invalid(
                    "symbol",
                    format!("`{other}`: use one of {SYMBOL_NAMES}"),
                ));
            }
        };
        let symbol = match (&self.symbol_pattern, from_column) {
            (None, false) => SymbolFrom::FileName,
            (None, true) => SymbolFrom::Column,
            (Some(_), true) => {
                return Err(invalid(
                    "symbol_pattern",
                    "only with symbol = \"name\" (here each record names its symbol)".into(),
                ));
            }
            (Some(p), false) => {
                let regex = regex::Regex::new(p).map_err(|e| {
                    invalid(
                        "symbol_pattern",
                        format!("`{p}` is not a valid regex: {}", last_line(&e.to_string())),
                    )
                })?;
                let groups = regex.captures_len() - 1;
                if groups != 1 {
                    return Err(invalid(
                        "symbol_pattern",
                        format!(
                            "`{p}` has {groups} capture groups; it needs exactly one, the symbol \
                             (use (?:...) for other groups)"
                        ),
                    ));
                }
                SymbolFrom::Pattern(regex)
            }
        };
        let mut symbol_map = BTreeMap::new();
        for (from, to) in &self.symbol_map {
            let valid = |s: &str| {
                Symbol::new(s).ok_or_else(|| {
                    invalid(
                        "symbol_map",
                        format!(
                            "`{s}` is not a valid symbol: 1 to {} ASCII letters, digits, `.` or \
                             `-`, starting with a letter or digit",
                            Symbol::MAX_LEN
                        ),
                    )
                })
            };
            let (from_symbol, to_symbol) = (valid(from)?, valid(to)?);
            if symbol_map.insert(from_symbol, to_symbol).is_some() {
                return Err(invalid(
                    "symbol_map",
                    format!("`{from}` is renamed twice (symbols are not case-sensitive)"),
                ));
            }
        }
        let min_bars = u64::try_from(self.gate_min_bars)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| {
                invalid(
                    "gate_min_bars",
                    format!("{} is not a number of bars of at least 1", self.gate_min_bars),
                )
            })?;
        Ok(SourceRule {
            name,
            pattern: Some(pattern),
            layout,
            timezone,
            symbol,
            symbol_map,
            gate: GateOptions {
                enabled: self.gate,
                min_bars,
                ..GateOptions::default()
            },
        })
    }
}

/// The last line of a multi-line message: the regex crate draws the pattern and a caret first,
/// then says what is wrong.
fn last_line(message: &str) -> String {
    message.lines().last().unwrap_or(message).trim().to_owned()
}
