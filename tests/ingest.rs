//! The ingest pipeline end to end: the real binary (`run` and `load`), real files in temp
//! folders, the real Cassandra node. Tests wait on conditions (files moved, rows present),
//! never on fixed sleeps.

mod common;

use std::io::Write;
use std::time::Duration;

use bar_gen::GenSpec;
use bar_ingest::account::history::Outcome;
use chrono::NaiveDate;
use common::{Site, all_bars, expected_bars, history};

/// Generous: the node and the build share two cores with other tests.
const WAIT: Duration = Duration::from_secs(120);

fn spec(symbols: &[&str], from: (i32, u32, u32), to: (i32, u32, u32), seed: u64) -> GenSpec {
    GenSpec {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        start: NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap(),
        end: NaiveDate::from_ymd_opt(to.0, to.1, to.2).unwrap(),
        seed,
    }
}

/// Generates `symbol`'s file into memory.
fn generated(spec: &GenSpec, symbol: &str) -> String {
    let mut buf = Vec::new();
    bar_gen::write_symbol(spec, symbol, &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn load_round_trip_is_exact_across_months_and_dst() {
    let (session, schema, _) = common::fresh_schema("roundtrip_load").await;
    let site = Site::new(&schema.keyspace);
    // March to April 2024: the spring-forward change (March 10; the offset changes between the
    // days, while the skipped hour itself, outside bar-gen's 04:00-20:00, is loaded end to end by
    // tests/replace_model.rs) and a month edge.
    let spec = spec(&["AAA", "BRK.B"], (2024, 3, 6), (2024, 4, 3), 7);
    let mut expected = Vec::new();
    for sym in &spec.symbols {
        let text = generated(&spec, sym);
        std::fs::write(site.inbox().join(bar_gen::file_name(sym)), &text).unwrap();
        expected.extend(expected_bars(sym, &text));
    }
    common::sort_bars(&mut expected);
    assert!(
        expected.len() > 1000,
        "generator produced too little: {}",
        expected.len()
    );

    let config = site.config("load", "");
    let (code, stderr) = common::run_load(&config, &[site.inbox().to_str().unwrap()]);
    assert_eq!(code, 0, "load failed: {stderr}");
    assert!(stderr.contains("2 loaded"), "{stderr}");

    let stored = all_bars(&session, &schema).await;
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "database differs from the input");

    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 2);
    common::assert_reconciles(&records);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Loaded && r.rows_rejected == 0)
    );
    assert!(
        records
            .iter()
            .any(|r| r.months.contains("2024-03") && r.months.contains("2024-04"))
    );

    // The same files again: duplicates, exit 0, nothing rewritten.
    let (code, stderr) = common::run_load(&config, &[site.inbox().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("duplicate ").count(), 2, "{stderr}");
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_loads_preexisting_slow_and_renamed_files_exactly_once() {
    let (session, schema, _) = common::fresh_schema("daemon_arrivals").await;
    let site = Site::new(&schema.keyspace);
    let spec = spec(&["PRE", "SLOW", "REN"], (2023, 5, 1), (2023, 5, 5), 11);
    let texts: Vec<(String, String)> = spec
        .symbols
        .iter()
        .map(|s| (s.clone(), generated(&spec, s)))
        .collect();

    // 1. Present before start.
    std::fs::write(site.inbox().join(bar_gen::file_name("PRE")), &texts[0].1).unwrap();
    let config = site.config("a", "");
    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "PRE in done/", || site.files_in("done").len() == 1);

    // 2. Written slowly: half, a pause longer than the settle time, the rest, then close.
    let slow_path = site.inbox().join(bar_gen::file_name("SLOW"));
    {
        let mut f = std::fs::File::create(&slow_path).unwrap();
        let (a, b) = texts[1].1.split_at(texts[1].1.len() / 2);
        f.write_all(a.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        f.write_all(b.as_bytes()).unwrap();
    }
    // 3. Written as .part, renamed into place; another .part that is never renamed.
    let part = site.inbox().join("REN_full_1min_adjsplit.txt.part");
    std::fs::write(&part, &texts[2].1).unwrap();
    std::fs::write(
        site.inbox().join("NEVER_full_1min_adjsplit.txt.part"),
        "junk\n",
    )
    .unwrap();
    std::fs::write(
        site.inbox().join(".hidden_full_1min_adjsplit.txt"),
        "junk\n",
    )
    .unwrap();
    std::fs::rename(&part, site.inbox().join(bar_gen::file_name("REN"))).unwrap();

    common::wait_until(WAIT, "3 files in done/", || {
        site.files_in("done").len() == 3
    });
    let status = common::terminate(&mut daemon);
    assert!(
        status.success(),
        "daemon exit {status:?}\n{}",
        site.log("a")
    );

    let mut expected: Vec<_> = texts
        .iter()
        .flat_map(|(s, t)| expected_bars(s, t))
        .collect();
    common::sort_bars(&mut expected);
    let stored = all_bars(&session, &schema).await;
    assert_eq!(stored.len(), expected.len(), "log:\n{}", site.log("a"));
    assert!(stored == expected, "database differs from the input");
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 3, "each file loaded once: {records:?}");
    common::assert_reconciles(&records);
    // The slow file was loaded complete, once.
    let slow = records.iter().find(|r| r.symbol == "SLOW").unwrap();
    assert_eq!(
        slow.rows_in as usize,
        expected_bars("SLOW", &texts[1].1).len()
    );
    // Ignored names stay where they are.
    assert!(
        site.inbox()
            .join("NEVER_full_1min_adjsplit.txt.part")
            .exists()
    );
    assert!(site.inbox().join(".hidden_full_1min_adjsplit.txt").exists());
    assert!(
        site.files_in("failed").is_empty(),
        "{:?}",
        site.files_in("failed")
    );
    common::drop_keyspace(&session, &schema).await;
}

