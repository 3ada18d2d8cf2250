//! Real vendor deliveries through `bar-ingest load` and the daemon: every layout the product
//! reads, detected without a rule, stores exactly the bars a FirstRate file of the same bars
//! stores; gzip, zstd and zip deliveries load like plain files and a re-compressed copy is a
//! duplicate; UTC times read as exchange time are quarantined by the time-zone gate with a
//! reason that names the rule to set, and load at the right instants once the rule says UTC; a
//! zip with a bad member loads the others and says which one failed; a header that is not the
//! configured layout's is refused; symbol renames apply.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bar_gen::layouts::{OutLayout, write_layout};
use bar_gen::pack::{Pack, pack};
use bar_gen::{GenSpec, write_all};
use bar_ingest::account::history::Outcome;
use bar_ingest::config::Settings;
use common::{Site, Stored, all_bars, expected_bars, history};

/// A few days across the 2024 spring-forward (Sunday 10 March), two symbols.
fn spec(symbols: &[&str]) -> GenSpec {
    GenSpec {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        start: chrono::NaiveDate::from_ymd_opt(2024, 3, 7).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2024, 3, 12).unwrap(),
        seed: 7,
    }
}

/// The bars a spec's FirstRate files hold, read independently of the loader.
fn reference(spec: &GenSpec, dir: &Path) -> Vec<Stored> {
    let mut out = Vec::new();
    for (path, _) in write_all(spec, dir).unwrap() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let symbol = name.split('_').next().unwrap();
        out.extend(expected_bars(
            symbol,
            &std::fs::read_to_string(&path).unwrap(),
        ));
    }
    common::sort_bars(&mut out);
    out
}

