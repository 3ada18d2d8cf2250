//! The store against the real node: schema creation, prepared insert, typed read-back.

mod common;

use bar_ingest::model::{Bar, Bucket, Symbol};
use bar_ingest::store::{self, BarRow, BarStatements, Schema};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use futures_util::TryStreamExt;
use scylla::client::session::Session;

/// UTC milliseconds of an exchange-local (New York) wall time that exists.
fn ny_millis(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> i64 {
    let local = NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(hh, mm, 0)
        .unwrap();
    New_York
        .from_local_datetime(&local)
        .single()
        .expect("unambiguous local time")
        .timestamp_millis()
}

/// Every bar of one partition, typed, in clustering order: a plain query, independent of the
/// loader and of `fetch`.
async fn partition(session: &Session, schema: &Schema, symbol: &str, bucket: &str) -> Vec<Bar> {
    session
        .query_iter(
            format!(
                "SELECT ts, open, high, low, close, volume FROM {} WHERE symbol = ? AND bucket = ?",
                schema.bars()
            ),
            (symbol, bucket),
        )
        .await
        .expect("query the partition")
        .rows_stream::<BarRow>()
        .expect("typed rows")
        .map_ok(Bar::from)
        .try_collect()
        .await
        .expect("read the partition")
}

#[tokio::test]
async fn bars_round_trip_exactly_through_the_prepared_insert() {
    let (session, schema, _settings) = common::fresh_schema("roundtrip").await;
    let statements = BarStatements::prepare(&session, &schema).await.unwrap();
    let symbol = Symbol::new("BRK.B").unwrap();

    // Winter (EST, UTC-5) and summer (EDT, UTC-4) bars, awkward doubles, a fractional, a zero
    // and the largest volume.
    let jan = vec![
        Bar {
            ts_millis: ny_millis(2005, 1, 3, 8, 0),
            open: 0.9911,
            high: 0.9911,
            low: 0.9839,
            close: 0.9839,
            volume: 19209.0,
        },
        Bar {
            ts_millis: ny_millis(2005, 1, 3, 8, 1),
            open: 0.1 + 0.2,
            high: 1e-7 + 0.5,
            low: 1e-7,
            close: 0.3,
            // Polygon's six decimals.
            volume: 1234.567891,
        },
        Bar {
            ts_millis: ny_millis(2005, 1, 31, 19, 59),
            open: 12345.678901234567,
            high: 99999.99,
            low: 0.0001,
            close: 5.5,
            volume: bar_ingest::model::MAX_VOLUME,
        },
    ];
    let jul = vec![Bar {
        ts_millis: ny_millis(2005, 7, 1, 9, 30),
        open: 1.0,
        high: 2.0,
        low: 0.5,
        close: 1.5,
        volume: 0.0,
    }];

    for bar in jan.iter().chain(&jul) {
        let local_date = chrono::DateTime::from_timestamp_millis(bar.ts_millis)
            .unwrap()
            .with_timezone(&New_York)
            .date_naive();
        let bucket = Bucket::of_local_date(local_date);
        session
            .execute_unpaged(
                &statements.insert,
                BarStatements::insert_values(
                    &symbol,
                    &bucket.to_string(),
                    bar,
                    statements.volume_column,
                ),
            )
            .await
            .unwrap();
    }

    let got_jan = partition(&session, &schema, "BRK.B", "2005-01").await;
    let got_jul = partition(&session, &schema, "BRK.B", "2005-07").await;
    // Exact equality: same f64 bits, same instants, same order.
    assert_eq!(got_jan, jan);
    assert_eq!(got_jul, jul);
    // The instants are the UTC ones: 08:00 EST is 13:00 UTC, 09:30 EDT is 13:30 UTC.
    assert_eq!(got_jan[0].ts_millis, 1_104_757_200_000);
    assert_eq!(got_jul[0].ts_millis, 1_120_224_600_000);
    // Nothing leaked into a neighbouring month.
    let feb = partition(&session, &schema, "BRK.B", "2005-02").await;
    assert!(feb.is_empty(), "unexpected rows in 2005-02: {feb:?}");

    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test]
async fn schema_creation_is_idempotent_and_has_the_designed_key() {
    let (session, schema, _settings) = common::fresh_schema("schema").await;
    // A second run changes nothing and does not fail.
    store::init_schema(&session, &schema).await.unwrap();

    let rows = session
        .query_unpaged(
            "SELECT column_name, kind, position, type FROM system_schema.columns \
             WHERE keyspace_name = ? AND table_name = ?",
            (schema.keyspace.as_str(), schema.bars_table.as_str()),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let mut columns: Vec<(String, String, i32, String)> = rows
        .rows::<(String, String, i32, String)>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    columns.sort();
    let expect = |name: &str, kind: &str, pos: i32, ty: &str| {
        (name.to_owned(), kind.to_owned(), pos, ty.to_owned())
    };
    assert_eq!(
        columns,
        vec![
            expect("bucket", "partition_key", 1, "text"),
            expect("close", "regular", -1, "double"),
            expect("high", "regular", -1, "double"),
            expect("low", "regular", -1, "double"),
            expect("open", "regular", -1, "double"),
            expect("symbol", "partition_key", 0, "text"),
            expect("ts", "clustering", 0, "timestamp"),
            expect("volume", "regular", -1, "double"),
        ]
    );

    let history: Vec<(String,)> = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
            (schema.keyspace.as_str(), schema.history_table.as_str()),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(String,)>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(history.iter().any(|(c,)| c == "fingerprint"), "{history:?}");
    assert!(
        history.iter().any(|(c,)| c == "rows_rejected"),
        "{history:?}"
    );

    common::drop_keyspace(&session, &schema).await;
}

/// A bars table created before volumes became `double` (`volume bigint`): the prepared insert
/// says so, whole volumes are written as integers and read back as f64, and a fractional one
/// (which validation rejects before any write) is refused by the driver, never truncated.
#[tokio::test]
async fn an_old_bigint_volume_column_takes_whole_volumes_and_refuses_fractions() {
    let (session, mut schema, _settings) = common::fresh_schema("oldbars").await;
    schema.bars_table = "bars_old".into();
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {} (symbol text, bucket text, ts timestamp, open double, \
                 high double, low double, close double, volume bigint, \
                 PRIMARY KEY ((symbol, bucket), ts)) WITH CLUSTERING ORDER BY (ts ASC)",
                schema.bars()
            ),
            (),
        )
        .await
        .unwrap();
    assert!(
        store::check_schema(&session, &schema)
            .await
            .unwrap()
            .is_empty()
    );
    let statements = BarStatements::prepare(&session, &schema).await.unwrap();
    assert_eq!(
        statements.volume_column,
        bar_ingest::model::VolumeColumn::BigInt
    );
    let symbol = Symbol::new("OLD").unwrap();
    let whole = Bar {
        ts_millis: ny_millis(2026, 2, 23, 9, 30),
        open: 1.0,
        high: 2.0,
        low: 0.5,
        close: 1.5,
        volume: bar_ingest::model::MAX_VOLUME,
    };
    let insert = |bar: Bar| {
        let session = &session;
        let statements = &statements;
        let symbol = &symbol;
        async move {
            session
                .execute_unpaged(
                    &statements.insert,
                    BarStatements::insert_values(symbol, "2026-02", &bar, statements.volume_column),
                )
                .await
        }
    };
    insert(whole).await.unwrap();
    let fractional = Bar {
        ts_millis: whole.ts_millis + 60_000,
        volume: 12.5,
        ..whole
    };
    assert!(
        insert(fractional).await.is_err(),
        "a fraction is not bound to a bigint"
    );
    assert_eq!(
        partition(&session, &schema, "OLD", "2026-02").await,
        [whole]
    );
    common::drop_keyspace(&session, &schema).await;
}

