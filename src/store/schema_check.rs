//! Compares the keyspace and tables in the cluster with the columns the code needs, by reading
//! `system_schema` only (no DDL, no permission beyond logging in).

use std::collections::BTreeMap;
use std::fmt;

use scylla::client::session::Session;

use super::StoreError;
use super::columns::{Column, KeyRole, TableSpec};

/// One way the cluster's schema falls short of what the code reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    KeyspaceMissing {
        keyspace: String,
    },
    /// `table` is the name within the keyspace.
    TableMissing {
        table: String,
    },
    ColumnMissing {
        table: String,
        column: String,
        cql_type: String,
    },
    WrongType {
        table: String,
        column: String,
        expected: String,
        found: String,
    },
    /// A column's place in the primary key (or a clustering order) is not the expected one.
    WrongKey {
        table: String,
        column: String,
        expected: String,
        found: String,
    },
}

impl SchemaProblem {
    /// A keyspace or table that is not there at all (DDL can create it).
    pub fn is_missing_object(&self) -> bool {
        matches!(
            self,
            Self::KeyspaceMissing { .. } | Self::TableMissing { .. }
        )
    }
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyspaceMissing { keyspace } => write!(f, "keyspace `{keyspace}` does not exist"),
            Self::TableMissing { table } => write!(f, "table `{table}` does not exist"),
            Self::ColumnMissing {
                table,
                column,
                cql_type,
            } => write!(f, "table `{table}` has no column `{column}` ({cql_type})"),
            Self::WrongType {
                table,
                column,
                expected,
                found,
            } => write!(
                f,
                "column `{table}.{column}` is {found}, bar-ingest needs {expected}"
            ),
            Self::WrongKey {
                table,
                column,
                expected,
                found,
            } => write!(
                f,
                "column `{table}.{column}` is {found} in the primary key, bar-ingest needs {expected}"
            ),
        }
    }
}

/// A column as `system_schema.columns` describes it.
#[derive(Debug, Clone, scylla::DeserializeRow)]
struct FoundColumn {
    column_name: String,
    #[scylla(rename = "type")]
    cql_type: String,
    kind: String,
    position: i32,
    clustering_order: String,
}

impl FoundColumn {
    /// Its place in the key, as words.
    fn role(&self) -> String {
        match self.kind.as_str() {
            "partition_key" => format!("partition key column {}", self.position + 1),
            "clustering" => format!(
                "clustering column {} ({})",
                self.position + 1,
                self.clustering_order
            ),
            other => format!("a {other} column"),
        }
    }
}

fn expected_role(role: KeyRole) -> String {
    match role {
        KeyRole::Partition(p) => format!("partition key column {}", p + 1),
        KeyRole::Clustering(p) => format!("clustering column {} (asc)", p + 1),
        KeyRole::Regular => "a regular column".into(),
    }
}

