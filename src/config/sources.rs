//! `[[source]]`: per-source rules, each saying how files whose name matches a glob are read.
//!
//! A rule names its files by a glob on the file's own name (any leading folders are ignored),
//! then settles what detection would otherwise guess: the layout (with its interval or epoch
//! unit), the zone of naive times, whether a bar's time is its open or its end (`stamp`), where
//! the symbol comes from (the file name, a regex on it, or a column), renames of symbols, and
//! the time-zone gate. Rules are tried in file order; the
//! first that matches wins, else the built-in [`SourceRule::default_rule`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::KeyError;
use crate::model::{Stamp, Symbol};
use crate::pipeline::gate::GateOptions;
use crate::source::layout::Layout;
use crate::source::times::EpochUnit;
use crate::source::{Interval, symbol_from_file_name};

/// Values of `layout`, `auto` (detect) first.
const LAYOUT_NAMES: &str = "auto, firstrate, polygon, databento, kibot, csv";
/// Values of `interval`.
const INTERVAL_NAMES: &str = "1min, 5min, 15min, 30min, 1hour, 1day";
/// Values of `epoch_unit`.
const EPOCH_UNIT_NAMES: &str = "auto, s, ms, us, ns";
/// Values of `symbol`.
const SYMBOL_NAMES: &str = "name, column";
/// Values of `stamp`.
const STAMP_NAMES: &str = "start, end";
/// The name of the built-in rule (no user rule may take it).
const DEFAULT_RULE_NAME: &str = "default";

/// One `[[source]]` table as written (unknown keys refused); [`validate`] checks it into a
/// [`SourceRule`]. Only `pattern` is required.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// `start` (a bar's time is its open) or `end` (its end: stored a minute earlier). None:
    /// `start`.
    pub stamp: Option<String>,
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
            stamp: None,
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
    /// Whether a record's time is its bar's open (the default) or its end.
    pub stamp: Stamp,
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
    FirstRate {
        interval: Option<Interval>,
    },
    Polygon,
    Databento,
    Kibot,
    /// Generic CSV; whether it has a symbol column comes from the rule's [`SymbolFrom`].
    Csv {
        epoch: EpochUnit,
    },
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
            stamp: Stamp::Start,
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
        let at = At(i);
        let pattern = self.pattern_matcher(at)?;
        let layout = self.layout_rule(at)?;
        let symbol = self.symbol_from(at, layout)?;
        Ok(SourceRule {
            pattern: Some(pattern),
            layout,
            timezone: self.zone(at)?,
            stamp: self.stamp(at)?,
            symbol,
            symbol_map: self.renames(at)?,
            gate: self.gate_options(at)?,
            name: self.rule_name(at)?,
        })
    }

    fn pattern_matcher(&self, at: At) -> Result<globset::GlobMatcher, KeyError> {
        let invalid = |k: &str, reason: String| at.invalid(k, reason);
        Ok(match self.pattern.as_deref() {
            None | Some("") => {
                return Err(invalid(
                    "pattern",
                    "required: a glob on the file name, e.g. `*.csv.gz` or `*_1min_*.txt`".into(),
                ));
            }
            Some(p) => globset::Glob::new(p)
                .map_err(|e| {
                    invalid(
                        "pattern",
                        format!("`{p}` is not a valid glob: {}", e.kind()),
                    )
                })?
                .compile_matcher(),
        })
    }

    fn rule_name(self, at: At) -> Result<String, KeyError> {
        let (i, invalid) = (at.0, |k: &str, reason: String| at.invalid(k, reason));
        Ok(match self.name {
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
        })
    }

    /// The layout, with the keys that only some layouts take (`interval`, `epoch_unit`).
    fn layout_rule(&self, at: At) -> Result<Option<LayoutRule>, KeyError> {
        let invalid = |k: &str, reason: String| at.invalid(k, reason);
        let layout_name = self.layout.as_str();
        if layout_name != "auto" && !Layout::NAMES.contains(&layout_name) {
            return Err(invalid(
                "layout",
                format!("`{layout_name}`: use one of {LAYOUT_NAMES}"),
            ));
        }
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
                invalid(
                    "epoch_unit",
                    format!("`{v}`: use one of {EPOCH_UNIT_NAMES}"),
                )
            })?,
        };
        Ok(match layout_name {
            "auto" => None,
            "firstrate" => Some(LayoutRule::FirstRate { interval }),
            "polygon" => Some(LayoutRule::Polygon),
            "databento" => Some(LayoutRule::Databento),
            "kibot" => Some(LayoutRule::Kibot),
            "csv" => Some(LayoutRule::Csv { epoch }),
            other => unreachable!("layout `{other}` was checked above"),
        })
    }

    fn zone(&self, at: At) -> Result<Option<Tz>, KeyError> {
        let invalid = |k: &str, reason: String| at.invalid(k, reason);
        Ok(match &self.timezone {
            None => None,
            Some(tz) => Some(tz.parse::<Tz>().map_err(|_| {
                invalid(
                    "timezone",
                    format!("`{tz}` is not an IANA time zone name (e.g. America/New_York, or UTC)"),
                )
            })?),
        })
    }

    fn stamp(&self, at: At) -> Result<Stamp, KeyError> {
        match self.stamp.as_deref() {
            None => Ok(Stamp::Start),
            Some(name) => [Stamp::Start, Stamp::End]
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| at.invalid("stamp", format!("`{name}`: use one of {STAMP_NAMES}"))),
        }
    }

    /// Where the symbol comes from: `symbol` and `symbol_pattern`, as the layout allows.
    fn symbol_from(&self, at: At, layout: Option<LayoutRule>) -> Result<SymbolFrom, KeyError> {
        let invalid = |k: &str, reason: String| at.invalid(k, reason);
        let layout_name = self.layout.as_str();
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
        Ok(match (&self.symbol_pattern, from_column) {
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
        })
    }

    fn renames(&self, at: At) -> Result<BTreeMap<Symbol, Symbol>, KeyError> {
        let invalid = |k: &str, reason: String| at.invalid(k, reason);
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
        Ok(symbol_map)
    }

    fn gate_options(&self, at: At) -> Result<GateOptions, KeyError> {
        let invalid = |k: &str, reason: String| at.invalid(k, reason);
        let min_bars = u64::try_from(self.gate_min_bars)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| {
                invalid(
                    "gate_min_bars",
                    format!(
                        "{} is not a number of bars of at least 1",
                        self.gate_min_bars
                    ),
                )
            })?;
        Ok(GateOptions {
            enabled: self.gate,
            min_bars,
            ..GateOptions::default()
        })
    }
}

