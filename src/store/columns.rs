//! The columns the code reads and writes, table by table, with their types and places in the
//! primary key: what the DDL creates and what the schema check expects.

/// Where a column sits in the primary key (the number is its position there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRole {
    Partition(i32),
    /// Clustering, ascending.
    Clustering(i32),
    Regular,
}

/// A column the code reads or writes, with its type as `system_schema.columns` spells it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub name: &'static str,
    /// The type a new table gets.
    pub cql_type: &'static str,
    /// Another type an existing table may have, which the code also reads and writes.
    pub also_accepted: Option<&'static str>,
    pub role: KeyRole,
}

const fn col(name: &'static str, cql_type: &'static str, role: KeyRole) -> Column {
    Column {
        name,
        cql_type,
        also_accepted: None,
        role,
    }
}

impl Column {
    /// Whether `found`, a type as `system_schema.columns` spells it, is one the code handles.
    pub fn accepts(&self, found: &str) -> bool {
        found == self.cql_type || self.also_accepted == Some(found)
    }
}

/// The bars table: `PRIMARY KEY ((symbol, bucket), ts)`, `ts` ascending.
pub(crate) const BARS_COLUMNS: &[Column] = &[
    col("symbol", "text", KeyRole::Partition(0)),
    col("bucket", "text", KeyRole::Partition(1)),
    col("ts", "timestamp", KeyRole::Clustering(0)),
    col("open", "double", KeyRole::Regular),
    col("high", "double", KeyRole::Regular),
    col("low", "double", KeyRole::Regular),
    col("close", "double", KeyRole::Regular),
    // Fractional volumes are kept: `double`. A table created before that has `bigint`, and
    // keeps working for whole volumes (a fractional one is rejected `fractional_volume`).
    Column {
        also_accepted: Some("bigint"),
        ..col("volume", "double", KeyRole::Regular)
    },
];

/// The day cells: `PRIMARY KEY ((symbol, bucket), day)`, `day` (the exchange-local date)
/// ascending, `bucket` its month `YYYY-MM` as in the bars table. `cell` is one day's bars in the
/// day-cell format (`crate::cell`, `docs/day-cell-format.md`); its format version, bar count and
/// first and last instants are plain columns too, so coverage and range planning read no blob.
pub(crate) const DAYS_COLUMNS: &[Column] = &[
    col("symbol", "text", KeyRole::Partition(0)),
    col("bucket", "text", KeyRole::Partition(1)),
    col("day", "date", KeyRole::Clustering(0)),
    col("format_version", "int", KeyRole::Regular),
    col("bar_count", "int", KeyRole::Regular),
    col("first_ts", "timestamp", KeyRole::Regular),
    col("last_ts", "timestamp", KeyRole::Regular),
    col("cell", "blob", KeyRole::Regular),
];

/// The load history: one row per delivery identity, `PRIMARY KEY (fingerprint, symbol)`: the
/// same content is already loaded only if it was loaded for the same symbol (`*` for a
/// delivery whose records name their own symbols).
pub(crate) const HISTORY_COLUMNS: &[Column] = &[
    col("fingerprint", "text", KeyRole::Partition(0)),
    col("symbol", "text", KeyRole::Clustering(0)),
    col("file_name", "text", KeyRole::Regular),
    col("size_bytes", "bigint", KeyRole::Regular),
    col("rows_in", "bigint", KeyRole::Regular),
    col("rows_written", "bigint", KeyRole::Regular),
    col("rows_rejected", "bigint", KeyRole::Regular),
    col("months", "set<text>", KeyRole::Regular),
    col("first_bar", "timestamp", KeyRole::Regular),
    col("last_bar", "timestamp", KeyRole::Regular),
    col("outcome", "text", KeyRole::Regular),
    col("error", "text", KeyRole::Regular),
    col("instance", "text", KeyRole::Regular),
    col("write_timestamp", "bigint", KeyRole::Regular),
    col("started_at", "timestamp", KeyRole::Regular),
    col("finished_at", "timestamp", KeyRole::Regular),
];

/// One table of the schema: its name in the keyspace, its columns, extra options.
pub(crate) struct TableSpec<'a> {
    pub name: &'a str,
    pub columns: &'static [Column],
    pub options: &'a str,
}
