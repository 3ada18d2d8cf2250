//! Volumes as delivered and bar-end stamps, through `bar-ingest load` and `fetch` against the
//! real node: a Polygon day file with six-decimal volumes (Massive since 2026-02-23) is stored
//! and read back exactly (by the driver, by `fetch` and by cqlsh); a keyspace whose table was
//! created the old way (`volume bigint`) still loads whole volumes and refuses fractional ones
//! with `fractional_volume`; an end-stamped file is quarantined `suspect_bar_end` without a
//! rule and stored at its bars' opens with `stamp = "end"`, equal to its start-stamped twin.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bar_gen::layouts::{OutLayout, write_layout_variant};
use bar_gen::{GenSpec, Variant, write_symbol_variant};
use bar_ingest::account::history::Outcome;
use common::{Site, Stored, all_bars, expected_bars, history};

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The first day Massive's flat files carry decimal volumes (a Monday, a trading day).
fn decimal_day() -> GenSpec {
    GenSpec {
        symbols: vec!["AAA".into(), "BRK.B".into()],
        start: chrono::NaiveDate::from_ymd_opt(2026, 2, 23).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2026, 2, 23).unwrap(),
        seed: 11,
    }
}

/// The Polygon day file of `spec` with six-decimal volumes, in `dir`.
fn polygon_decimal_file(spec: &GenSpec, dir: &Path) -> PathBuf {
    let variant = Variant {
        decimal_volumes: true,
        ..Variant::default()
    };
    let written = write_layout_variant(spec, OutLayout::Polygon, variant, dir).unwrap();
    assert_eq!(written.len(), 1);
    written[0].0.clone()
}

/// What a Polygon file holds, read independently of the loader: (bar, volume text) per line,
/// the volume as the nearest f64 of its text.
fn polygon_rows(path: &Path) -> Vec<(Stored, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("ticker,volume,open,close,high,low,window_start,transactions")
    );
    let mut rows: Vec<(Stored, String)> = lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap();
            let nanos: i64 = f[6].parse().unwrap();
            let bar = (
                f[0].to_owned(),
                nanos / 1_000_000,
                num(2),
                num(4),
                num(5),
                num(3),
                num(1),
            );
            (bar, f[1].to_owned())
        })
        .collect();
    rows.sort_by(|a, b| (a.0.0.as_str(), a.0.1).cmp(&(b.0.0.as_str(), b.0.1)));
    rows
}

/// `bar-ingest fetch` of every bar of `symbol` on 2026-02-23 as CSV in UTC: the volume texts.
fn fetched_volumes(config: &Path, symbol: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .arg("--config")
        .arg(config)
        .args([
            "fetch",
            symbol,
            "--from",
            "2026-02-23",
            "--to",
            "2026-02-23",
            "--session",
            "all",
            "--utc",
        ])
        .output()
        .expect("run fetch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,open,high,low,close,volume"));
    lines
        .map(|l| l.rsplit(',').next().unwrap().to_owned())
        .collect()
}

/// A decimal text as it prints back from its f64: `4930.120000` → `4930.12`, `7.000000` → `7`.
fn shortest(text: &str) -> String {
    match text.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_owned()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => text.to_owned(),
    }
}

/// The volumes cqlsh (an independent client, from PyPI) reads for `symbol` in `bucket`.
fn cqlsh_volumes(table: &str, symbol: &str, bucket: &str) -> Vec<f64> {
    let cqlsh = Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/venv/bin/cqlsh");
    assert!(
        cqlsh.exists(),
        "cqlsh not found at {}: run ./scripts/test, which installs it",
        cqlsh.display()
    );
    let (host, port) = common::contact_points()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let out = Command::new(cqlsh)
        .args([&host, &port, "-e"])
        .arg(format!(
            "SELECT JSON ts, volume FROM {table} WHERE symbol = '{symbol}' AND bucket = '{bucket}'"
        ))
        .output()
        .expect("run cqlsh");
    assert!(
        out.status.success(),
        "cqlsh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            // The server's text of the double (Java's, which reads back as the same double).
            let text = l
                .split("\"volume\": ")
                .nth(1)
                .unwrap()
                .trim_end_matches('}');
            text.parse().unwrap()
        })
        .collect()
}

