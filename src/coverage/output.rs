//! Writing coverage reports: JSON lines and CSV (one line per symbol-day, anomalies on their
//! day), and a table for people (a line per symbol, then the worst days and the anomalies).

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use super::{Anomaly, DayCoverage, SymbolReport, SymbolSummary};

/// The CSV header line.
pub const CSV_HEADER: &str = "symbol,day,trading_day,half_day,expected,present,missing,\
longest_gap_minutes,bars,first,last,anomalies";

/// Days listed under "worst days" in the table.
pub const WORST_DAYS: usize = 10;

fn instant(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The anomalies of `day` among `all`.
fn of_day<'a>(all: &'a [Anomaly], day: &DayCoverage) -> impl Iterator<Item = &'a Anomaly> {
    all.iter().filter(move |a| a.day == day.day)
}

/// One symbol-day as a JSON object (the fields of [`DayCoverage`], `first`/`last` in RFC 3339
/// UTC, and `anomalies`: `[{"kind", "reason"}]`).
pub fn day_json(day: &DayCoverage, anomalies: &[Anomaly]) -> serde_json::Value {
    let found: Vec<serde_json::Value> = of_day(anomalies, day)
        .map(|a| serde_json::json!({"kind": a.kind.name(), "reason": a.kind.reason()}))
        .collect();
    serde_json::json!({
        "symbol": day.symbol,
        "day": day.day.to_string(),
        "trading_day": day.trading_day,
        "half_day": day.half_day,
        "expected": day.expected,
        "present": day.present,
        "missing": day.missing,
        "longest_gap_minutes": day.longest_gap_minutes,
        "bars": day.bars,
        "first": instant(day.first_ms),
        "last": instant(day.last_ms),
        "anomalies": found,
    })
}

/// Writes a report as JSON lines.
pub fn write_json(out: &mut impl Write, report: &SymbolReport) -> io::Result<()> {
    for day in &report.days {
        serde_json::to_writer(&mut *out, &day_json(day, &report.anomalies))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes a report as CSV lines (no header: write [`CSV_HEADER`] once first); anomalies are
/// their kinds joined with `;`.
pub fn write_csv(out: &mut impl Write, report: &SymbolReport) -> io::Result<()> {
    for d in &report.days {
        let kinds: Vec<&str> = of_day(&report.anomalies, d)
            .map(|a| a.kind.name())
            .collect();
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            d.symbol,
            d.day,
            d.trading_day,
            d.half_day,
            d.expected,
            d.present,
            d.missing,
            d.longest_gap_minutes,
            d.bars,
            instant(d.first_ms).unwrap_or_default(),
            instant(d.last_ms).unwrap_or_default(),
            kinds.join(";")
        )?;
    }
    Ok(())
}

/// Collects what the table shows: every summary, the worst days, every anomaly.
#[derive(Debug, Default)]
pub struct Table {
    summaries: Vec<SymbolSummary>,
    worst: Vec<DayCoverage>,
    anomalies: Vec<Anomaly>,
}

impl Table {
    /// Takes one symbol's report.
    pub fn add(&mut self, report: SymbolReport) {
        self.summaries.push(report.summary);
        let bad = report
            .days
            .into_iter()
            .filter(|d| d.missing > 0 || (!d.trading_day && d.bars > 0));
        self.worst.extend(bad);
        self.worst.sort_by(|a, b| {
            (b.missing, b.bars, &a.symbol, a.day).cmp(&(a.missing, a.bars, &b.symbol, b.day))
        });
        self.worst.truncate(WORST_DAYS);
        self.anomalies.extend(report.anomalies);
    }

    /// Writes the table.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{:<10} {:>8} {:>9} {:>9} {:>12} {:>12} {:>9} {:>10} {:>9}",
            "symbol",
            "days",
            "with data",
            "complete",
            "expected",
            "present",
            "complete%",
            "off-days",
            "anomalies"
        )?;
        for s in &self.summaries {
            writeln!(
                out,
                "{:<10} {:>8} {:>9} {:>9} {:>12} {:>12} {:>9.2} {:>10} {:>9}",
                s.symbol,
                s.trading_days,
                s.days_with_data,
                s.complete_days,
                s.expected,
                s.present,
                s.completeness_pct,
                s.non_trading_days_with_bars,
                s.anomalies
            )?;
        }
        if !self.worst.is_empty() {
            writeln!(out, "\nworst days:")?;
            writeln!(
                out,
                "{:<10} {:<10} {:>8} {:>8} {:>8} {:>12}  note",
                "symbol", "day", "expected", "present", "missing", "longest gap"
            )?;
            for d in &self.worst {
                let note = match (d.trading_day, d.half_day) {
                    (false, _) => "not a trading day",
                    (true, true) => "half day",
                    _ => "",
                };
                writeln!(
                    out,
                    "{:<10} {:<10} {:>8} {:>8} {:>8} {:>12}  {note}",
                    d.symbol, d.day, d.expected, d.present, d.missing, d.longest_gap_minutes
                )?;
            }
        }
        if !self.anomalies.is_empty() {
            writeln!(out, "\nanomalies:")?;
            for a in &self.anomalies {
                writeln!(
                    out,
                    "{:<10} {:<10} {:<17} {}",
                    a.symbol,
                    a.day,
                    a.kind.name(),
                    a.kind.reason()
                )?;
            }
        }
        Ok(())
    }
}
