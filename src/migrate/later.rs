//! Later deliveries: the load history's deliveries of a symbol written after its rows, which
//! tell a day a later delivery emptied (its range tombstone shadows the migrated cell) from a
//! cell that is missing for no reason.
//!
//! The history is keyed by content fingerprint, so a symbol's deliveries are found by a
//! filtering scan; it runs only when a cell is missing, once per symbol (and once for the
//! multi-symbol deliveries), and the result is kept for the run.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use futures_util::TryStreamExt;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use tokio::sync::Mutex;

use super::MigrateError;
use crate::exchange_time::local_date;
use crate::ingest::MANY_SYMBOLS;
use crate::model::Symbol;
use crate::store::{Schema, StoreError, prepare_idempotent};

/// One recorded delivery that wrote at `written`: the local days it replaced.
#[derive(Debug, Clone)]
struct Covering {
    file_name: String,
    first: NaiveDate,
    last: NaiveDate,
    written: i64,
}

#[derive(Debug, scylla::DeserializeRow)]
struct HistoryRow {
    file_name: Option<String>,
    first_bar: Option<CqlTimestamp>,
    last_bar: Option<CqlTimestamp>,
    write_timestamp: Option<i64>,
}

/// The history's deliveries per symbol, read when first needed.
pub(crate) struct LaterDeliveries {
    by_symbol: PreparedStatement,
    tz: Tz,
    cache: Mutex<HashMap<String, Arc<Vec<Covering>>>>,
}

impl LaterDeliveries {
    pub async fn prepare(session: &Session, schema: &Schema, tz: Tz) -> Result<Self, StoreError> {
        let by_symbol = prepare_idempotent(
            session,
            &format!(
                "SELECT file_name, first_bar, last_bar, write_timestamp FROM {} \
                 WHERE symbol = ? ALLOW FILTERING",
                schema.history()
            ),
        )
        .await?;
        Ok(Self {
            by_symbol,
            tz,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The name of a delivery of `symbol` (or of many symbols) written after `written` whose
    /// days include `day`: it replaced that day, so a cell missing there was emptied by it.
    pub async fn emptied_by(
        &self,
        session: &Session,
        symbol: &Symbol,
        day: NaiveDate,
        written: i64,
    ) -> Result<Option<String>, MigrateError> {
        for name in [symbol.as_str(), MANY_SYMBOLS] {
            let deliveries = self.of(session, name).await?;
            let found = deliveries
                .iter()
                .find(|d| d.written > written && d.first <= day && day <= d.last);
            if let Some(d) = found {
                return Ok(Some(d.file_name.clone()));
            }
        }
        Ok(None)
    }

    /// The deliveries recorded under `symbol`, from the cache or the history.
    async fn of(
        &self,
        session: &Session,
        symbol: &str,
    ) -> Result<Arc<Vec<Covering>>, MigrateError> {
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.get(symbol) {
            return Ok(Arc::clone(found));
        }
        let doing = || format!("reading the load history of {symbol}");
        let rows: Vec<HistoryRow> = session
            .execute_iter(self.by_symbol.clone(), (symbol,))
            .await
            .map_err(|e| MigrateError::query(doing(), e))?
            .rows_stream::<HistoryRow>()
            .map_err(|e| MigrateError::query(doing(), e))?
            .try_collect()
            .await
            .map_err(|e| MigrateError::query(doing(), e))?;
        let found: Vec<Covering> = rows
            .into_iter()
            .filter_map(|r| {
                Some(Covering {
                    file_name: r.file_name.unwrap_or_default(),
                    first: local_date(self.tz, r.first_bar?.0),
                    last: local_date(self.tz, r.last_bar?.0),
                    written: r.write_timestamp.filter(|w| *w > 0)?,
                })
            })
            .collect();
        let found = Arc::new(found);
        cache.insert(symbol.to_owned(), Arc::clone(&found));
        Ok(found)
    }
}
