//! `[[source]]` rules (placeholder of the lead's branch; the real module comes from wt-rules).

use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::model::Symbol;
use crate::pipeline::gate::GateOptions;
use crate::source::Interval;
use crate::source::times::EpochUnit;

#[derive(Debug, Clone)]
pub struct SourceRule {
    pub name: String,
    pub pattern: Option<globset::GlobMatcher>,
    pub layout: Option<LayoutRule>,
    pub timezone: Option<Tz>,
    pub symbol: SymbolFrom,
    pub symbol_map: BTreeMap<Symbol, Symbol>,
    pub gate: GateOptions,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayoutRule {
    FirstRate { interval: Option<Interval> },
    Polygon,
    Databento,
    Kibot,
    Csv { epoch: EpochUnit },
}

#[derive(Debug, Clone)]
pub enum SymbolFrom {
    FileName,
    Pattern(regex::Regex),
    Column,
}

impl SourceRule {
    pub fn default_rule() -> SourceRule {
        SourceRule {
            name: "default".into(),
            pattern: None,
            layout: None,
            timezone: None,
            symbol: SymbolFrom::FileName,
            symbol_map: BTreeMap::new(),
            gate: GateOptions::default(),
        }
    }

    pub fn matches(&self, file_name: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.is_match(file_name))
    }

    pub fn symbol_for(&self, file_name: &str) -> Option<Symbol> {
        let symbol = match &self.symbol {
            SymbolFrom::FileName => crate::source::symbol_from_file_name(file_name)?,
            SymbolFrom::Pattern(re) => Symbol::new(re.captures(file_name)?.get(1)?.as_str())?,
            SymbolFrom::Column => return None,
        };
        Some(self.rename(&symbol).cloned().unwrap_or(symbol))
    }

    pub fn rename(&self, symbol: &Symbol) -> Option<&Symbol> {
        self.symbol_map.get(symbol)
    }
}
