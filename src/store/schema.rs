//! The CQL schema (keyspace, bars table, load-history table, day-cell table): the columns the
//! code reads and writes, the DDL that creates them, and start-up's policy: check what exists, create only what
//! is missing and only when allowed (`database.manage_schema`).

use scylla::client::session::Session;

use super::columns::{BARS_COLUMNS, DAYS_COLUMNS, HISTORY_COLUMNS, KeyRole, TableSpec};
use super::schema_check::{SchemaProblem, compare_schema};
use super::{StoreError, unauthorized, who};
use crate::config::{Database, ReplicationConfig};

/// The day table's SSTables are compressed with Zstd, not the default LZ4: measured by
/// `scripts/bench-disk` (docs/migrate.md), the day store then takes 7.64 bytes a bar on disk
/// against the row store's 32.66 (0.234x; LZ4: 8.70, 0.266x), with the cell bodies left stored
/// so that the client decodes at full speed (the node decompresses its blocks either way).
pub const DAYS_TABLE_OPTIONS: &str = "compression = {'class': 'ZstdCompressor'}";

/// Names and options of everything the schema creates. Built from `[database]`; tests give each
/// run its own keyspace.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Keyspace holding both tables.
    pub keyspace: String,
    /// One-minute bars, `PRIMARY KEY ((symbol, bucket), ts)`.
    pub bars_table: String,
    /// One row per loaded file content.
    pub history_table: String,
    /// Day cells, `PRIMARY KEY ((symbol, bucket), day)`.
    pub days_table: String,
    /// Replication used when creating the keyspace.
    pub replication: ReplicationConfig,
    /// Extra `WITH` options for the bars table.
    pub bars_table_options: String,
}

impl Schema {
    /// The schema described by `[database]` (names already validated as plain identifiers).
    pub fn from_config(db: &Database) -> Self {
        Self {
            keyspace: db.keyspace.clone(),
            bars_table: db.bars_table.clone(),
            history_table: db.history_table.clone(),
            days_table: db.days_table.clone(),
            replication: db.replication.clone(),
            bars_table_options: db.bars_table_options.clone(),
        }
    }

    /// `keyspace.bars_table`.
    pub fn bars(&self) -> String {
        format!("{}.{}", self.keyspace, self.bars_table)
    }

    /// `keyspace.history_table`.
    pub fn history(&self) -> String {
        format!("{}.{}", self.keyspace, self.history_table)
    }

    /// `keyspace.days_table`.
    pub fn days(&self) -> String {
        format!("{}.{}", self.keyspace, self.days_table)
    }

    /// Every table: bars, history, day cells.
    pub(crate) fn tables(&self) -> [TableSpec<'_>; 3] {
        [
            TableSpec {
                name: &self.bars_table,
                columns: BARS_COLUMNS,
                options: self.bars_table_options.trim(),
            },
            TableSpec {
                name: &self.history_table,
                columns: HISTORY_COLUMNS,
                options: "",
            },
            TableSpec {
                name: &self.days_table,
                columns: DAYS_COLUMNS,
                options: DAYS_TABLE_OPTIONS,
            },
        ]
    }

    /// Whether start-up must have `problem` fixed. A missing day-cell table is created when
    /// `manage_schema` allows, but nothing reads or writes it yet, so a keyspace made before it
    /// existed keeps working without it.
    pub fn blocks_start(&self, problem: &SchemaProblem) -> bool {
        !matches!(problem, SchemaProblem::TableMissing { table } if *table == self.days_table)
    }

    /// The replication map as CQL.
    fn replication_cql(&self) -> String {
        let r = &self.replication;
        if r.class == "NetworkTopologyStrategy" {
            let dcs: Vec<String> = r
                .datacenters
                .iter()
                .map(|(dc, n)| format!("'{dc}': {n}"))
                .collect();
            format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
        } else {
            format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                r.factor
            )
        }
    }

    fn create_keyspace(&self) -> String {
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
            self.keyspace,
            self.replication_cql()
        )
    }

    fn create_table(&self, table: &TableSpec<'_>) -> String {
        let keyed = |role: fn(KeyRole) -> Option<i32>| {
            let mut key: Vec<(i32, &str)> = table
                .columns
                .iter()
                .filter_map(|c| role(c.role).map(|p| (p, c.name)))
                .collect();
            key.sort_unstable();
            key.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
        };
        let partition = keyed(|r| match r {
            KeyRole::Partition(p) => Some(p),
            _ => None,
        });
        let clustering = keyed(|r| match r {
            KeyRole::Clustering(p) => Some(p),
            _ => None,
        });
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.cql_type))
            .collect();
        let mut key = format!("({})", partition.join(", "));
        let mut options = Vec::new();
        if !clustering.is_empty() {
            key = format!("{key}, {}", clustering.join(", "));
            let order: Vec<String> = clustering.iter().map(|c| format!("{c} ASC")).collect();
            options.push(format!("CLUSTERING ORDER BY ({})", order.join(", ")));
        }
        if !table.options.is_empty() {
            options.push(table.options.to_owned());
        }
        let with = if options.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", options.join(" AND "))
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({key})){with}",
            self.keyspace,
            table.name,
            columns.join(", ")
        )
    }

    /// Every DDL statement, in order. All are `IF NOT EXISTS`, so running them again is harmless.
    pub fn statements(&self) -> Vec<String> {
        let mut all = vec![self.create_keyspace()];
        all.extend(self.tables().iter().map(|t| self.create_table(t)));
        all
    }

    /// The statements that create what `problems` says is missing (nothing else).
    fn statements_for(&self, problems: &[SchemaProblem]) -> Vec<String> {
        let keyspace_missing = problems
            .iter()
            .any(|p| matches!(p, SchemaProblem::KeyspaceMissing { .. }));
        let mut out = Vec::new();
        if keyspace_missing {
            out.push(self.create_keyspace());
        }
        for table in self.tables() {
            let missing = problems
                .iter()
                .any(|p| matches!(p, SchemaProblem::TableMissing { table: t } if *t == table.name));
            if keyspace_missing || missing {
                out.push(self.create_table(&table));
            }
        }
        out
    }
}