/// The index of the `[[source]]` table being checked, for the key errors name.
#[derive(Clone, Copy)]
struct At(usize);

impl At {
    fn invalid(self, key: &str, reason: String) -> KeyError {
        KeyError::new(format!("source[{}].{key}", self.0), reason)
    }
}

/// The last line of a multi-line message: the regex crate draws the pattern and a caret first,
/// then says what is wrong.
fn last_line(message: &str) -> String {
    message.lines().last().unwrap_or(message).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError, Settings};

    fn settings(text: &str) -> Result<Settings, ConfigError> {
        let config: Config = toml::from_str(text).expect("parses");
        Settings::validate(config, None, None)
    }

    fn symbol(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    fn glob_of(rule: &SourceRule) -> Option<&str> {
        rule.pattern.as_ref().map(|m| m.glob().glob())
    }

    fn regex_of(rule: &SourceRule) -> Option<&str> {
        match &rule.symbol {
            SymbolFrom::Pattern(r) => Some(r.as_str()),
            _ => None,
        }
    }

    const THREE_RULES: &str = r#"
[input]
timezone = "America/Chicago"

[[source]]
name = "firstrate-5min"
pattern = "*_5min_*.txt"
layout = "firstrate"
interval = "5min"
symbol_map = { FB = "META", brk-b = "BRK.B" }
gate_min_bars = 50

[[source]]
pattern = "*.csv.gz"
layout = "csv"
timezone = "UTC"
epoch_unit = "ms"
symbol = "column"
gate = false

[[source]]
name = "kibot"
pattern = "kibot_*.txt"
layout = "kibot"
symbol_pattern = '^kibot_([A-Z.]+)_'
stamp = "end"
"#;

    #[test]
    fn three_rules_parse_into_their_values() {
        let s = settings(THREE_RULES).unwrap();
        assert_eq!(s.timezone, chrono_tz::America::Chicago);
        let [first, second, third] = &s.sources[..] else {
            panic!("{:?}", s.sources)
        };

        assert_eq!(first.name, "firstrate-5min");
        assert_eq!(glob_of(first), Some("*_5min_*.txt"));
        assert_eq!(
            first.layout,
            Some(LayoutRule::FirstRate {
                interval: Some(Interval::FiveMinutes)
            })
        );
        assert_eq!(first.timezone, None);
        assert!(matches!(first.symbol, SymbolFrom::FileName));
        let map: Vec<(&str, &str)> = first
            .symbol_map
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(map, [("BRK-B", "BRK.B"), ("FB", "META")]);
        assert_eq!(
            first.gate,
            GateOptions {
                min_bars: 50,
                ..GateOptions::default()
            }
        );

        assert_eq!(second.name, "source[1]");
        assert_eq!(glob_of(second), Some("*.csv.gz"));
        assert_eq!(
            second.layout,
            Some(LayoutRule::Csv {
                epoch: EpochUnit::Millis
            })
        );
        assert_eq!(second.timezone, Some(chrono_tz::UTC));
        assert!(matches!(second.symbol, SymbolFrom::Column));
        assert!(second.symbol_map.is_empty());
        assert_eq!(
            second.gate,
            GateOptions {
                enabled: false,
                ..GateOptions::default()
            }
        );

        assert_eq!(third.name, "kibot");
        assert_eq!(third.layout, Some(LayoutRule::Kibot));
        assert_eq!((first.stamp, third.stamp), (Stamp::Start, Stamp::End));
        assert_eq!(regex_of(third), Some("^kibot_([A-Z.]+)_"));
        assert_eq!(third.gate, GateOptions::default());
    }

    #[test]
    fn a_rule_with_only_a_pattern_takes_the_defaults() {
        let s = settings("[[source]]\npattern = \"*\"\n").unwrap();
        let [rule] = &s.sources[..] else {
            panic!("{:?}", s.sources)
        };
        assert_eq!(rule.name, "source[0]");
        assert_eq!(glob_of(rule), Some("*"));
        assert_eq!(rule.layout, None);
        assert_eq!(rule.timezone, None);
        assert_eq!(rule.stamp, Stamp::Start);
        assert!(matches!(rule.symbol, SymbolFrom::FileName));
        assert!(rule.symbol_map.is_empty());
        assert_eq!(rule.gate, GateOptions::default());
        assert!(settings("").unwrap().sources.is_empty());
    }

    /// What each layout makes of `symbol` left out, and the FirstRate interval left out.
    #[test]
    fn layouts_and_their_symbol_defaults() {
        let cases = [
            ("auto", None, "FileName"),
            (
                "firstrate",
                Some(LayoutRule::FirstRate { interval: None }),
                "FileName",
            ),
            ("polygon", Some(LayoutRule::Polygon), "Column"),
            ("databento", Some(LayoutRule::Databento), "Column"),
            ("kibot", Some(LayoutRule::Kibot), "FileName"),
            (
                "csv",
                Some(LayoutRule::Csv {
                    epoch: EpochUnit::Auto,
                }),
                "FileName",
            ),
        ];
        for (name, layout, from) in cases {
            let s = settings(&format!(
                "[[source]]\npattern = \"*\"\nlayout = \"{name}\"\n"
            ))
            .unwrap();
            assert_eq!(s.sources[0].layout, layout, "{name}");
            assert_eq!(format!("{:?}", s.sources[0].symbol), from, "{name}");
        }
        let s = settings("[[source]]\npattern = \"*\"\nlayout = \"auto\"\nsymbol = \"column\"\n")
            .unwrap();
        assert!(matches!(s.sources[0].symbol, SymbolFrom::Column));
    }

    #[test]
    fn invalid_tables_name_the_key_and_why() {
        let ok = "[[source]]\npattern = \"*.txt\"\n";
        let cases: &[(&str, &str, &str)] = &[
            (
                "[[source]]\nname = \"x\"\n",
                "source[0].pattern",
                "required: a glob on the file name, e.g. `*.csv.gz` or `*_1min_*.txt`",
            ),
            (
                "[[source]]\npattern = \"\"\n",
                "source[0].pattern",
                "required: a glob on the file name, e.g. `*.csv.gz` or `*_1min_*.txt`",
            ),
            (
                "[[source]]\npattern = \"[a\"\n",
                "source[0].pattern",
                "`[a` is not a valid glob: unclosed character class; missing ']'",
            ),
            (
                "[[source]]\npattern = \"*\"\nname = \"\"\n",
                "source[0].name",
                "must not be empty",
            ),
            (
                "[[source]]\npattern = \"*\"\nname = \"default\"\n",
                "source[0].name",
                "`default` is the name of the built-in rule",
            ),
            (
                "[[source]]\npattern = \"*\"\nname = \"a\"\n[[source]]\npattern = \"*\"\nname = \"a\"\n",
                "source[1].name",
                "`a` is already the name of source[0]",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"parquet\"\n",
                "source[0].layout",
                "`parquet`: use one of auto, firstrate, polygon, databento, kibot, csv",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"parquet\"\ninterval = \"1min\"\n",
                "source[0].layout",
                "`parquet`: use one of auto, firstrate, polygon, databento, kibot, csv",
            ),
            (
                "[[source]]\npattern = \"*\"\nstamp = \"close\"\n",
                "source[0].stamp",
                "`close`: use one of start, end",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"FirstRate\"\n",
                "source[0].layout",
                "`FirstRate`: use one of auto, firstrate, polygon, databento, kibot, csv",
            ),
            (
                "[[source]]\npattern = \"*\"\ntimezone = \"Mars/Olympus\"\n",
                "source[0].timezone",
                "`Mars/Olympus` is not an IANA time zone name (e.g. America/New_York, or UTC)",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"firstrate\"\ninterval = \"2min\"\n",
                "source[0].interval",
                "`2min`: use one of 1min, 5min, 15min, 30min, 1hour, 1day",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"kibot\"\ninterval = \"1min\"\n",
                "source[0].interval",
                "only with layout = \"firstrate\" (layout is `kibot`)",
            ),
            (
                "[[source]]\npattern = \"*\"\ninterval = \"1day\"\n",
                "source[0].interval",
                "only with layout = \"firstrate\" (layout is `auto`)",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"csv\"\nepoch_unit = \"sec\"\n",
                "source[0].epoch_unit",
                "`sec`: use one of auto, s, ms, us, ns",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"polygon\"\nepoch_unit = \"ns\"\n",
                "source[0].epoch_unit",
                "only with layout = \"csv\" (layout is `polygon`)",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol = \"file\"\n",
                "source[0].symbol",
                "`file`: use one of name, column",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"firstrate\"\nsymbol = \"column\"\n",
                "source[0].symbol",
                "\"column\" is not possible with layout = \"firstrate\": its lines carry no \
                 symbol; use \"name\"",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"kibot\"\nsymbol = \"column\"\n",
                "source[0].symbol",
                "\"column\" is not possible with layout = \"kibot\": its lines carry no symbol; \
                 use \"name\"",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"databento\"\nsymbol = \"name\"\n",
                "source[0].symbol",
                "\"name\" is not possible with layout = \"databento\": each of its lines names \
                 its symbol; use \"column\"",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol_pattern = \"(\"\n",
                "source[0].symbol_pattern",
                "`(` is not a valid regex: error: unclosed group",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol_pattern = \"^[A-Z]+\"\n",
                "source[0].symbol_pattern",
                "`^[A-Z]+` has 0 capture groups; it needs exactly one, the symbol (use (?:...) \
                 for other groups)",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol_pattern = \"^([A-Z]+)_(1min)\"\n",
                "source[0].symbol_pattern",
                "`^([A-Z]+)_(1min)` has 2 capture groups; it needs exactly one, the symbol (use \
                 (?:...) for other groups)",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol = \"column\"\nsymbol_pattern = \"^(.+)\"\n",
                "source[0].symbol_pattern",
                "only with symbol = \"name\" (here each record names its symbol)",
            ),
            (
                "[[source]]\npattern = \"*\"\nlayout = \"polygon\"\nsymbol_pattern = \"^(.+)\"\n",
                "source[0].symbol_pattern",
                "only with symbol = \"name\" (here each record names its symbol)",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol_map = { FB = \"META_X\" }\n",
                "source[0].symbol_map",
                "`META_X` is not a valid symbol: 1 to 32 ASCII letters, digits, `.` or `-`, \
                 starting with a letter or digit",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol_map = { \"F B\" = \"META\" }\n",
                "source[0].symbol_map",
                "`F B` is not a valid symbol: 1 to 32 ASCII letters, digits, `.` or `-`, \
                 starting with a letter or digit",
            ),
            (
                "[[source]]\npattern = \"*\"\nsymbol_map = { FB = \"META\", fb = \"X\" }\n",
                "source[0].symbol_map",
                "`fb` is renamed twice (symbols are not case-sensitive)",
            ),
            (
                "[[source]]\npattern = \"*\"\ngate_min_bars = 0\n",
                "source[0].gate_min_bars",
                "0 is not a number of bars of at least 1",
            ),
            (
                "[[source]]\npattern = \"*\"\ngate_min_bars = -5\n",
                "source[0].gate_min_bars",
                "-5 is not a number of bars of at least 1",
            ),
        ];
        for &(table, key, reason) in cases {
            // Each case also after two good rules: the index in the key follows the table.
            for (prefix, shift) in [(String::new(), 0), (format!("{ok}{ok}"), 2)] {
                let text = format!("{prefix}{table}");
                match settings(&text) {
                    Err(ConfigError::Invalid {
                        key: got_key,
                        reason: got_reason,
                        ..
                    }) => {
                        assert_eq!(got_key, shifted(key, shift), "{text}");
                        assert_eq!(got_reason, shifted(reason, shift), "{text}");
                    }
                    other => panic!("{text}: {other:?}"),
                }
            }
        }
    }

    /// `text` with every `source[N]` made `source[N + by]`.
    fn shifted(text: &str, by: usize) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("source[") {
            let (before, after) = rest.split_at(at + "source[".len());
            let end = after.find(']').unwrap();
            let n: usize = after[..end].parse().unwrap();
            out.push_str(before);
            out.push_str(&(n + by).to_string());
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }

    /// The commented-out `[[source]]` of the example config, uncommented, is a valid rule that
    /// shows the default gate.
    #[test]
    fn the_example_rule_is_valid() {
        let example = include_str!("../../config/bar-ingest.example.toml");
        let block = &example[example.find("# [[source]]").expect("example has a rule")..];
        let text: String = block
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let s = settings(&text).unwrap();
        let [rule] = &s.sources[..] else {
            panic!("{text}")
        };
        assert_eq!(rule.name, "firstrate-5min");
        assert_eq!(
            rule.layout,
            Some(LayoutRule::FirstRate {
                interval: Some(Interval::FiveMinutes)
            })
        );
        assert_eq!(regex_of(rule), Some("^([A-Z.]+)_"));
        assert_eq!(rule.stamp, Stamp::Start);
        assert_eq!(rule.rename(&symbol("FB")), Some(&symbol("META")));
        assert_eq!(rule.gate, GateOptions::default());
    }

    #[test]
    fn unknown_keys_in_a_source_are_refused() {
        let err = toml::from_str::<Config>("[[source]]\npattern = \"*\"\nlayuot = \"csv\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `layuot`"), "{err}");
    }

    fn rule(name: &str, pattern: &str) -> SourceRule {
        let s = settings(&format!(
            "[[source]]\nname = \"{name}\"\npattern = \"{pattern}\"\n"
        ))
        .unwrap();
        s.sources.into_iter().next().unwrap()
    }

    #[test]
    fn matching_is_on_the_own_name_and_case_sensitive() {
        let r = rule("gz", "*_1min_*.txt");
        assert!(r.matches("AAPL_full_1min_adjsplit.txt"));
        assert!(r.matches("inbox/2024/AAPL_full_1min_adjsplit.txt"));
        assert!(!r.matches("AAPL_full_1min_adjsplit.TXT"));
        assert!(!r.matches("AAPL_full_5min_adjsplit.txt"));
        let anchored = rule("aapl", "AAPL*");
        assert!(anchored.matches("deliveries/AAPL_1min.txt"));
        assert!(!anchored.matches("aapl_1min.txt"));
        let default = SourceRule::default_rule();
        assert!(default.matches("") && default.matches("anything.bin"));
    }

    #[test]
    fn rule_for_takes_the_unit_name_first_then_the_delivery_then_the_default() {
        let s = settings(
            r#"
[[source]]
name = "txt-in-zip"
pattern = "*.txt"
[[source]]
name = "zip"
pattern = "*.zip"
[[source]]
name = "also-txt"
pattern = "AAPL*.txt"
"#,
        )
        .unwrap();
        // The unit's own name wins over the delivery's, and the first matching rule wins.
        assert_eq!(s.rule_for("AAPL_1min.txt", "batch.zip").name, "txt-in-zip");
        assert_eq!(
            s.rule_for("AAPL_1min.txt", "AAPL_1min.txt").name,
            "txt-in-zip"
        );
        // No rule for the unit: the delivery's name decides.
        assert_eq!(s.rule_for("AAPL_1min.csv", "batch.zip").name, "zip");
        // Neither: the built-in rule.
        let default = s.rule_for("AAPL_1min.csv", "batch.tar");
        assert_eq!(default.name, "default");
        assert!(default.pattern.is_none() && default.layout.is_none());
        assert!(std::ptr::eq(default, s.rule_for("x", "y")));
        // No rules at all.
        assert_eq!(
            settings("").unwrap().rule_for("a.txt", "a.txt").name,
            "default"
        );
    }

    #[test]
    fn symbol_for_from_the_file_name_a_pattern_and_the_map() {
        let s = settings(
            r#"
[[source]]
pattern = "*_full_*"
symbol_map = { FB = "META" }
[[source]]
pattern = "bars-*"
symbol_pattern = '^bars-([a-z.]+)-\d{8}\.csv$'
symbol_map = { fb = "meta" }
[[source]]
pattern = "*.csv"
layout = "csv"
symbol = "column"
symbol_map = { FB = "META" }
"#,
        )
        .unwrap();
        let [by_name, by_pattern, by_column] = &s.sources[..] else {
            panic!()
        };
        let got = |r: &SourceRule, name: &str| r.symbol_for(name).map(|s| s.as_str().to_owned());
        assert_eq!(
            got(by_name, "BRK.B_full_1min.txt").as_deref(),
            Some("BRK.B")
        );
        assert_eq!(got(by_name, "FB_full_1min.txt").as_deref(), Some("META"));
        assert_eq!(got(by_name, "in/fb_full_1min.txt").as_deref(), Some("META"));
        assert_eq!(got(by_name, "_full_1min.txt"), None);

        assert_eq!(
            got(by_pattern, "bars-brk.b-20240102.csv").as_deref(),
            Some("BRK.B")
        );
        assert_eq!(
            got(by_pattern, "x/bars-fb-20240102.csv").as_deref(),
            Some("META")
        );
        assert_eq!(got(by_pattern, "bars-FB-20240102.csv"), None, "no match");
        assert_eq!(
            got(by_pattern, "bars-.-20240102.csv"),
            None,
            "invalid symbol"
        );

        assert_eq!(got(by_column, "FB_full_1min.csv"), None);
        assert_eq!(by_column.rename(&symbol("FB")), Some(&symbol("META")));
        assert_eq!(by_column.rename(&symbol("META")), None);

        let default = SourceRule::default_rule();
        assert_eq!(got(&default, "FB_full_1min.txt").as_deref(), Some("FB"));
    }
}
