//! Staleness of watched symbols for the daemon: every refresh, each symbol's last bar time and
//! the trading sessions since, as the gauges `bar_ingest_last_bar_timestamp_seconds` and
//! `bar_ingest_sessions_behind` (label `symbol`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;
use tokio_util::sync::CancellationToken;

use crate::calendar;
use crate::config::StorageLayout;
use crate::exchange_time::{earliest_at_or_after, local_date};
use crate::model::{Bucket, Symbol};
use crate::store::{self, Schema};

/// Gauge: UTC seconds of a watched symbol's last stored bar (0: none in [`LOOKBACK_MONTHS`]).
pub const LAST_BAR: &str = "bar_ingest_last_bar_timestamp_seconds";
/// Gauge: trading sessions that have closed since a watched symbol's last bar's day.
pub const SESSIONS_BEHIND: &str = "bar_ingest_sessions_behind";
/// How far back the last bar is looked for, month by month.
pub const LOOKBACK_MONTHS: usize = 36;

/// Trading sessions after `last_day` up to `now_ms` whose regular close has passed.
pub fn sessions_behind(tz: Tz, last_day: NaiveDate, now_ms: i64) -> u32 {
    let today = local_date(tz, now_ms);
    let full_close = chrono::NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default();
    let closed = |d: NaiveDate| {
        let close = calendar::early_close(d).unwrap_or(full_close);
        earliest_at_or_after(tz, d.and_time(close)).timestamp_millis() <= now_ms
    };
    last_day
        .iter_days()
        .skip(1)
        .take_while(|d| *d <= today)
        .filter(|d| calendar::is_trading_day(*d) && closed(*d))
        .count() as u32
}

/// Refreshes the gauges of `symbols` every `every` until `stop`.
pub async fn run(
    session: Arc<Session>,
    schema: Schema,
    tz: Tz,
    layout: Option<StorageLayout>,
    symbols: Vec<Symbol>,
    every: Duration,
    stop: CancellationToken,
) {
    metrics::describe_gauge!(
        LAST_BAR,
        metrics::Unit::Seconds,
        "Time of a watched symbol's last stored bar, UTC seconds (0: none in the lookback)."
    );
    metrics::describe_gauge!(
        SESSIONS_BEHIND,
        "NYSE sessions closed since a watched symbol's last bar's day (coverage.watch)."
    );
    loop {
        match store::resolve_layout(&session, &schema, layout).await {
            Ok(layout) => refresh(&session, &schema, tz, layout, &symbols).await,
            Err(e) => tracing::warn!(error = %e, "staleness: cannot tell the storage layout"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn refresh(
    session: &Session,
    schema: &Schema,
    tz: Tz,
    layout: StorageLayout,
    symbols: &[Symbol],
) {
    let now = Utc::now().timestamp_millis();
    for symbol in symbols {
        match last_bar(session, schema, tz, layout, symbol, now).await {
            Ok(last) => {
                let label = [("symbol", symbol.to_string())];
                let seconds = last.map_or(0.0, |ms| ms as f64 / 1000.0);
                metrics::gauge!(LAST_BAR, &label).set(seconds);
                let since = last.map_or_else(
                    || local_date(tz, now) - chrono::TimeDelta::days(31 * LOOKBACK_MONTHS as i64),
                    |ms| local_date(tz, ms),
                );
                metrics::gauge!(SESSIONS_BEHIND, &label)
                    .set(f64::from(sessions_behind(tz, since, now)));
            }
            Err(e) => tracing::warn!(%symbol, error = %e, "staleness: cannot read the last bar"),
        }
    }
}

/// The instant of `symbol`'s last bar (UTC ms), searching back month by month.
async fn last_bar(
    session: &Session,
    schema: &Schema,
    tz: Tz,
    layout: StorageLayout,
    symbol: &Symbol,
    now_ms: i64,
) -> Result<Option<i64>, Box<dyn std::error::Error + Send + Sync>> {
    let cql = match layout {
        StorageLayout::Rows => format!(
            "SELECT ts FROM {} WHERE symbol = ? AND bucket = ? ORDER BY ts DESC LIMIT 1",
            schema.bars()
        ),
        _ => format!(
            "SELECT last_ts FROM {} WHERE symbol = ? AND bucket = ? ORDER BY day DESC LIMIT 1",
            schema.days()
        ),
    };
    let statement = session.prepare(cql).await?;
    let mut month = Bucket::of_local_date(local_date(tz, now_ms));
    for _ in 0..LOOKBACK_MONTHS {
        let bucket = month.to_string();
        let rows = session
            .execute_unpaged(&statement, (symbol.as_str(), bucket.as_str()))
            .await?
            .into_rows_result()?;
        if let Some(row) = rows.rows::<(CqlTimestamp,)>()?.next() {
            return Ok(Some(row?.0.0));
        }
        month = previous(month);
    }
    Ok(None)
}

fn previous(month: Bucket) -> Bucket {
    let first = month.first_day().pred_opt().unwrap_or(month.first_day());
    Bucket::of_local_date(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::New_York;

    fn ny(y: i32, m: u32, d: u32, h: u32) -> i64 {
        New_York
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn sessions_behind_counts_closed_trading_days_only() {
        let fri = NaiveDate::from_ymd_opt(2024, 12, 20).unwrap();
        // Monday 12-23 before the close: nothing closed since Friday.
        assert_eq!(sessions_behind(New_York, fri, ny(2024, 12, 23, 15)), 0);
        assert_eq!(sessions_behind(New_York, fri, ny(2024, 12, 23, 17)), 1);
        // Tuesday 12-24 closes at 13:00; Christmas does not trade.
        assert_eq!(sessions_behind(New_York, fri, ny(2024, 12, 24, 14)), 2);
        assert_eq!(sessions_behind(New_York, fri, ny(2024, 12, 25, 20)), 2);
        assert_eq!(sessions_behind(New_York, fri, ny(2024, 12, 26, 16)), 3);
    }
}