/// The write time (µs) of DUP's first day cell of January 2022 (the default layout, days).
async fn writetime(
    session: &scylla::client::session::Session,
    schema: &bar_ingest::store::Schema,
) -> i64 {
    let q = format!(
        "SELECT WRITETIME(cell) FROM {} WHERE symbol = 'DUP' AND bucket = '2022-01' LIMIT 1",
        schema.days()
    );
    session
        .query_unpaged(q, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .first_row::<(i64,)>()
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_drop_is_archived_and_counted_not_rewritten() {
    let (session, schema, _) = common::fresh_schema("duplicate").await;
    let site = Site::new(&schema.keyspace);
    let spec = spec(&["DUP"], (2022, 1, 3), (2022, 1, 4), 3);
    let text = generated(&spec, "DUP");
    let config = site.config("a", "");
    let mut daemon = site.spawn_daemon(&config);
    std::fs::write(site.inbox().join(bar_gen::file_name("DUP")), &text).unwrap();
    common::wait_until(WAIT, "first copy in done/", || {
        site.files_in("done").len() == 1
    });

    let before = writetime(&session, &schema).await;
    // Same content under another name.
    std::fs::write(site.inbox().join("DUP_again_1min.txt"), &text).unwrap();
    common::wait_until(WAIT, "second copy in duplicates/", || {
        site.files_in("duplicates").len() == 1
    });
    assert!(common::terminate(&mut daemon).success());

    assert_eq!(
        writetime(&session, &schema).await,
        before,
        "a duplicate must not be rewritten"
    );
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 1, "one content, one history row");
    assert_eq!(records[0].outcome, Outcome::Loaded);
    assert!(
        site.log("a").contains("already loaded"),
        "{}",
        site.log("a")
    );
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivered_history_with_fewer_rows_leaves_no_stale_row() {
    let (session, schema, _) = common::fresh_schema("replace").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("load", "");
    let file = site.dir.path().join("RPL_full_1min_adjsplit.txt");
    // v1: two months, three rows each.
    let v1 = "2021-01-29 09:30:00,10,11,9,10.5,100\n\
              2021-01-29 09:31:00,10.5,11,10,10.8,200\n\
              2021-01-29 15:59:00,10.8,11,10,10.9,300\n\
              2021-02-01 09:30:00,20,21,19,20.5,100\n\
              2021-02-01 09:31:00,20.5,21,20,20.8,200\n\
              2021-02-02 09:30:00,20.8,21,20,20.9,300\n";
    std::fs::write(&file, v1).unwrap();
    let (code, err) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(all_bars(&session, &schema).await, expected_bars("RPL", v1));

    // v2 (a split re-adjusted history): a minute gone in January, a whole day gone in February.
    let v2 = "2021-01-29 09:30:00,5,5.5,4.5,5.25,200\n\
              2021-01-29 15:59:00,5.4,5.5,5,5.45,600\n\
              2021-02-01 09:30:00,10,10.5,9.5,10.25,200\n\
              2021-02-02 09:30:00,10.4,10.5,10,10.45,600\n";
    std::fs::write(&file, v2).unwrap();
    let (code, err) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        all_bars(&session, &schema).await,
        expected_bars("RPL", v2),
        "rows of the earlier delivery remain"
    );

    // A daily update file replaces only its own day.
    let daily = "2021-02-02 09:30:00,11,11.5,10.5,11.25,700\n";
    std::fs::write(&file, daily).unwrap();
    let (code, err) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut expect = expected_bars(
        "RPL",
        &v2.replace("2021-02-02 09:30:00,10.4,10.5,10,10.45,600\n", ""),
    );
    expect.extend(expected_bars("RPL", daily));
    expect.sort_by_key(|b| b.1);
    assert_eq!(all_bars(&session, &schema).await, expect);
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_inputs_are_dead_lettered_while_the_rest_loads() {
    let (session, schema, _) = common::fresh_schema("malformed").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("load", "");
    let dir = site.dir.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();

    // Good rows around one bad line of each class; 14 bad of 30 lines stays under the 50% threshold.
    let good = |d: u32, m: u32| format!("2024-03-{d:02} 10:{m:02}:00,10,11,9,10.5,100\n");
    let mut text = String::new();
    let mut expect_good = String::new();
    let mut push_good = |text: &mut String, d, m| {
        let g = good(d, m);
        text.push_str(&g);
        expect_good.push_str(&g);
    };
    let bad_lines: Vec<(String, &str)> = vec![
        ("2024-03-04 10:05:00,10,11,9,10.5\n".into(), "field_count"),
        (
            "2024-03-04 10:06:00,ten,11,9,10.5,100\n".into(),
            "bad_number",
        ),
        (
            "2024-03-04 10:07:00,NaN,11,9,10.5,100\n".into(),
            "non_finite",
        ),
        (
            "2024-03-04 10:08:00,10,inf,9,10.5,100\n".into(),
            "non_finite",
        ),
        (
            "2024-03-04 10:09:00,10,9,11,10.5,100\n".into(),
            "high_below_low",
        ),
        (
            "2024-03-04 10:10:00,10,11,9,10.5,-5\n".into(),
            "negative_volume",
        ),
        // A fractional volume is kept (a `double` volume column); one above 2^53 is not.
        (
            "2024-03-04 10:11:00,10,11,9,10.5,9007199254740993\n".into(),
            "bad_number",
        ),
        (
            "2024-03-04 10:02:00,10,11,9,10.5,100\n".into(),
            "out_of_order",
        ),
        (
            "2024-03-10 02:30:00,10,11,9,10.5,100\n".into(),
            "nonexistent_local_time",
        ),
        (
            "2024-13-40 10:00:00,10,11,9,10.5,100\n".into(),
            "bad_timestamp",
        ),
        (format!("{}\n", "9".repeat(1_000_000)), "line_too_long"),
        (
            "2024-03-11 10:00:00,1\u{0}0,11,9,10.5,100\n".into(),
            "binary",
        ),
    ];
    let mut bad_at = Vec::new();
    push_good(&mut text, 4, 0);
    push_good(&mut text, 4, 1);
    push_good(&mut text, 4, 3);
    push_good(&mut text, 4, 4);
    for (i, (line, code)) in bad_lines.iter().enumerate() {
        bad_at.push((text.lines().count() as u64 + 1, *code));
        text.push_str(line);
        push_good(&mut text, 11, 10 + i as u32);
    }
    // A repeat of the last accepted minute.
    bad_at.push((text.lines().count() as u64 + 1, "duplicate_timestamp"));
    text.push_str(&good(11, 10 + bad_lines.len() as u32 - 1));
    push_good(&mut text, 11, 40);
    let mut bytes = text.into_bytes();
    // Invalid UTF-8 as its own line.
    let invalid_line_no = String::from_utf8_lossy(&bytes).lines().count() as u64 + 1;
    bytes.extend_from_slice(b"2024-03-12 10:00:00,\xff\xfe,11,9,10.5,100\n");
    bad_at.push((invalid_line_no, "invalid_utf8"));
    bytes.extend_from_slice(good(12, 1).as_bytes());
    expect_good.push_str(&good(12, 1));
    let mixed = dir.join("MIX_full_1min_adjsplit.txt");
    std::fs::write(&mixed, &bytes).unwrap();

    let (code, err) = common::run_load(&config, &[mixed.to_str().unwrap()]);
    assert_eq!(code, 1, "rows were rejected, so exit 1: {err}");
    assert_eq!(
        all_bars(&session, &schema).await,
        expected_bars("MIX", &expect_good)
    );

    let logs = site.files_in("dead-letter");
    assert_eq!(logs.len(), 1, "{logs:?}");
    let mut entries: Vec<serde_json::Value> = std::fs::read_to_string(&logs[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The last line counts the rejects (tests/dead_letter.rs pins it); the rest are the rows.
    let summary = entries.pop().unwrap();
    assert_eq!(summary["rejected"], bad_at.len());
    let got: Vec<(u64, String)> = entries
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(u64, String)> = bad_at.iter().map(|(l, c)| (*l, c.to_string())).collect();
    assert_eq!(got, want);
    assert!(
        entries
            .iter()
            .all(|e| e["file"] == "MIX_full_1min_adjsplit.txt"
                && e["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    let long = entries
        .iter()
        .find(|e| e["reason"] == "line_too_long")
        .unwrap();
    assert!(
        long["raw"].as_str().unwrap().len() < 2000,
        "raw text of a 1 MB line must be cut"
    );

    let records = history(&session, &schema).await;
    common::assert_reconciles(&records);
    assert_eq!(records[0].rows_rejected as usize, want.len());

    // Dropping the same content again is a duplicate: its rejects are not logged a second time.
    let logged = std::fs::read_to_string(&logs[0]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5)); // a later "time" if it were rewritten
    let (code, err) = common::run_load(&config, &[mixed.to_str().unwrap()]);
    assert_eq!(code, 0, "a duplicate is not a failure: {err}");
    assert!(err.contains("duplicate"), "{err}");
    assert_eq!(site.files_in("dead-letter"), logs);
    assert_eq!(std::fs::read_to_string(&logs[0]).unwrap(), logged);

    // Whole-file classes: empty, binary (quarantined whole), blank lines only.
    std::fs::write(dir.join("EMPTY_full_1min_adjsplit.txt"), b"").unwrap();
    std::fs::write(dir.join("BLANK_full_1min_adjsplit.txt"), b"\n\n\r\n").unwrap();
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(dir.join("BIN_full_1min_adjsplit.txt"), &binary).unwrap();
    let (code, err) = common::run_load(
        &config,
        &[
            dir.join("EMPTY_full_1min_adjsplit.txt").to_str().unwrap(),
            dir.join("BLANK_full_1min_adjsplit.txt").to_str().unwrap(),
            dir.join("BIN_full_1min_adjsplit.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("empty ").count(), 2, "{err}");
    assert!(
        err.contains("quarantined") && err.contains("BIN_full"),
        "{err}"
    );
    // The empty ones are in the dead-letter log as whole-file entries (line 0).
    let empties: Vec<serde_json::Value> = site
        .files_in("dead-letter")
        .iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("EMPTY_") || n.starts_with("BLANK_")
        })
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            serde_json::from_str(text.lines().next().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(empties.len(), 2);
    assert!(
        empties
            .iter()
            .all(|e| e["reason"] == "empty_file" && e["line"] == 0)
    );
    let records = history(&session, &schema).await;
    let bin = records.iter().find(|r| r.symbol == "BIN").unwrap();
    assert_eq!(bin.outcome, Outcome::Quarantined);
    // Refused at once with one reason, not line by line.
    let why = bin.error.as_deref().unwrap_or_default();
    assert!(
        why.starts_with("binary_unit: the unit is binary data"),
        "{why}"
    );
    assert_eq!(bin.rows_rejected, 0);
    assert_eq!(bin.rows_written, 0);
    assert_eq!(
        all_bars(&session, &schema)
            .await
            .iter()
            .filter(|b| b.0 == "BIN")
            .count(),
        0
    );
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_database_error_fails_the_file_not_the_daemon() {
    let (session, schema, _) = common::fresh_schema("permanent").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("p", "");
    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "the daemon ready", || {
        site.log("p").contains("first scan of the inbox done")
    });
    // The bar tables disappear under the running daemon: no retry can help.
    for table in [schema.bars(), schema.days()] {
        session
            .query_unpaged(format!("DROP TABLE {table}"), ())
            .await
            .unwrap();
    }
    std::fs::write(
        site.inbox().join("GONE_full_1min_adjsplit.txt"),
        "2024-03-04 10:00:00,10,11,9,10.5,100\n",
    )
    .unwrap();
    common::wait_until(WAIT, "the file in failed/ with its sidecar", || {
        site.files_in("failed").len() == 2
    });
    let body = site.sidecar();
    assert_eq!(body["outcome"], "failed");
    assert!(!body["error"].as_str().unwrap().is_empty(), "{body}");
    assert!(
        site.files_in("dead-letter").is_empty(),
        "a failed write is not bad data"
    );

    // The daemon is still up and loads the next file once the table is back.
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon exited:\n{}",
        site.log("p")
    );
    bar_ingest::store::init_schema(&session, &schema)
        .await
        .unwrap();
    let mut daemon2 = {
        // Restart so that the statements are prepared against the new table.
        assert!(common::terminate(&mut daemon).success());
        site.spawn_daemon(&config)
    };
    std::fs::write(
        site.inbox().join("BACK_full_1min_adjsplit.txt"),
        "2024-03-04 10:00:00,10,11,9,10.5,100\n",
    )
    .unwrap();
    common::wait_until(WAIT, "the next file in done/", || {
        site.files_in("done").len() == 1
    });
    assert!(common::terminate(&mut daemon2).success());
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn load_exits_2_when_it_cannot_run() {
    let site = Site::new("t_load_cannot_run");
    let config = site.config("l", "");
    // A path that does not exist.
    let (code, err) = common::run_load(&config, &["/no/such/folder"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/no/such/folder"), "{err}");
    // A database that is not there.
    let file = site.dir.path().join("X_full_1min_adjsplit.txt");
    std::fs::write(&file, "2024-03-04 10:00:00,10,11,9,10.5,100\n").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&common::contact_points(), "127.0.0.1:1");
    std::fs::write(&config, text).unwrap();
    let (code, err) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot connect to the database at 127.0.0.1:1"),
        "{err}"
    );
}