/// Every difference between the cluster's `keyspace` and `tables`; empty when all is there.
pub(super) async fn compare_schema(
    session: &Session,
    keyspace_name: &str,
    tables: &[TableSpec<'_>],
) -> Result<Vec<SchemaProblem>, StoreError> {
    // Unquoted CQL names are stored in lower case.
    let keyspace = keyspace_name.to_ascii_lowercase();
    let query = "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?";
    let found = read(session, query, (keyspace.as_str(),)).await?;
    if found.rows_num() == 0 {
        return Ok(vec![SchemaProblem::KeyspaceMissing {
            keyspace: keyspace_name.to_owned(),
        }]);
    }
    let mut problems = Vec::new();
    for table in tables {
        let columns = table_columns(session, &keyspace, table.name).await?;
        problems.extend(compare(table, &columns));
    }
    Ok(problems)
}

async fn read(
    session: &Session,
    query: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Result<scylla::response::query_result::QueryRowsResult, StoreError> {
    let schema_read = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::SchemaRead {
        statement: query.to_owned(),
        source: e,
    };
    session
        .query_unpaged(query, values)
        .await
        .map_err(|e| schema_read(Box::new(e)))?
        .into_rows_result()
        .map_err(|e| schema_read(Box::new(e)))
}

/// The columns of `keyspace.table` by name (empty: no such table).
async fn table_columns(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<BTreeMap<String, FoundColumn>, StoreError> {
    let query = "SELECT column_name, type, kind, position, clustering_order \
                 FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?";
    let rows = read(
        session,
        query,
        (keyspace, table.to_ascii_lowercase().as_str()),
    )
    .await?;
    let typed = rows
        .rows::<FoundColumn>()
        .map_err(|e| StoreError::SchemaRead {
            statement: query.to_owned(),
            source: Box::new(e),
        })?;
    let mut out = BTreeMap::new();
    for row in typed {
        let row = row.map_err(|e| StoreError::SchemaRead {
            statement: query.to_owned(),
            source: Box::new(e),
        })?;
        out.insert(row.column_name.clone(), row);
    }
    Ok(out)
}

/// What `found` lacks or has differently from `table`'s columns; key columns the code does not
/// know are a problem too (its writes would not name them).
fn compare(table: &TableSpec<'_>, found: &BTreeMap<String, FoundColumn>) -> Vec<SchemaProblem> {
    let name = || table.name.to_owned();
    if found.is_empty() {
        return vec![SchemaProblem::TableMissing { table: name() }];
    }
    let mut problems = Vec::new();
    for column in table.columns {
        let Some(f) = found.get(column.name) else {
            problems.push(SchemaProblem::ColumnMissing {
                table: name(),
                column: column.name.into(),
                cql_type: column.cql_type.into(),
            });
            continue;
        };
        if !column.accepts(&f.cql_type) {
            problems.push(SchemaProblem::WrongType {
                table: name(),
                column: column.name.into(),
                expected: match column.also_accepted {
                    Some(other) => format!("{} (or {other})", column.cql_type),
                    None => column.cql_type.into(),
                },
                found: f.cql_type.clone(),
            });
        }
        if !same_role(column, f) {
            problems.push(SchemaProblem::WrongKey {
                table: name(),
                column: column.name.into(),
                expected: expected_role(column.role),
                found: f.role(),
            });
        }
    }
    for f in found.values() {
        let known = table.columns.iter().any(|c| c.name == f.column_name);
        if !known && matches!(f.kind.as_str(), "partition_key" | "clustering") {
            problems.push(SchemaProblem::WrongKey {
                table: name(),
                column: f.column_name.clone(),
                expected: "not a key column (bar-ingest does not know it)".into(),
                found: f.role(),
            });
        }
    }
    problems
}

fn same_role(column: &Column, f: &FoundColumn) -> bool {
    match column.role {
        KeyRole::Partition(p) => f.kind == "partition_key" && f.position == p,
        KeyRole::Clustering(p) => {
            f.kind == "clustering" && f.position == p && f.clustering_order == "asc"
        }
        KeyRole::Regular => f.kind == "regular",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::columns::BARS_COLUMNS;

    fn found(name: &str, ty: &str, kind: &str, position: i32, order: &str) -> FoundColumn {
        FoundColumn {
            column_name: name.into(),
            cql_type: ty.into(),
            kind: kind.into(),
            position,
            clustering_order: order.into(),
        }
    }

    fn bars_as_created() -> BTreeMap<String, FoundColumn> {
        let mut m = BTreeMap::new();
        for f in [
            found("symbol", "text", "partition_key", 0, "none"),
            found("bucket", "text", "partition_key", 1, "none"),
            found("ts", "timestamp", "clustering", 0, "asc"),
            found("open", "double", "regular", -1, "none"),
            found("high", "double", "regular", -1, "none"),
            found("low", "double", "regular", -1, "none"),
            found("close", "double", "regular", -1, "none"),
            found("volume", "double", "regular", -1, "none"),
        ] {
            m.insert(f.column_name.clone(), f);
        }
        m
    }

    const BARS: TableSpec<'static> = TableSpec {
        name: "bars_1min",
        columns: BARS_COLUMNS,
        options: "",
    };

    #[test]
    fn the_table_as_created_has_no_problem_and_an_extra_regular_column_is_fine() {
        let mut t = bars_as_created();
        assert_eq!(compare(&BARS, &t), vec![]);
        t.insert("note".into(), found("note", "text", "regular", -1, "none"));
        assert_eq!(compare(&BARS, &t), vec![]);
        assert_eq!(
            compare(&BARS, &BTreeMap::new()),
            vec![SchemaProblem::TableMissing {
                table: "bars_1min".into()
            }]
        );
    }

    /// A table created before fractional volumes were kept has `volume bigint`: it still
    /// passes; another type does not.
    #[test]
    fn the_volume_column_may_be_double_or_bigint() {
        let mut t = bars_as_created();
        t.insert(
            "volume".into(),
            found("volume", "bigint", "regular", -1, "none"),
        );
        assert_eq!(compare(&BARS, &t), vec![]);
        t.insert(
            "volume".into(),
            found("volume", "int", "regular", -1, "none"),
        );
        let shown: Vec<String> = compare(&BARS, &t).iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            ["column `bars_1min.volume` is int, bar-ingest needs double (or bigint)"]
        );
    }

    #[test]
    fn missing_columns_wrong_types_and_keys_are_named() {
        let mut t = bars_as_created();
        t.remove("volume");
        t.insert("open".into(), found("open", "float", "regular", -1, "none"));
        t.insert(
            "ts".into(),
            found("ts", "timestamp", "clustering", 0, "desc"),
        );
        t.insert("x".into(), found("x", "int", "clustering", 1, "asc"));
        let shown: Vec<String> = compare(&BARS, &t).iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "column `bars_1min.ts` is clustering column 1 (desc) in the primary key, \
                 bar-ingest needs clustering column 1 (asc)",
                "column `bars_1min.open` is float, bar-ingest needs double",
                "table `bars_1min` has no column `volume` (double)",
                "column `bars_1min.x` is clustering column 2 (asc) in the primary key, \
                 bar-ingest needs not a key column (bar-ingest does not know it)",
            ]
        );
    }
}