/// Every difference between the cluster's schema and `schema` (reading `system_schema` only);
/// empty when all is there.
pub async fn check_schema(
    session: &Session,
    schema: &Schema,
) -> Result<Vec<SchemaProblem>, StoreError> {
    compare_schema(session, &schema.keyspace, &schema.tables()).await
}

/// What start-up found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    /// Keyspace and tables were there as needed: nothing was created (no DDL at all).
    Present,
    /// Something was missing and was created.
    Created,
}

/// Checks the schema (reads `system_schema` only) and creates only what is missing, and only
/// when `manage` is true; `user` names the role in a permission error. A table whose columns
/// differ is an error either way.
pub async fn ensure_schema(
    session: &Session,
    schema: &Schema,
    manage: bool,
    user: Option<&str>,
) -> Result<SchemaState, StoreError> {
    let mut problems = check_schema(session, schema).await?;
    if !manage {
        problems.retain(|p| schema.blocks_start(p));
    }
    if problems.is_empty() {
        return Ok(SchemaState::Present);
    }
    if problems.iter().any(|p| !p.is_missing_object()) {
        return Err(StoreError::SchemaMismatch {
            problems: listed(&problems),
        });
    }
    let missing = schema.statements_for(&problems);
    if !manage {
        return Err(StoreError::SchemaMissing {
            problems: listed(&problems),
            cql: missing.iter().map(|s| format!("  {s};\n")).collect(),
        });
    }
    for statement in &missing {
        create(session, statement, user).await?;
    }
    let left = check_schema(session, schema).await?;
    if !left.is_empty() {
        return Err(StoreError::SchemaMismatch {
            problems: listed(&left),
        });
    }
    Ok(SchemaState::Created)
}

/// Creates the keyspace and tables if missing (`bar-ingest init-schema`; tests).
pub async fn init_schema(session: &Session, schema: &Schema) -> Result<(), StoreError> {
    ensure_schema(session, schema, true, None).await.map(|_| ())
}

fn listed(problems: &[SchemaProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one DDL statement; a permission refusal says who and what to do.
async fn create(session: &Session, statement: &str, user: Option<&str>) -> Result<(), StoreError> {
    let err = match session.query_unpaged(statement, ()).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if let Some(said) = unauthorized(&err) {
        return Err(StoreError::Unauthorized {
            who: who(user),
            doing: format!("create the missing schema (`{statement}`)"),
            said: said.to_owned(),
            hint: "have an administrator create it (`bar-ingest schema` prints the CQL) and \
                   set database.manage_schema = false, or grant the role CREATE"
                .into(),
        });
    }
    Err(StoreError::Schema {
        statement: statement.to_owned(),
        source: Box::new(err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn ddl_is_generated_from_the_column_lists() {
        let mut settings = Settings::defaults(None).unwrap();
        settings.database.bars_table_options = "compaction = {'class': 'X'}".into();
        let s = Schema::from_config(&settings.database).statements();
        assert_eq!(
            s[0],
            "CREATE KEYSPACE IF NOT EXISTS market_data WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        assert_eq!(
            s[1],
            "CREATE TABLE IF NOT EXISTS market_data.bars_1min (symbol text, bucket text, \
             ts timestamp, open double, high double, low double, close double, volume double, \
             PRIMARY KEY ((symbol, bucket), ts)) WITH CLUSTERING ORDER BY (ts ASC) AND \
             compaction = {'class': 'X'}"
        );
        assert!(
            s[2].starts_with(
                "CREATE TABLE IF NOT EXISTS market_data.load_history (fingerprint text, \
                 symbol text, file_name text,"
            ) && s[2].ends_with(
                "finished_at timestamp, PRIMARY KEY ((fingerprint), symbol)) \
                 WITH CLUSTERING ORDER BY (symbol ASC)"
            ),
            "{}",
            s[2]
        );
        assert_eq!(
            s[3],
            "CREATE TABLE IF NOT EXISTS market_data.bars_1min_days (symbol text, bucket text, \
             day date, format_version int, bar_count int, first_ts timestamp, last_ts timestamp, \
             cell blob, PRIMARY KEY ((symbol, bucket), day)) WITH CLUSTERING ORDER BY (day ASC) \
             AND compression = {'class': 'ZstdCompressor'}"
        );
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn only_a_missing_day_cell_table_lets_start_up_go_on() {
        let settings = Settings::defaults(None).unwrap();
        let schema = Schema::from_config(&settings.database);
        let missing = |table: &str| SchemaProblem::TableMissing {
            table: table.into(),
        };
        assert!(!schema.blocks_start(&missing("bars_1min_days")));
        assert!(schema.blocks_start(&missing("bars_1min")));
        assert!(schema.blocks_start(&missing("load_history")));
    }

    #[test]
    fn only_missing_objects_are_created() {
        let settings = Settings::defaults(None).unwrap();
        let schema = Schema::from_config(&settings.database);
        let history_missing = [SchemaProblem::TableMissing {
            table: "load_history".into(),
        }];
        let s = schema.statements_for(&history_missing);
        assert_eq!(s.len(), 1);
        assert!(s[0].contains("market_data.load_history ("), "{s:?}");
        let all = schema.statements_for(&[SchemaProblem::KeyspaceMissing {
            keyspace: "market_data".into(),
        }]);
        assert_eq!(all, schema.statements());
    }
}
