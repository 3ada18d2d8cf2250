//! `bar-ingest migrate` against the real node: bar rows loaded by `load` with
//! `[storage] layout = "rows"` become day cells holding exactly the same bars, at the rows'
//! write timestamps; a second run changes nothing; an interrupted run resumes; a corrupted cell
//! fails verification naming its day; a newer cell is left alone.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bar_gen::GenSpec;
use bar_ingest::cell::{self, DayColumns};
use bar_ingest::store::Schema;
use chrono::NaiveDate;
use common::{Site, Stored};
use futures_util::TryStreamExt;
use scylla::client::session::Session;

const SYMBOLS: [&str; 3] = ["MIGA", "MIGB", "MIGC"];

/// Three symbols over three months (January 29 to March 4, 2024): nine partitions.
fn spec() -> GenSpec {
    GenSpec {
        symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
        start: day("2024-01-29"),
        end: day("2024-03-04"),
        seed: 11,
    }
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A keyspace whose bars were loaded as rows, its site and config.
struct Rows {
    session: Session,
    schema: Schema,
    site: Site,
    config: PathBuf,
}

async fn rows_keyspace(name: &str) -> Rows {
    let (session, schema, _) = common::fresh_schema(name).await;
    let site = Site::new(&schema.keyspace);
    let files = site.dir.path().join("files");
    bar_gen::write_all(&spec(), &files).unwrap();
    let config = site.config("m", "[storage]\nlayout = \"rows\"\n");
    let (code, stderr) = common::run_load(&config, &["--no-progress", path(&files)]);
    assert_eq!(code, 0, "{stderr}");
    Rows {
        session,
        schema,
        site,
        config,
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `bar-ingest migrate ARGS`: (exit code, stdout, stderr).
fn migrate(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(config)
        .arg("migrate")
        .args(args)
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .output()
        .expect("run migrate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One stored day cell: its bytes and its write timestamp.
type Cells = BTreeMap<(String, NaiveDate), (Vec<u8>, i64)>;

/// Every day cell of the keyspace.
async fn all_cells(session: &Session, schema: &Schema) -> Cells {
    let cql = format!(
        "SELECT symbol, day, cell, WRITETIME(cell) FROM {}",
        schema.days()
    );
    session
        .query_iter(cql, ())
        .await
        .unwrap()
        .rows_stream::<(String, NaiveDate, Vec<u8>, i64)>()
        .unwrap()
        .map_ok(|(s, d, c, w)| ((s, d), (c, w)))
        .try_collect()
        .await
        .unwrap()
}

/// The bars the cells hold, as the tests compare them, sorted by symbol and time.
fn cell_bars(cells: &Cells) -> Vec<Stored> {
    let mut out = Vec::new();
    for ((symbol, _), (bytes, _)) in cells {
        let mut c = DayColumns::default();
        cell::decode_into(bytes, &mut c).unwrap();
        for i in 0..c.len() {
            out.push((
                symbol.clone(),
                c.times[i],
                c.open[i],
                c.high[i],
                c.low[i],
                c.close[i],
                c.volume[i],
            ));
        }
    }
    common::sort_bars(&mut out);
    out
}

/// The newest write timestamp of each (symbol, exchange-local day) of the bars table.
async fn row_write_times(session: &Session, schema: &Schema) -> BTreeMap<(String, NaiveDate), i64> {
    let tz = chrono_tz::America::New_York;
    let cql = format!("SELECT symbol, ts, WRITETIME(close) FROM {}", schema.bars());
    let rows: Vec<(String, scylla::value::CqlTimestamp, i64)> = session
        .query_iter(cql, ())
        .await
        .unwrap()
        .rows_stream()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for (s, ts, w) in rows {
        let d = bar_ingest::exchange_time::local_date(tz, ts.0);
        let e = out.entry((s, d)).or_insert(i64::MIN);
        *e = (*e).max(w);
    }
    out
}

fn bits(bars: &[Stored]) -> Vec<(String, i64, [u64; 5])> {
    bars.iter()
        .map(|b| {
            let v = [b.2, b.3, b.4, b.5, b.6].map(f64::to_bits);
            (b.0.clone(), b.1, v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn all_symbols_migrate_exactly_at_the_rows_timestamps_and_a_second_run_changes_nothing() {
    let r = rows_keyspace("mig_all").await;
    let rows = common::all_bars(&r.session, &r.schema).await;
    assert!(rows.len() > 30_000, "{} rows", rows.len());

    let (code, out, err) = migrate(&r.config, &["--all"]);
    assert_eq!(code, 0, "{out}{err}");
    let summary = format!(
        "migrated and verified: 9 partitions (9 selected, 0 already done), 75 days, {} bars",
        rows.len()
    );
    assert!(out.starts_with(&summary), "{out}");

    let cells = all_cells(&r.session, &r.schema).await;
    assert_eq!(cells.len(), 75);
    assert_eq!(
        bits(&cell_bars(&cells)),
        bits(&rows),
        "the cells hold the rows' bars"
    );
    let written: BTreeMap<_, _> = cells.iter().map(|(k, (_, w))| (k.clone(), *w)).collect();
    assert_eq!(written, row_write_times(&r.session, &r.schema).await);

    let (code, out, err) = migrate(&r.config, &["--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("migrated and verified: 0 partitions (9 selected, 9 already done)"),
        "{out}"
    );
    let (code, out, err) = migrate(&r.config, &["--restart", "--all", "--concurrency", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&summary), "{out}");
    assert_eq!(
        all_cells(&r.session, &r.schema).await,
        cells,
        "nothing changed"
    );

    let (code, out, err) = migrate(&r.config, &["--verify-only", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("verified: 9 partitions"), "{out}");
    common::drop_keyspace(&r.session, &r.schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn some_symbols_over_a_range_of_days_and_an_interrupted_run_resumes() {
    let r = rows_keyspace("mig_some").await;
    let (code, out, err) = migrate(
        &r.config,
        &["MIGB", "--from", "2024-02-10", "--to", "2024-02-20"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let cells = all_cells(&r.session, &r.schema).await;
    let days: Vec<_> = cells.keys().cloned().collect();
    let expected: Vec<_> = [
        "2024-02-12",
        "2024-02-13",
        "2024-02-14",
        "2024-02-15",
        "2024-02-16",
        "2024-02-20",
    ]
    .iter()
    .map(|d| ("MIGB".to_string(), day(d)))
    .collect();
    assert_eq!(days, expected, "only MIGB's trading days in the range");
    assert!(
        out.starts_with("migrated and verified: 1 partitions (1 selected, 0 already done), 6 days"),
        "{out}"
    );

    // A month only partly converted is not recorded: MIGB's February is done again in full.
    let list = r.site.dir.path().join("symbols.txt");
    std::fs::write(&list, "# two of them\nMIGB\nmigc\n").unwrap();
    let (code, out, err) = migrate(
        &r.config,
        &["--symbols-file", path(&list), "--stop-after", "2"],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("interrupted; run the same command again to resume"),
        "{err}"
    );
    assert!(
        out.starts_with("migrated and verified: 2 partitions (6 selected, 0 already done)"),
        "{out}"
    );
    let (code, out, err) = migrate(&r.config, &["--symbols-file", path(&list)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("migrated and verified: 4 partitions (6 selected, 2 already done)"),
        "{out}"
    );

    let cells = all_cells(&r.session, &r.schema).await;
    assert!(cells.keys().all(|(s, _)| s != "MIGA"));
    let mut rows = common::all_bars(&r.session, &r.schema).await;
    rows.retain(|b| b.0 != "MIGA");
    assert_eq!(bits(&cell_bars(&cells)), bits(&rows));
    common::drop_keyspace(&r.session, &r.schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_cell_fails_verification_naming_its_day_and_bar() {
    let r = rows_keyspace("mig_bad").await;
    let (code, out, err) = migrate(&r.config, &["MIGA", "MIGC"]);
    assert_eq!(code, 0, "{out}{err}");
    let key = ("MIGC".to_string(), day("2024-02-14"));
    let cells = all_cells(&r.session, &r.schema).await;
    let (bytes, written) = cells[&key].clone();

    // Bit rot in the last byte (the last bar's volume), at the same write timestamp: the cell
    // stays decodable; between equal timestamps the node keeps the greater value, this one.
    let mut bad = bytes.clone();
    let last = bad.last_mut().unwrap();
    assert!(*last < 0x7f, "the last varint byte can grow");
    *last += 1;
    r.session
        .query_unpaged(
            format!(
                "INSERT INTO {} (symbol, bucket, day, cell) VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
                r.schema.days()
            ),
            (&key.0, "2024-02", key.1, &bad, written),
        )
        .await
        .unwrap();
    assert_eq!(all_cells(&r.session, &r.schema).await[&key].0, bad);

    let (code, out, err) = migrate(&r.config, &["--verify-only", "MIGC"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("verification failed: MIGC 2024-02-14: bar ")
            && err.contains(" differs: rows have 2024-02-1")
            && err.contains(", the cell has 2024-02-1"),
        "{err}"
    );
    let (code, _, err) = migrate(&r.config, &["--verify-only", "MIGA"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = migrate(&r.config, &["--verify-only", "MIGB"]);
    assert_eq!(code, 1, "MIGB was never migrated: {err}");
    // Partitions are verified concurrently: the first mismatch reported may be any of its days.
    assert!(
        err.contains("verification failed: MIGB 2024-") && err.contains(": no cell, but "),
        "{err}"
    );
    common::drop_keyspace(&r.session, &r.schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_cell_is_not_overwritten() {
    let r = rows_keyspace("mig_new").await;
    let key = ("MIGA".to_string(), day("2024-02-01"));
    let rows_written = row_write_times(&r.session, &r.schema).await[&key];
    // A later delivery of that day, written as a cell (one bar) after the rows.
    let mut one = DayColumns::default();
    one.push(1_706_797_800_000, 1.0, 2.0, 0.5, 1.5, 42.0);
    let newer = cell::encode(one.view()).unwrap();
    r.session
        .query_unpaged(
            format!(
                "INSERT INTO {} (symbol, bucket, day, format_version, bar_count, cell) \
                 VALUES (?, ?, ?, 1, 1, ?) USING TIMESTAMP ?",
                r.schema.days()
            ),
            (&key.0, "2024-02", key.1, &newer, rows_written + 1),
        )
        .await
        .unwrap();

    let (code, out, err) = migrate(&r.config, &["MIGA"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("; 1 days left as they were (a newer cell)"),
        "{out}"
    );
    let cells = all_cells(&r.session, &r.schema).await;
    assert_eq!(
        cells[&key],
        (newer, rows_written + 1),
        "the newer cell stays"
    );
    assert_eq!(cells.len(), 25, "every other day of MIGA migrated");
    common::drop_keyspace(&r.session, &r.schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_between_partitions_with_exit_3_and_the_next_run_finishes() {
    use std::io::{BufRead, BufReader};
    let r = rows_keyspace("mig_int").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(&r.config)
        .args(["migrate", "--all", "--concurrency", "1"])
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("migrating"), "{line}");
    common::signal(&child, "INT");
    let status = child.wait().unwrap();
    let (mut rest, mut first) = (String::new(), String::new());
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut first).unwrap();
    assert_eq!(status.code(), Some(3), "{rest}");
    assert!(
        rest.contains("interrupted; run the same command again to resume"),
        "{rest}"
    );
    // The partitions finished before the signal took effect are recorded, and only those.
    let done: u64 = first
        .strip_prefix("migrated and verified: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    assert!(done < 9, "{first}");

    let (code, out, err) = migrate(&r.config, &["--all"]);
    assert_eq!(code, 0, "{out}{err}");
    let resumed = format!(
        "migrated and verified: {} partitions (9 selected, {done} already done)",
        9 - done
    );
    assert!(out.starts_with(&resumed), "{out}");
    let cells = all_cells(&r.session, &r.schema).await;
    let rows = common::all_bars(&r.session, &r.schema).await;
    assert_eq!(bits(&cell_bars(&cells)), bits(&rows));
    common::drop_keyspace(&r.session, &r.schema).await;
}

/// A later delivery written as cells covered a day with none of its bars: its tombstone
/// shadows that day's cells, so the migrated cell (written at the older rows' timestamp) is
/// gone. The verifier reported "no cell, but N bars in rows" and the run failed; the day was
/// emptied on purpose (replace, not merge), and the run says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_day_a_later_cell_delivery_emptied_is_not_a_missing_cell() {
    let r = rows_keyspace("mig_empt").await;
    // MIGA over Thursday 1 to Monday 5 February, with no bar on Friday the 2nd.
    let later = "2024-02-01 09:30:00,10,11,9,10.5,100\n2024-02-05 09:30:00,20,21,19,20.5,200\n";
    let dir = r.site.dir.path().join("later");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("MIGA_full_1min_adjsplit.txt");
    std::fs::write(&file, later).unwrap();
    let days_config = r.site.config("d", "[storage]\nlayout = \"days\"\n");
    let (code, stderr) = common::run_load(&days_config, &["--no-progress", path(&file)]);
    assert_eq!(code, 0, "{stderr}");

    let (code, out, err) = migrate(&r.config, &["MIGA"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("; 2 days left as they were (a newer cell)")
            && out.contains("; 1 days emptied by a later delivery"),
        "{out}"
    );
    let cells = all_cells(&r.session, &r.schema).await;
    let miga: Vec<NaiveDate> = cells
        .keys()
        .filter(|k| k.0 == "MIGA")
        .map(|k| k.1)
        .collect();
    assert_eq!(miga.len(), 24, "25 days of rows, one emptied");
    assert!(!miga.contains(&day("2024-02-02")));
    let (code, out, err) = migrate(&r.config, &["--verify-only", "MIGA"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("; 1 days emptied by a later delivery"),
        "{out}"
    );
    // A cell deleted by hand, no delivery covering its day: still a failure.
    r.session
        .query_unpaged(
            format!(
                "DELETE FROM {} WHERE symbol = 'MIGA' AND bucket = '2024-02' AND day = ?",
                r.schema.days()
            ),
            (day("2024-02-06"),),
        )
        .await
        .unwrap();
    let (code, out, err) = migrate(&r.config, &["--verify-only", "MIGA"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("MIGA 2024-02-06: no cell, but")
            && err.contains("no delivery recorded after the rows covers the day"),
        "{err}"
    );
    common::drop_keyspace(&r.session, &r.schema).await;
}