/// Equal bars; prices within 1e-9 relative (Databento's fixed-point prices divide by 10^9).
fn assert_same_bars(stored: &[Stored], expected: &[Stored], what: &str) {
    assert_eq!(stored.len(), expected.len(), "{what}: row count");
    for (s, e) in stored.iter().zip(expected) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            s.0 == e.0
                && s.1 == e.1
                && close(s.2, e.2)
                && close(s.3, e.3)
                && close(s.4, e.4)
                && close(s.5, e.5)
                && s.6 == e.6,
            "{what}: stored {s:?}, expected {e:?}"
        );
    }
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_layout_is_detected_and_stores_the_bars_it_holds() {
    let spec = spec(&["AAA", "BRK.B"]);
    let scratch = tempfile::tempdir().unwrap();
    let expected = reference(&spec, &scratch.path().join("ref"));
    assert!(expected.len() > 1000, "enough bars for the gate to judge");
    for layout in [
        OutLayout::Polygon,
        OutLayout::Databento,
        OutLayout::Kibot,
        OutLayout::CsvUtc,
        OutLayout::CsvEpochMs,
    ] {
        let (session, schema, _) = common::fresh_schema("layout").await;
        let site = Site::new(&schema.keyspace);
        let dir = site.dir.path().join("in");
        let written = write_layout(&spec, layout, &dir).unwrap();
        let (code, stderr) = common::run_load(&site.config("load", ""), &[arg(&dir)]);
        assert_eq!(code, 0, "{}: {stderr}", layout.name());
        let rows: u64 = written.iter().map(|(_, r)| r).sum();
        assert!(
            stderr.contains(&format!("rows: {rows} in, {rows} written, 0 rejected")),
            "{}: {stderr}",
            layout.name()
        );
        let read_as = match layout {
            OutLayout::Polygon => "(polygon, 2 symbols)",
            OutLayout::Databento => "(databento, 2 symbols)",
            OutLayout::Kibot => "(kibot)",
            _ => "(csv)",
        };
        assert!(stderr.contains(read_as), "{}: {stderr}", layout.name());
        let stored = all_bars(&session, &schema).await;
        assert_same_bars(&stored, &expected, layout.name());
        common::assert_reconciles(&history(&session, &schema).await);
        common::drop_keyspace(&session, &schema).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn packaged_deliveries_load_like_plain_files_and_a_recompressed_copy_is_a_duplicate() {
    let spec = spec(&["GZA", "ZSA"]);
    let (session, schema, _) = common::fresh_schema("packed").await;
    let site = Site::new(&schema.keyspace);
    let expected = reference(&spec, &site.dir.path().join("ref"));
    let config = site.config("load", "");

    // GZA gzipped, ZSA zstd-compressed.
    let plain = write_all(&spec, &site.dir.path().join("gz")).unwrap();
    let gz = pack(&plain[..1], Pack::Gz, &site.dir.path().join("gz")).unwrap();
    let zst = pack(&plain[1..], Pack::Zst, &site.dir.path().join("gz")).unwrap();
    let (code, stderr) = common::run_load(&config, &[arg(&gz[0].0), arg(&zst[0].0)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("2 files: 2 loaded"), "{stderr}");
    assert_same_bars(&all_bars(&session, &schema).await, &expected, "gz + zst");

    // The same two files in one zip: two units, each a duplicate of its decoded content.
    let again = write_all(&spec, &site.dir.path().join("zip")).unwrap();
    let zip = pack(&again, Pack::Zip, &site.dir.path().join("zip")).unwrap();
    let (code, stderr) = common::run_load(&config, &[arg(&zip[0].0)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("1 files (2 units): 0 loaded, 2 duplicate"),
        "{stderr}"
    );
    let records = history(&session, &schema).await;
    let mut names: Vec<&str> = records.iter().map(|r| r.file_name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "GZA_full_1min_adjsplit.txt.gz",
            "ZSA_full_1min_adjsplit.txt.zst"
        ]
    );
    assert!(records.iter().all(|r| r.outcome == Outcome::Loaded));
    assert_same_bars(&all_bars(&session, &schema).await, &expected, "zip again");
    common::drop_keyspace(&session, &schema).await;
}

/// The spec's bars as `timestamp,open,high,low,close,volume` with naive UTC times (a vendor's
/// UTC file without a zone marker), and as FirstRate lines with UTC wall times.
fn utc_files(spec: &GenSpec, dir: &Path) -> (PathBuf, PathBuf) {
    let written = write_layout(spec, OutLayout::CsvUtc, &dir.join("csv")).unwrap();
    let text = std::fs::read_to_string(&written[0].0).unwrap();
    let naive = text.replace('T', " ").replace('Z', "");
    let csv = dir.join("UTCS_1min_utc.csv");
    std::fs::write(&csv, &naive).unwrap();
    let lines: String = naive.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let txt = dir.join("UTCF_full_1min_adjsplit.txt");
    std::fs::write(&txt, lines).unwrap();
    (csv, txt)
}

#[tokio::test(flavor = "multi_thread")]
async fn utc_times_are_quarantined_without_a_rule_and_load_right_with_timezone_utc() {
    let spec = spec(&["UTCS"]);
    let (session, schema, _) = common::fresh_schema("utcgate").await;
    let site = Site::new(&schema.keyspace);
    let (csv, txt) = utc_files(&spec, site.dir.path());

    let (code, stderr) = common::run_load(&site.config("plain", ""), &[arg(&csv), arg(&txt)]);
    assert_eq!(code, 1, "{stderr}");
    for needle in [
        "quarantined",
        "suspect_timezone",
        "the times look like UTC read as America/New_York",
        "set `timezone = \"UTC\"` in the `[[source]]` rule",
        "2 quarantined",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    assert!(
        all_bars(&session, &schema).await.is_empty(),
        "nothing written"
    );
    let quarantined = history(&session, &schema).await;
    assert_eq!(quarantined.len(), 2);
    assert!(quarantined.iter().all(|r| {
        r.outcome == Outcome::Quarantined
            && r.error
                .as_deref()
                .unwrap_or("")
                .starts_with("suspect_timezone")
    }));

    let rules = "[[source]]\npattern = \"*_utc.csv\"\ntimezone = \"UTC\"\n\n\
                 [[source]]\npattern = \"UTCF_*\"\nlayout = \"firstrate\"\ntimezone = \"UTC\"\n";
    let (code, stderr) = common::run_load(&site.config("rules", rules), &[arg(&csv), arg(&txt)]);
    assert_eq!(code, 0, "{stderr}");
    let mut expected = reference(&spec, &site.dir.path().join("ref"));
    let as_utcf: Vec<Stored> = expected
        .iter()
        .map(|b| ("UTCF".to_owned(), b.1, b.2, b.3, b.4, b.5, b.6))
        .collect();
    expected.extend(as_utcf);
    common::sort_bars(&mut expected);
    assert_same_bars(&all_bars(&session, &schema).await, &expected, "UTC rule");
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_that_is_not_the_rules_layout_is_refused_and_an_unknown_one_asks_for_a_rule() {
    let (session, schema, _) = common::fresh_schema("header").await;
    let site = Site::new(&schema.keyspace);
    let body = "timestamp,open,high,low,close,volume\n\
                2024-03-07T14:30:00Z,10,11,9,10.5,100\n\
                2024-03-07T14:31:00Z,10,11,9,10.5,100\n";
    let file = site.dir.path().join("HDR_1min.csv");
    std::fs::write(&file, body).unwrap();
    let rule = "[[source]]\npattern = \"HDR_*\"\nlayout = \"polygon\"\n";
    let (code, stderr) = common::run_load(&site.config("rule", rule), &[arg(&file)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("quarantined") && stderr.contains("rows rejected (100.0%)"),
        "{stderr}"
    );

    let unknown = site.dir.path().join("ODD_1min.csv");
    std::fs::write(&unknown, "when,price,size\n2024-03-07,10,100\n").unwrap();
    let (code, stderr) = common::run_load(&site.config("auto", ""), &[arg(&unknown)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot tell the layout") && stderr.contains("add a [[source]] rule"),
        "{stderr}"
    );
    assert!(all_bars(&session, &schema).await.is_empty());
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn symbol_renames_apply_to_multi_symbol_files() {
    let spec = spec(&["FB", "IBM"]);
    let (session, schema, _) = common::fresh_schema("rename").await;
    let site = Site::new(&schema.keyspace);
    let dir = site.dir.path().join("poly");
    write_layout(&spec, OutLayout::Polygon, &dir).unwrap();
    let rule =
        "[[source]]\npattern = \"*.csv\"\nlayout = \"polygon\"\nsymbol_map = { FB = \"META\" }\n";
    let (code, stderr) = common::run_load(&site.config("load", rule), &[arg(&dir)]);
    assert_eq!(code, 0, "{stderr}");
    let stored = all_bars(&session, &schema).await;
    let expected: Vec<Stored> = reference(&spec, &site.dir.path().join("ref"))
        .into_iter()
        .map(|b| match b.0.as_str() {
            "FB" => ("META".to_owned(), b.1, b.2, b.3, b.4, b.5, b.6),
            _ => b,
        })
        .collect();
    let mut expected = expected;
    common::sort_bars(&mut expected);
    assert_same_bars(&stored, &expected, "renamed");
    common::drop_keyspace(&session, &schema).await;
}

/// A multi-symbol day file re-delivered with fewer symbols' bars for that day replaces each
/// symbol's rows of that day only; other days stay.
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_day_file_replaces_that_day_of_each_symbol_only() {
    let spec = spec(&["AAA", "BBB"]);
    let (session, schema, _) = common::fresh_schema("dayfile").await;
    let site = Site::new(&schema.keyspace);
    let dir = site.dir.path().join("poly");
    let written = write_layout(&spec, OutLayout::Polygon, &dir).unwrap();
    let config = site.config("load", "");
    let (code, stderr) = common::run_load(&config, &[arg(&dir)]);
    assert_eq!(code, 0, "{stderr}");
    let before = all_bars(&session, &schema).await;

    // The first day again, with only the rows of the first minute of each symbol kept.
    let (first_day, _) = &written[0];
    let text = std::fs::read_to_string(first_day).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut kept = vec![header.to_owned()];
    let mut seen = std::collections::BTreeSet::new();
    for l in lines {
        if seen.insert(l.split(',').next().unwrap().to_owned()) {
            kept.push(l.to_owned());
        }
    }
    let again = site.dir.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    let redelivered = again.join(first_day.file_name().unwrap());
    std::fs::write(&redelivered, kept.join("\n") + "\n").unwrap();
    let (code, stderr) = common::run_load(&config, &[arg(&redelivered)]);
    assert_eq!(code, 0, "{stderr}");

    let after = all_bars(&session, &schema).await;
    let day_ms = |t: i64| (t - 5 * 3_600_000).div_euclid(86_400_000);
    let first = day_ms(before[0].1);
    let on_first = |bars: &[Stored], sym: &str| {
        bars.iter()
            .filter(|b| b.0 == sym && day_ms(b.1) == first)
            .count()
    };
    let off_first = |bars: &[Stored]| -> Vec<Stored> {
        bars.iter()
            .filter(|b| day_ms(b.1) != first)
            .cloned()
            .collect()
    };
    assert!(on_first(&before, "AAA") > 100 && on_first(&before, "BBB") > 100);
    assert_eq!((on_first(&after, "AAA"), on_first(&after, "BBB")), (1, 1));
    assert_eq!(
        off_first(&after),
        off_first(&before),
        "other days untouched"
    );
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_with_a_bad_member_loads_the_others_and_its_sidecar_names_the_bad_one() {
    let spec = spec(&["GOOD"]);
    let (session, schema, _) = common::fresh_schema("zipbad").await;
    let site = Site::new(&schema.keyspace);
    let members = site.dir.path().join("members");
    let mut written = write_all(&spec, &members).unwrap();
    let bad = members.join("BAD_full_1min_adjsplit.txt");
    std::fs::write(&bad, "x\n".repeat(100)).unwrap();
    written.push((bad, 100));
    let zip = pack(&written, Pack::Zip, &members).unwrap();

    let settings = Settings::load(&site.config("a", ""), None).expect("the test config is valid");
    let daemon = common::InProcess::start(settings.clone());
    std::fs::rename(&zip[0].0, site.inbox().join("bundle.zip")).unwrap();
    common::wait_until_async(
        Duration::from_secs(60),
        "the zip and its sidecar in failed/",
        || async { site.files_in("failed").len() == 2 },
    )
    .await;
    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "{ended:?}");

    let body = site.sidecar();
    assert_eq!(body["outcome"], "partly_loaded", "{body}");
    let units = body["units"].as_array().unwrap();
    let outcome_of = |name: &str| {
        units
            .iter()
            .find(|u| u["file"] == format!("bundle.zip!{name}"))
            .map(|u| (u["outcome"].clone(), u["reason"].clone()))
    };
    assert_eq!(
        outcome_of("GOOD_full_1min_adjsplit.txt"),
        Some(("loaded".into(), serde_json::Value::Null))
    );
    assert_eq!(
        outcome_of("BAD_full_1min_adjsplit.txt"),
        Some(("quarantined".into(), "too_many_rejects".into()))
    );
    let expected = reference(&spec, &site.dir.path().join("ref"));
    assert_same_bars(&all_bars(&session, &schema).await, &expected, "good member");
    assert!(site.files_in("processing/a").is_empty());
    common::drop_keyspace(&session, &schema).await;
}