/// Before volumes became f64, every line of this file was rejected `fractional_volume` and the
/// file quarantined (exit 1).
#[tokio::test(flavor = "multi_thread")]
async fn a_polygon_day_file_with_decimal_volumes_is_stored_and_read_back_exactly() {
    let (session, schema, _) = common::fresh_schema("decvol").await;
    let site = Site::new(&schema.keyspace);
    let spec = decimal_day();
    let file = polygon_decimal_file(&spec, &site.dir.path().join("massive"));
    let rows = polygon_rows(&file);
    assert!(rows.len() > 500, "{} rows", rows.len());
    assert!(
        rows.iter()
            .all(|(_, text)| text.len() > 7 && text.as_bytes()[text.len() - 7] == b'.'),
        "six decimals"
    );

    // Rows and cells: the driver reads the cells, fetch and cqlsh the rows.
    let config = site.config("l", "[storage]\nlayout = \"both\"");
    let (code, stderr) = common::run_load(&config, &["--no-progress", arg(&file)]);
    assert_eq!(code, 0, "{stderr}");

    // The driver (plain CQL, the volume read as the column's own type).
    let want: Vec<Stored> = rows.iter().map(|(bar, _)| bar.clone()).collect();
    assert_eq!(all_bars(&session, &schema).await, want);

    // fetch prints each volume as the text delivered (less trailing zeros).
    for symbol in ["AAA", "BRK.B"] {
        let delivered: Vec<String> = rows
            .iter()
            .filter(|(bar, _)| bar.0 == symbol)
            .map(|(_, text)| shortest(text))
            .collect();
        assert_eq!(fetched_volumes(&config, symbol), delivered, "{symbol}");
    }

    // cqlsh, an independent reader.
    let aaa: Vec<f64> = rows
        .iter()
        .filter(|(bar, _)| bar.0 == "AAA")
        .map(|(bar, _)| bar.6)
        .collect();
    assert_eq!(cqlsh_volumes(&schema.bars(), "AAA", "2026-02"), aaa);
    common::drop_keyspace(&session, &schema).await;
}

