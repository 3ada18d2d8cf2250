//! Which partitions a run converts: the bars table's (symbol, bucket) keys, paged, kept when
//! the symbol is asked for and the month meets the range of days; sorted.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use futures_util::TryStreamExt;
use scylla::client::session::Session;

use super::{MigrateError, MigrateOptions};
use crate::model::{Bucket, Symbol};
use crate::store::Schema;

/// One partition of the bars table: a symbol's exchange-local month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    pub symbol: Symbol,
    pub bucket: Bucket,
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.symbol, self.bucket)
    }
}

impl Partition {
    /// The month's first and last days.
    pub fn days(&self) -> (NaiveDate, NaiveDate) {
        let first = self.bucket.first_day();
        let last = self.bucket.next().first_day().pred_opt().unwrap_or(first);
        (first, last)
    }

    /// The days of the month `options` asks for (`None` when none is).
    pub fn days_in(&self, options: &MigrateOptions) -> Option<(NaiveDate, NaiveDate)> {
        let (first, last) = self.days();
        let from = options.from.map_or(first, |d| d.max(first));
        let to = options.to.map_or(last, |d| d.min(last));
        (from <= to).then_some((from, to))
    }

    /// Whether `options` asks for every day of the month (so the partition can be recorded as
    /// done).
    pub fn whole_in(&self, options: &MigrateOptions) -> bool {
        self.days_in(options) == Some(self.days())
    }
}

/// The partitions of the bars table that `options` selects, sorted by symbol then month. Keys
/// that are not a symbol and a `YYYY-MM` bucket (none is written so) are skipped with a warning.
pub async fn partitions(
    session: &Session,
    schema: &Schema,
    options: &MigrateOptions,
) -> Result<Vec<Partition>, MigrateError> {
    let cql = format!("SELECT DISTINCT symbol, bucket FROM {}", schema.bars());
    let doing = || format!("listing the partitions of {}", schema.bars());
    let wanted: Option<BTreeSet<&Symbol>> = options.symbols.as_ref().map(|s| s.iter().collect());
    let pager = session
        .query_iter(cql.as_str(), ())
        .await
        .map_err(|e| MigrateError::query(doing(), e))?;
    let mut keys = pager
        .rows_stream::<(String, String)>()
        .map_err(|e| MigrateError::query(doing(), e))?;
    let mut out = BTreeSet::new();
    while let Some((symbol, bucket)) = keys
        .try_next()
        .await
        .map_err(|e| MigrateError::query(doing(), e))?
    {
        let (Some(s), Some(b)) = (Symbol::new(&symbol), Bucket::parse(&bucket)) else {
            tracing::warn!(
                symbol,
                bucket,
                "partition key is not a symbol and a month; skipped"
            );
            continue;
        };
        let p = Partition {
            symbol: s,
            bucket: b,
        };
        let asked = wanted.as_ref().is_none_or(|w| w.contains(&p.symbol));
        if asked && p.days_in(options).is_some() {
            out.insert(p);
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_range_selects_the_days_of_each_month_it_meets() {
        let p = Partition {
            symbol: Symbol::new("AAPL").unwrap(),
            bucket: Bucket::parse("2024-02").unwrap(),
        };
        assert_eq!(p.days(), (day("2024-02-01"), day("2024-02-29")));
        let mut o = MigrateOptions::all();
        assert!(p.whole_in(&o));
        o.from = Some(day("2024-02-10"));
        assert_eq!(p.days_in(&o), Some((day("2024-02-10"), day("2024-02-29"))));
        assert!(!p.whole_in(&o));
        o.from = Some(day("2024-03-01"));
        assert_eq!(p.days_in(&o), None);
        o.from = Some(day("2024-01-01"));
        o.to = Some(day("2024-02-29"));
        assert!(p.whole_in(&o));
    }
}
