//! What a role may do, learnt before any file is touched: each statement kind the command will
//! run is tried once on a partition no delivery uses (reads find nothing; deletes carry write
//! timestamp 1, older than every real row, so they remove nothing). A missing grant is then a
//! start-up error naming the `GRANT`, instead of every file failing on it.

use scylla::client::session::Session;

use super::{Schema, StoreError, unauthorized, who};

/// Partition key of the probes: not a symbol or fingerprint any file can have.
const PROBE_KEY: &str = "-bar-ingest-permission-probe-";
/// Write timestamp of the probe deletes: older than any row ever written.
const PROBE_TIMESTAMP: i64 = 1;

/// What a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `load` and `run`: read and write the history, write (and delete) bars.
    Load,
    /// `fetch` of a keyspace read in the `rows` layout: read bars.
    Fetch,
    /// `load` and `run` when the layout writes day cells (`days`, `both`), besides [`Access::Load`]:
    /// read the day-cell table (which layout a keyspace holds) and write (and delete) cells.
    WriteDays,
    /// `load` and `run` without a configured `storage.layout`: read both bar tables, to learn
    /// which layout the keyspace holds (`store::resolve_layout`).
    ReadLayout,
    /// `migrate`: read bars, read and write day cells.
    Migrate,
    /// `fetch` of a keyspace read in the `days` or `both` layout: read day cells.
    FetchDays,
}

/// One permission on one table, and a statement that needs exactly it.
struct Probe {
    permission: &'static str,
    table: String,
    statement: String,
}

fn probes(schema: &Schema, access: Access) -> Vec<Probe> {
    let (bars, history, days) = (schema.bars(), schema.history(), schema.days());
    let probe = |permission, table: &str, statement: String| Probe {
        permission,
        table: table.to_owned(),
        statement,
    };
    let select_bars = probe(
        "SELECT",
        &bars,
        format!("SELECT ts FROM {bars} WHERE symbol = '{PROBE_KEY}' AND bucket = '' LIMIT 1"),
    );
    let select_days = probe(
        "SELECT",
        &days,
        format!("SELECT day FROM {days} WHERE symbol = '{PROBE_KEY}' AND bucket = '' LIMIT 1"),
    );
    let modify_days = probe(
        "MODIFY",
        &days,
        format!(
            "DELETE FROM {days} USING TIMESTAMP {PROBE_TIMESTAMP} \
             WHERE symbol = '{PROBE_KEY}' AND bucket = ''"
        ),
    );
    match access {
        Access::Fetch => vec![select_bars],
        Access::ReadLayout => vec![select_days, select_bars],
        Access::WriteDays => vec![select_days, modify_days],
        Access::Migrate => vec![select_bars, select_days, modify_days],
        Access::FetchDays => vec![select_days],
        Access::Load => vec![
            probe(
                "SELECT",
                &history,
                format!("SELECT outcome FROM {history} WHERE fingerprint = '{PROBE_KEY}'"),
            ),
            probe(
                "MODIFY",
                &history,
                format!(
                    "DELETE FROM {history} USING TIMESTAMP {PROBE_TIMESTAMP} \
                     WHERE fingerprint = '{PROBE_KEY}'"
                ),
            ),
            probe(
                "MODIFY",
                &bars,
                format!(
                    "DELETE FROM {bars} USING TIMESTAMP {PROBE_TIMESTAMP} \
                     WHERE symbol = '{PROBE_KEY}' AND bucket = ''"
                ),
            ),
        ],
    }
}

/// Checks what `load` and `run` need and learns the layout they write
/// ([`super::resolve_layout`]): the rows layout's grants, those that learn the layout when none
/// is configured, and those of the day-cell table when the layout writes cells.
pub async fn check_load_access(
    session: &Session,
    schema: &Schema,
    configured: Option<crate::config::StorageLayout>,
    user: Option<&str>,
) -> Result<crate::config::StorageLayout, StoreError> {
    check_access(session, schema, Access::Load, user).await?;
    if configured.is_none() {
        check_access(session, schema, Access::ReadLayout, user).await?;
    }
    let layout = super::resolve_layout(session, schema, configured).await?;
    if layout.writes_days() {
        check_access(session, schema, Access::WriteDays, user).await?;
    }
    Ok(layout)
}

/// The `GRANT`s a role needs for `access` (the README lists the same).
pub fn grants(schema: &Schema, access: Access, role: &str) -> Vec<String> {
    probes(schema, access)
        .into_iter()
        .map(|p| format!("GRANT {} ON TABLE {} TO {role}", p.permission, p.table))
        .collect()
}

/// Tries every statement kind `access` needs; the first permission refusal is an error naming
/// the grant. Other failures (a timeout, say) are left to the real requests and their retries.
pub async fn check_access(
    session: &Session,
    schema: &Schema,
    access: Access,
    user: Option<&str>,
) -> Result<(), StoreError> {
    for probe in probes(schema, access) {
        let err = match session.query_unpaged(probe.statement.as_str(), ()).await {
            Ok(_) => continue,
            Err(e) => e,
        };
        let Some(said) = unauthorized(&err) else {
            tracing::warn!(statement = %probe.statement, error = %err, "permission probe failed; going on");
            continue;
        };
        let role = user.unwrap_or("<role>");
        return Err(StoreError::Unauthorized {
            who: who(user),
            doing: format!("{} table {}", probe.permission, probe.table),
            said: said.to_owned(),
            hint: format!(
                "an administrator grants it: GRANT {} ON TABLE {} TO {role}; see \
                 docs/operations.md, Security",
                probe.permission, probe.table
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn grants_name_each_table_and_permission_once() {
        let schema = Schema::from_config(&Settings::defaults(None).unwrap().database);
        assert_eq!(
            grants(&schema, Access::Load, "loader"),
            vec![
                "GRANT SELECT ON TABLE market_data.load_history TO loader",
                "GRANT MODIFY ON TABLE market_data.load_history TO loader",
                "GRANT MODIFY ON TABLE market_data.bars_1min TO loader",
            ]
        );
        assert_eq!(
            grants(&schema, Access::WriteDays, "loader"),
            vec![
                "GRANT SELECT ON TABLE market_data.bars_1min_days TO loader",
                "GRANT MODIFY ON TABLE market_data.bars_1min_days TO loader",
            ]
        );
        assert_eq!(
            grants(&schema, Access::Fetch, "reader"),
            vec!["GRANT SELECT ON TABLE market_data.bars_1min TO reader"]
        );
        assert_eq!(
            grants(&schema, Access::Migrate, "migrator"),
            vec![
                "GRANT SELECT ON TABLE market_data.bars_1min TO migrator",
                "GRANT SELECT ON TABLE market_data.bars_1min_days TO migrator",
                "GRANT MODIFY ON TABLE market_data.bars_1min_days TO migrator",
            ]
        );
        assert_eq!(
            grants(&schema, Access::FetchDays, "reader"),
            vec!["GRANT SELECT ON TABLE market_data.bars_1min_days TO reader"]
        );
    }
}