/// The day-cell table: created with the schema, keyed as designed; a cell written with its plain
/// columns (format version, bar count, first and last instants) reads back byte for byte and
/// decodes to the day's bars, bit for bit.
#[tokio::test]
async fn a_day_cell_round_trips_through_the_day_table() {
    use bar_ingest::cell::{self, DayColumns};
    use chrono::{DateTime, Utc};

    let (session, schema, _settings) = common::fresh_schema("daycell").await;
    let mut columns: Vec<(String, String, i32, String)> = session
        .query_unpaged(
            "SELECT column_name, kind, position, type FROM system_schema.columns \
             WHERE keyspace_name = ? AND table_name = ?",
            (schema.keyspace.as_str(), schema.days_table.as_str()),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(String, String, i32, String)>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    columns.sort();
    let expect = |name: &str, kind: &str, pos: i32, ty: &str| {
        (name.to_owned(), kind.to_owned(), pos, ty.to_owned())
    };
    assert_eq!(
        columns,
        vec![
            expect("bar_count", "regular", -1, "int"),
            expect("bucket", "partition_key", 1, "text"),
            expect("cell", "regular", -1, "blob"),
            expect("day", "clustering", 0, "date"),
            expect("first_ts", "regular", -1, "timestamp"),
            expect("format_version", "regular", -1, "int"),
            expect("last_ts", "regular", -1, "timestamp"),
            expect("symbol", "partition_key", 0, "text"),
        ]
    );

    // A regular session with a missing minute, 4-decimal prices, Polygon-style volumes.
    let open = ny_millis(2024, 12, 2, 9, 30);
    let mut day = DayColumns::default();
    for i in 0..390i64 {
        let p = 187.0 + (i * 37 % 101) as f64 / 1e4;
        let volume = (1_000_000_000.0 + (i * 7919) as f64) / 1e6;
        let t = open + (i + i64::from(i >= 200)) * 60_000;
        day.push(t, p, p + 0.01, p - 0.01, p + 0.005, volume);
    }
    let bytes = cell::encode(day.view()).unwrap();
    let header = cell::read_header(&bytes).unwrap();
    let instant = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    let date = NaiveDate::from_ymd_opt(2024, 12, 2).unwrap();
    session
        .query_unpaged(
            format!(
                "INSERT INTO {} (symbol, bucket, day, format_version, bar_count, first_ts, \
                 last_ts, cell) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                schema.days()
            ),
            (
                "AAPL",
                "2024-12",
                date,
                i32::from(header.version),
                i32::try_from(header.bars).unwrap(),
                instant(header.first_millis),
                instant(header.last_millis),
                bytes.clone(),
            ),
        )
        .await
        .unwrap();

    type DayRow = (NaiveDate, i32, i32, DateTime<Utc>, DateTime<Utc>, Vec<u8>);
    let rows: Vec<DayRow> = session
        .query_unpaged(
            format!(
                "SELECT day, format_version, bar_count, first_ts, last_ts, cell FROM {} \
                 WHERE symbol = ? AND bucket = ?",
                schema.days()
            ),
            ("AAPL", "2024-12"),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<DayRow>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (got_day, version, bars, first, last, got) = &rows[0];
    assert_eq!(*got_day, date);
    assert_eq!((*version, *bars), (1, 390));
    assert_eq!(
        (first.timestamp_millis(), last.timestamp_millis()),
        (open, open + 390 * 60_000)
    );
    assert_eq!(*got, bytes, "the cell reads back byte for byte");
    let mut back = DayColumns::default();
    assert_eq!(cell::decode_into(got, &mut back), Ok(390));
    let bits = |c: &[f64]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(back.times, day.times);
    for (b, d) in [
        (&back.open, &day.open),
        (&back.high, &day.high),
        (&back.low, &day.low),
        (&back.close, &day.close),
        (&back.volume, &day.volume),
    ] {
        assert_eq!(bits(b), bits(d));
    }
    common::drop_keyspace(&session, &schema).await;
}

/// The day table's prepared statements: a cell written at T outranks one written earlier; the
/// range delete at T-1 shadows the older cells of the covered days and none written at T; the
/// plain columns come from the header. And the layout a keyspace resolves to: configured wins,
/// else `rows` for a keyspace with bar rows and no cells, else `days`.
#[tokio::test]
async fn day_statements_replace_days_and_the_layout_follows_what_the_keyspace_holds() {
    use bar_ingest::cell::{self, DayColumns};
    use bar_ingest::config::StorageLayout;
    use bar_ingest::store::{DayRow, DayStatements, resolve_layout};

    let (session, schema, _settings) = common::fresh_schema("daystmts").await;
    assert_eq!(
        resolve_layout(&session, &schema, None).await.unwrap(),
        StorageLayout::Days,
        "an empty keyspace is a new one"
    );
    let statements = DayStatements::prepare(&session, &schema).await.unwrap();
    let symbol = Symbol::new("MSFT").unwrap();
    let day_cell = |date: NaiveDate, price: f64| {
        let open = New_York
            .from_local_datetime(&date.and_hms_opt(9, 30, 0).unwrap())
            .unwrap()
            .timestamp_millis();
        let mut day = DayColumns::default();
        for i in 0..3i64 {
            day.push(open + i * 60_000, price, price, price, price, 100.0);
        }
        cell::encode(day.view()).unwrap()
    };
    let date = |d: u32| NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
    let write = |date: NaiveDate, cell: Vec<u8>, at: i64| {
        let (session, statements, symbol) = (&session, &statements, &symbol);
        async move {
            let header = cell::read_header(&cell).unwrap();
            let values = DayStatements::insert_values(symbol, "2024-03", date, &header, &cell, at);
            session
                .execute_unpaged(&statements.insert, values)
                .await
                .unwrap();
        }
    };
    // An older delivery covered the 4th to the 6th.
    for d in 4..=6 {
        write(date(d), day_cell(date(d), 1.0), 1_000).await;
    }
    // A newer one covers the 4th and the 5th with bars on the 4th only.
    write(date(4), day_cell(date(4), 2.0), 2_000).await;
    // A stale write of the older delivery (a retry) does not win.
    write(date(4), day_cell(date(4), 1.0), 1_000).await;
    session
        .execute_unpaged(
            &statements.delete_days,
            (1_999i64, "MSFT", "2024-03", date(4), date(5)),
        )
        .await
        .unwrap();
    let rows: Vec<DayRow> = session
        .execute_unpaged(&statements.select, ("MSFT", "2024-03", date(1), date(31)))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<DayRow>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let days: Vec<(NaiveDate, i32)> = rows.iter().map(|r| (r.day, r.bar_count)).collect();
    assert_eq!(days, vec![(date(4), 3), (date(6), 3)]);
    let mut decoded = DayColumns::default();
    cell::decode_into(&rows[0].cell, &mut decoded).unwrap();
    assert_eq!(decoded.close, vec![2.0; 3], "the newer delivery's day");
    assert_eq!(rows[0].first_ts.0, decoded.times[0]);
    assert_eq!(rows[0].last_ts.0, decoded.times[2]);
    assert_eq!(
        resolve_layout(&session, &schema, None).await.unwrap(),
        StorageLayout::Days,
        "a keyspace with cells is read as days"
    );
    common::drop_keyspace(&session, &schema).await;

    // A keyspace holding only bar rows keeps working as rows, unless configured otherwise.
    let (session, schema, _settings) = common::fresh_schema("rowsonly").await;
    session
        .query_unpaged(
            format!(
                "INSERT INTO {} (symbol, bucket, ts, open, high, low, close, volume) \
                 VALUES ('MSFT', '2024-03', 0, 1, 1, 1, 1, 1)",
                schema.bars()
            ),
            (),
        )
        .await
        .unwrap();
    assert_eq!(
        resolve_layout(&session, &schema, None).await.unwrap(),
        StorageLayout::Rows
    );
    assert_eq!(
        resolve_layout(&session, &schema, Some(StorageLayout::Both))
            .await
            .unwrap(),
        StorageLayout::Both
    );
    common::drop_keyspace(&session, &schema).await;
}
