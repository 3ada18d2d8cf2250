//! `bar-ingest coverage` against an independent reference: expected minutes from the
//! `exchange_calendars` package (tests/data/xnys-session-minutes.json, written by
//! scripts/coverage-reference), and a generated symbol with known holes, a 2:1 split, a jump, a
//! run of identical bars, afternoon bars on a half day and bars on a holiday; stored as day
//! cells (written directly) and as bar rows (loaded by `bar-ingest load`), the same report.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use bar_ingest::cell::DayColumns;
use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::America::New_York;

const SYMBOL: &str = "DEFX";
const FROM: &str = "2024-11-01";
const TO: &str = "2025-01-31";

/// The reference sessions: day → (minutes, open, close).
fn reference() -> BTreeMap<NaiveDate, (u32, NaiveTime, NaiveTime)> {
    let text = include_str!("data/xnys-session-minutes.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let hm =
        |v: &serde_json::Value| NaiveTime::parse_from_str(v.as_str().unwrap(), "%H:%M").unwrap();
    json["sessions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(day, s)| {
            let minutes = s["minutes"].as_u64().unwrap() as u32;
            (
                day.parse().unwrap(),
                (minutes, hm(&s["open"]), hm(&s["close"])),
            )
        })
        .collect()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Minutes after 09:30 of `h:m`.
fn at(h: u32, m: u32) -> i64 {
    i64::from(h * 60 + m) - (9 * 60 + 30)
}

/// Minutes of the regular session left out on purpose: (day, first, last) inclusive, as minutes
/// after the open.
fn holes() -> Vec<(NaiveDate, i64, i64)> {
    vec![
        (date("2024-11-12"), at(10, 0), at(10, 44)),
        (date("2024-11-12"), at(15, 59), at(15, 59)),
        (date("2024-12-03"), 0, 389),
        (date("2025-01-15"), at(9, 30), at(9, 31)),
        (date("2025-01-15"), at(12, 0), at(12, 19)),
    ]
}

/// The generated symbol's bars, day by day: every minute of each reference session but the
/// holes; ten pre-market bars on 2025-01-06; five bars after the 13:00 close of the half day
/// 2024-11-29; three bars on Christmas; prices halved from 2024-12-10 (an unadjusted 2:1
/// split), 15 % up from 2025-01-22 11:00 (a jump), 40 identical bars from 2025-01-28 14:00.
fn generated() -> Vec<(NaiveDate, DayColumns)> {
    let mut days: Vec<(NaiveDate, Vec<i64>)> = Vec::new();
    for (day, (minutes, _, _)) in reference() {
        let mut offsets: Vec<i64> = (0..i64::from(minutes))
            .filter(|m| {
                !holes()
                    .iter()
                    .any(|(d, a, b)| *d == day && (*a..=*b).contains(m))
            })
            .collect();
        if day == date("2025-01-06") {
            offsets.splice(0..0, (0..10).map(|m| at(8, 0) + m));
        }
        if day == date("2024-11-29") {
            offsets.extend((0..5).map(|m| at(13, 0) + m));
        }
        days.push((day, offsets));
    }
    days.push((date("2024-12-25"), (0..3).map(|m| at(10, 0) + m).collect()));
    days.sort_by_key(|(d, _)| *d);
    days.into_iter()
        .filter(|(_, o)| !o.is_empty())
        .map(|(day, offsets)| (day, columns_of(day, &offsets)))
        .collect()
}

/// One day's bars at the given minute offsets from 09:30 New York time.
fn columns_of(day: NaiveDate, offsets: &[i64]) -> DayColumns {
    let open = New_York
        .from_local_datetime(&day.and_hms_opt(9, 30, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    let mut cols = DayColumns::default();
    for (i, &m) in offsets.iter().enumerate() {
        let mut ticks = 1_000_000 + (m.rem_euclid(13)) * 10;
        if day >= date("2024-12-10") {
            ticks /= 2;
        }
        if day > date("2025-01-22") || (day == date("2025-01-22") && m >= at(11, 0)) {
            ticks = ticks * 115 / 100;
        }
        let mut volume = 1000.0 + i as f64;
        let run = day == date("2025-01-28") && (at(14, 0)..at(14, 40)).contains(&m);
        if run {
            ticks = 575_000;
            volume = 7.0;
        }
        let p = ticks as f64 / 10_000.0;
        let close = if run {
            p
        } else {
            (ticks + 10) as f64 / 10_000.0
        };
        cols.push(
            open + m * 60_000,
            p,
            p.max(close),
            p.min(close),
            close,
            volume,
        );
    }
    cols
}

/// The report's JSON lines, by `bar-ingest coverage` with `config`.
fn coverage_json(config: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(config)
        .args([
            "coverage", SYMBOL, "--from", FROM, "--to", TO, "--format", "json",
        ])
        .args(extra)
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .output()
        .expect("run coverage");
    assert!(
        out.status.success(),
        "coverage failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every number of the report, as the generated data and the reference say.
fn assert_report(rows: &[serde_json::Value], with_anomalies: bool) {
    let reference = reference();
    assert_eq!(
        rows.len(),
        reference.len() + 1,
        "every session and Christmas"
    );
    let by_day: BTreeMap<NaiveDate, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["day"].as_str().unwrap().parse().unwrap(), r))
        .collect();
    let missing_of = |day: NaiveDate| -> (u64, u64) {
        let mut missing = 0;
        let mut longest = 0;
        for (d, a, b) in holes() {
            if d == day {
                missing += (b - a + 1) as u64;
                longest = longest.max((b - a + 1) as u64);
            }
        }
        (missing, longest)
    };
    for (day, (minutes, _, _)) in &reference {
        let r = by_day[day];
        let (missing, longest) = missing_of(*day);
        assert_eq!(r["symbol"], SYMBOL);
        assert_eq!(r["trading_day"], true, "{day}");
        assert_eq!(
            r["expected"], *minutes,
            "{day}: expected minutes as exchange_calendars says"
        );
        assert_eq!(r["missing"], missing, "{day}");
        assert_eq!(r["present"], u64::from(*minutes) - missing, "{day}");
        assert_eq!(r["longest_gap_minutes"], longest, "{day}");
    }
    assert_eq!(by_day[&date("2024-12-03")]["missing"], 390);
    assert_eq!(by_day[&date("2024-11-29")]["expected"], 210);
    assert_eq!(
        by_day[&date("2025-01-06")]["bars"],
        400,
        "pre-market bars are stored"
    );
    let christmas = by_day[&date("2024-12-25")];
    assert_eq!(christmas["trading_day"], false);
    assert_eq!(
        (
            christmas["expected"].as_u64(),
            christmas["present"].as_u64()
        ),
        (Some(0), Some(3))
    );
    let mut found: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| {
            let day = r["day"].as_str().unwrap().to_owned();
            r["anomalies"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |a| (day.clone(), a["kind"].as_str().unwrap().to_owned()))
        })
        .collect();
    found.sort();
    let mut want = vec![("2024-11-29".to_owned(), "after_early_close".to_owned())];
    if with_anomalies {
        want.extend([
            ("2024-12-10".to_owned(), "suspected_split".to_owned()),
            ("2025-01-22".to_owned(), "price_jump".to_owned()),
            ("2025-01-28".to_owned(), "identical_run".to_owned()),
        ]);
    }
    want.sort();
    assert_eq!(found, want);
    if with_anomalies {
        let reason = by_day[&date("2024-12-10")]["anomalies"][0]["reason"]
            .as_str()
            .unwrap();
        assert!(
            reason.contains("overnight") && reason.contains("1:2"),
            "{reason}"
        );
        let run = by_day[&date("2025-01-28")]["anomalies"][0]["reason"]
            .as_str()
            .unwrap();
        assert!(run.starts_with("40 identical"), "{run}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn day_cells_report_the_known_holes_and_anomalies() {
    let (session, schema, _) = common::fresh_schema("cov_days").await;
    let days = generated();
    common::write_day_cells(&session, &schema, SYMBOL, &days).await;
    let site = common::Site::new(&schema.keyspace);
    let config = site.config("c", "");
    let rows = coverage_json(&config, &[]);
    assert_report(&rows, false);
    assert_report(&coverage_json(&config, &["--anomalies"]), true);
    let all = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(&config)
        .args([
            "coverage", "--all", "--from", FROM, "--to", TO, "--format", "json",
        ])
        .output()
        .unwrap();
    let all: Vec<serde_json::Value> = String::from_utf8(all.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all, rows, "--all finds the one symbol stored");
    let table = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(&config)
        .args([
            "coverage", SYMBOL, "--from", FROM, "--to", TO, "--format", "table",
        ])
        .arg("--anomalies")
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    eprintln!("{table}");
    assert!(
        table.contains("DEFX") && table.contains("worst days:"),
        "{table}"
    );
    let line = |start: &str| {
        table
            .lines()
            .find(|l| l.starts_with(start))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("DEFX       2024-12-03").as_deref(),
        Some("DEFX 2024-12-03 390 0 390 390")
    );
    assert_eq!(
        line("DEFX       2024-11-12").as_deref(),
        Some("DEFX 2024-11-12 390 344 46 45")
    );
    assert_eq!(
        line("DEFX             61").as_deref(),
        Some("DEFX 61 60 58 23430 22972 98.05 1 4")
    );
    common::drop_keyspace(&session, &schema).await;
}

/// The FirstRate text of the generated bars (New York time).
fn firstrate_text(days: &[(NaiveDate, DayColumns)]) -> String {
    let mut text = String::new();
    for (_, cols) in days {
        for i in 0..cols.len() {
            let t = chrono::DateTime::from_timestamp_millis(cols.times[i])
                .unwrap()
                .with_timezone(&New_York);
            text.push_str(&format!(
                "{},{:.4},{:.4},{:.4},{:.4},{}\n",
                t.format("%Y-%m-%d %H:%M:%S"),
                cols.open[i],
                cols.high[i],
                cols.low[i],
                cols.close[i],
                cols.volume[i]
            ));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn bar_rows_give_the_same_report() {
    let (session, schema, _) = common::fresh_schema("cov_rows").await;
    let site = common::Site::new(&schema.keyspace);
    let config = site.config("c", "[storage]\nlayout = \"rows\"\n");
    let file = site
        .dir
        .path()
        .join(format!("{SYMBOL}_full_1min_adjsplit.txt"));
    std::fs::write(&file, firstrate_text(&generated())).unwrap();
    let (code, stderr) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "load failed: {stderr}");
    assert_report(&coverage_json(&config, &[]), false);
    assert_report(&coverage_json(&config, &["--anomalies"]), true);
    common::drop_keyspace(&session, &schema).await;
}