/// A keyspace whose bars table was created before volumes became `double`.
async fn old_keyspace(name: &str) -> (scylla::client::session::Session, bar_ingest::store::Schema) {
    let keyspace = common::unique_keyspace(name);
    let settings = common::settings(&keyspace);
    let session = common::connect(&settings).await;
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    for ddl in [
        format!(
            "CREATE KEYSPACE {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        // The bars table exactly as 35da320 created it.
        format!(
            "CREATE TABLE {} (symbol text, bucket text, ts timestamp, open double, high double, \
             low double, close double, volume bigint, PRIMARY KEY ((symbol, bucket), ts)) \
             WITH CLUSTERING ORDER BY (ts ASC)",
            schema.bars()
        ),
    ] {
        session.query_unpaged(ddl, ()).await.unwrap();
    }
    (session, schema)
}

/// An existing `volume bigint` table keeps working: whole volumes load and read back (by the
/// driver and by `fetch`), a fractional one is rejected `fractional_volume` with a message that
/// says the table stores whole volumes, and its line is in the dead-letter log.
#[tokio::test(flavor = "multi_thread")]
async fn an_old_bigint_table_loads_whole_volumes_and_refuses_fractional_ones() {
    let (session, schema) = old_keyspace("oldvol").await;
    let site = Site::new(&schema.keyspace);
    let whole = "2026-02-23 09:30:00,10,11,9,10.5,19209\n\
                 2026-02-23 09:31:00,10,11,9,10.5,0\n\
                 2026-02-23 09:32:00,10,11,9,10.5,9007199254740992\n";
    let file = site.dir.path().join("OLD_full_1min_adjsplit.txt");
    std::fs::write(&file, whole).unwrap();
    // A `volume bigint` column is the bars table's: this keyspace stays in rows.
    let config = site.config("l", "[storage]\nlayout = \"rows\"");
    let (code, stderr) = common::run_load(&config, &["--no-progress", arg(&file)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        all_bars(&session, &schema).await,
        expected_bars("OLD", whole)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .arg("--config")
        .arg(&config)
        .args(["fetch", "OLD", "--from", "2026-02-23", "--to", "2026-02-23"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let fetched = String::from_utf8(out.stdout).unwrap();
    assert!(
        fetched.ends_with(",19209\n2026-02-23 09:31:00,10,11,9,10.5,0\n2026-02-23 09:32:00,10,11,9,10.5,9007199254740992\n"),
        "{fetched}"
    );

    // Half the lines fractional: under the default 50 % threshold nothing is quarantined, so
    // the whole ones load and the fractional ones are rejected.
    let mixed = "2026-02-24 09:30:00,10,11,9,10.5,100\n\
                 2026-02-24 09:31:00,10,11,9,10.5,12.345678\n\
                 2026-02-24 09:32:00,10,11,9,10.5,300\n";
    let file = site.dir.path().join("MIX_full_1min_adjsplit.txt");
    std::fs::write(&file, mixed).unwrap();
    let (code, stderr) = common::run_load(&config, &["--no-progress", arg(&file)]);
    // Exit 1: the file loaded with rejected rows.
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("2 rows written, 1 rejected"), "{stderr}");
    let mix: Vec<Stored> = all_bars(&session, &schema)
        .await
        .into_iter()
        .filter(|b| b.0 == "MIX")
        .collect();
    assert_eq!(mix.iter().map(|b| b.6).collect::<Vec<_>>(), [100.0, 300.0]);
    let record = history(&session, &schema)
        .await
        .into_iter()
        .find(|r| r.file_name.starts_with("MIX"))
        .unwrap();
    assert_eq!((record.rows_written, record.rows_rejected), (2, 1));
    let dead: String = site
        .files_in("dead-letter")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for needle in [
        "fractional_volume",
        "2026-02-24 09:31:00,10,11,9,10.5,12.345678",
        "`volume` column is `bigint`: it stores whole volumes only",
    ] {
        assert!(dead.contains(needle), "{needle:?} not in {dead}");
    }
    common::drop_keyspace(&session, &schema).await;
}

/// Ten trading days of one symbol, start- or end-stamped, as a FirstRate file named `name`.
fn stamped_file(dir: &Path, name: &str, end_stamps: bool) -> PathBuf {
    let spec = GenSpec {
        symbols: vec!["NT".into()],
        start: chrono::NaiveDate::from_ymd_opt(2024, 10, 28).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2024, 11, 8).unwrap(),
        seed: 3,
    };
    let path = dir.join(name);
    let mut out = Vec::new();
    let variant = Variant {
        end_stamps,
        ..Variant::default()
    };
    write_symbol_variant(&spec, variant, "NT", &mut out).unwrap();
    std::fs::write(&path, out).unwrap();
    path
}

/// Before the stamp check, the end-stamped file loaded (exit 0) one minute late.
#[tokio::test(flavor = "multi_thread")]
async fn end_stamped_files_are_quarantined_without_the_rule_and_load_at_their_opens_with_it() {
    let (session, schema, _) = common::fresh_schema("barend").await;
    let site = Site::new(&schema.keyspace);
    let dir = site.dir.path();
    let ends = stamped_file(dir, "NT_full_1min_adjsplit.txt", true);
    let starts = stamped_file(dir, "NS_full_1min_adjsplit.txt", false);
    let starts_under_end_rule = stamped_file(dir, "NX_full_1min_adjsplit.txt", false);

    let (code, stderr) =
        common::run_load(&site.config("plain", ""), &["--no-progress", arg(&ends)]);
    assert_eq!(code, 1, "{stderr}");
    for needle in [
        "suspect_bar_end",
        "the activity peaks at 09:31 and 16:00 exchange time instead of 09:30 and 15:59",
        "set `stamp = \"end\"` in the `[[source]]` rule for these files",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    assert!(
        all_bars(&session, &schema).await.is_empty(),
        "nothing written"
    );
    let records = history(&session, &schema).await;
    assert!(
        records.len() == 1
            && records[0].outcome == Outcome::Quarantined
            && records[0]
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("suspect_bar_end")),
        "{records:?}"
    );

    // The normal twin passes the gate; with the rule, the end-stamped file loads at the opens.
    let rules = "[[source]]\npattern = \"NT_*\"\nstamp = \"end\"\n\n\
                 [[source]]\npattern = \"NX_*\"\nstamp = \"end\"\n";
    let config = site.config("rules", rules);
    let (code, stderr) = common::run_load(&config, &["--no-progress", arg(&starts), arg(&ends)]);
    assert_eq!(code, 0, "{stderr}");
    let stored = all_bars(&session, &schema).await;
    let by = |symbol: &str| -> Vec<Stored> {
        stored
            .iter()
            .filter(|b| b.0 == symbol)
            .map(|b| (String::new(), b.1, b.2, b.3, b.4, b.5, b.6))
            .collect()
    };
    assert!(by("NS").len() > 4000, "{}", by("NS").len());
    assert_eq!(by("NT"), by("NS"));
    let twin = std::fs::read_to_string(&starts).unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|b| b.0 == "NS")
            .cloned()
            .collect::<Vec<_>>(),
        expected_bars("NS", &twin)
    );

    // Start stamps under `stamp = "end"` would be stored a minute early: quarantined too.
    let (code, stderr) = common::run_load(&config, &["--no-progress", arg(&starts_under_end_rule)]);
    assert_eq!(code, 1, "{stderr}");
    for needle in [
        "suspect_bar_end",
        "the session opens at 09:29",
        "remove `stamp = \"end\"`",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    assert!(
        all_bars(&session, &schema)
            .await
            .iter()
            .all(|b| b.0 != "NX")
    );
    common::drop_keyspace(&session, &schema).await;
}
