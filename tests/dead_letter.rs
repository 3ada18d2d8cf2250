//! The dead-letter log of a hostile or broken file (issue 11, "disk fill from one file"): kept
//! within its per-file budget with exact counts in a summary line, validation stopped once the
//! file is certain to be quarantined (the fingerprint still of the whole file), and log names
//! made from the input name's bytes (long names, names differing in invalid UTF-8).
//!
//! The metrics recorder is global to the process: the tests of this binary run one at a time
//! ([`SERIAL`]) so that one test's loads do not move the counters another reads.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bar_ingest::account::history::Outcome;
use bar_ingest::config::{DeadLetterConfig, Settings};
use bar_ingest::ingest::{FileResult, FileSummary, LoadOptions};
use common::{Site, unique_keyspace, wait_until_async};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One test at a time: they read process-wide metrics.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(120);

/// The `i`th good line of a file (times increase with `i`).
fn good(i: u32) -> String {
    let (day, minute) = (1 + i / 1440, i % 1440);
    format!(
        "2021-03-{day:02} {:02}:{:02}:00,10,11,9,10.5,100\n",
        minute / 60,
        minute % 60
    )
}

/// Bytes of every file in `dir` whose name ends with `suffix`.
fn bytes_of(dir: &Path, suffix: &[u8]) -> u64 {
    entries(dir)
        .iter()
        .filter(|p| p.as_os_str().as_bytes().ends_with(suffix))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// Every entry of `dir` (none if it does not exist), sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The JSON lines of a dead-letter log.
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The one dead-letter log in `dir`: its entries and its summary line.
fn the_log(dir: &Path) -> (PathBuf, Vec<Value>, Value) {
    let logs = entries(dir);
    assert_eq!(
        logs.len(),
        1,
        "one log expected in {}: {logs:?}",
        dir.display()
    );
    let mut lines = json_lines(&logs[0]);
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["summary"], true, "the last line is the summary");
    (logs[0].clone(), lines, summary)
}

/// `by_reason` of a summary line as a map.
fn by_reason(summary: &Value) -> BTreeMap<String, u64> {
    summary["by_reason"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// A loader on a fresh keyspace: loads files (named by bytes) and reads the load history.
struct Bench {
    session: scylla::client::session::Session,
    schema: bar_ingest::store::Schema,
    loader: std::sync::Arc<bar_ingest::ingest::Loader>,
    dir: tempfile::TempDir,
}

impl Bench {
    async fn new(name: &str) -> Self {
        let (session, schema, mut settings) = common::fresh_schema(name).await;
        // A short instance name, as in the report of the 230-byte name.
        settings.ingest.instance = "a".into();
        let dir = tempfile::tempdir().unwrap();
        let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
        Self {
            session,
            schema,
            loader,
            dir,
        }
    }

    fn dead_letters(&self) -> PathBuf {
        self.dir.path().join("dead-letter")
    }

    /// Writes `content` under the file name `name` (bytes) and loads it.
    async fn load(&self, name: &[u8], content: &[u8], force: bool) -> FileResult {
        let path = self.dir.path().join(OsString::from_vec(name.to_vec()));
        std::fs::write(&path, content).unwrap();
        let options = LoadOptions {
            force,
            ..LoadOptions::default()
        };
        self.loader
            .load(&path, options, &CancellationToken::new(), None)
            .await
            .into_single()
            .expect("a plain file is one unit")
    }

    /// The load-history row of `fingerprint`.
    async fn history(&self, fingerprint: &str) -> bar_ingest::account::history::HistoryRecord {
        common::history(&self.session, &self.schema)
            .await
            .into_iter()
            .find(|r| r.fingerprint == fingerprint)
            .expect("a load-history row for the file")
    }

    async fn finish(self) {
        common::drop_keyspace(&self.session, &self.schema).await;
    }
}

fn quarantined(result: FileResult) -> (FileSummary, String) {
    match result {
        FileResult::Quarantined(s, why) => (s, why),
        other => panic!("expected quarantined, got {other:?}"),
    }
}

fn loaded(result: FileResult) -> FileSummary {
    match result {
        FileResult::Loaded(s) => s,
        other => panic!("expected loaded, got {other:?}"),
    }
}

/// A budget-bounded log: the kept lines within `max_bytes_per_file`, plus one summary line.
fn assert_within_budget(dir: &Path) {
    let budget = DeadLetterConfig::default().max_bytes_per_file;
    let (path, _, _) = the_log(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    let summary_bytes = text.lines().last().unwrap().len() as u64 + 1;
    let total = std::fs::metadata(&path).unwrap().len();
    assert!(
        total <= budget + summary_bytes,
        "{total} bytes of dead letters, budget {budget} + a {summary_bytes}-byte summary"
    );
}

/// 1 MB of blank lines then one bar: 167 MB of dead letters before (one JSON line per blank
/// line, 03a59b9 and main), now bounded by the budget; quarantined with the examined counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_of_blank_lines_leaves_a_bounded_log_and_a_quarantined_file() {
    let _serial = SERIAL.lock().await;
    let bench = Bench::new("dl_blank").await;
    let mut content = vec![b'\n'; 1_000_000];
    content.extend_from_slice(good(0).as_bytes());
    let result = bench
        .load(b"BLNK_full_1min_adjsplit.txt", &content, false)
        .await;
    let (summary, why) = quarantined(result);
    let bytes = bytes_of(&bench.dead_letters(), b".rejects.jsonl");
    eprintln!(
        "{} input bytes of blank lines: {bytes} bytes of dead letters",
        content.len()
    );
    assert_within_budget(&bench.dead_letters());
    assert!(bytes < 64 * 1024, "{bytes} bytes of dead letters");
    let (_, kept, log_summary) = the_log(&bench.dead_letters());
    let stopped = log_summary["scan_stopped_after_line"].as_u64().unwrap();
    // Exact counts of what was examined: every row up to the stop is a rejected blank line.
    assert_eq!(summary.rows_in, stopped);
    assert_eq!(summary.rows_rejected, stopped);
    assert_eq!(summary.rejected_by_reason.get("blank_line"), Some(&stopped));
    assert_eq!(kept.len() as u64, stopped);
    assert_eq!(log_summary["rejected"], stopped);
    assert!(
        why.contains(&format!("stopped early after line {stopped}")),
        "{why}"
    );
    let history = bench.history(&summary.fingerprint).await;
    assert_eq!(history.outcome, Outcome::Quarantined);
    assert_eq!(
        (history.rows_in, history.rows_rejected),
        (stopped as i64, stopped as i64)
    );
    assert_eq!(history.error.as_deref(), Some(why.as_str()));
    bench.finish().await;
}

/// 500k lines of `x`: 96 MB of dead letters before; now the first 1000 lines and a summary,
/// with the scan stopped well before the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_million_lines_of_x_keep_the_first_thousand_and_count_the_rest() {
    let _serial = SERIAL.lock().await;
    let bench = Bench::new("dl_xlines").await;
    let content = b"x\n".repeat(500_000);
    let result = bench
        .load(b"XXXX_full_1min_adjsplit.txt", &content, false)
        .await;
    let (summary, _why) = quarantined(result);
    let bytes = bytes_of(&bench.dead_letters(), b".rejects.jsonl");
    eprintln!(
        "{} input bytes of `x` lines: {bytes} bytes of dead letters",
        content.len()
    );
    assert_within_budget(&bench.dead_letters());
    let (_, kept, log_summary) = the_log(&bench.dead_letters());
    let max_lines = DeadLetterConfig::default().max_lines_per_file;
    assert_eq!(kept.len() as u64, max_lines);
    let lines: Vec<u64> = kept.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, (1..=max_lines).collect::<Vec<_>>(), "the first ones");
    assert!(kept.iter().all(|e| e["raw"] == "x"));
    let rejected = summary.rows_rejected;
    assert_eq!(log_summary["rejected"], rejected);
    assert_eq!(log_summary["kept"], max_lines);
    assert_eq!(log_summary["dropped"], rejected - max_lines);
    assert_eq!(summary.dead_letter_dropped, rejected - max_lines);
    assert_eq!(
        by_reason(&log_summary),
        BTreeMap::from([("field_count".to_owned(), rejected)])
    );
    assert_eq!(summary.rows_in, rejected);
    assert_eq!(log_summary["scan_stopped_after_line"], rejected);
    assert!(
        rejected < 50_000,
        "stopped after {rejected} of 500000 lines"
    );
    bench.finish().await;
}

/// Below the threshold, every rejected line is kept in full: the budget only bites on files
/// with more rejects than `max_lines_per_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_bad_rows_below_the_threshold_are_all_kept_in_full() {
    let _serial = SERIAL.lock().await;
    let bench = Bench::new("dl_few").await;
    let bad = [
        "2021-03-01 09:30:00,ten,11,9,10.5,100".to_owned(),
        "2021-03-01 09:31:00,10,11,12,10.5,100".to_owned(),
        format!("2021-03-01 09:32:00,10,11,9,10.5,1{}", "0".repeat(700)),
        "no commas at all".to_owned(),
    ];
    let mut content = String::new();
    let mut bad_lines = Vec::new();
    for i in 0..40 {
        content.push_str(&good(100 + i));
        if i % 10 == 3 {
            content.push_str(&bad[(i / 10) as usize]);
            content.push('\n');
            bad_lines.push(content.lines().count() as u64);
        }
    }
    let summary = loaded(
        bench
            .load(b"FEW_full_1min_adjsplit.txt", content.as_bytes(), false)
            .await,
    );
    assert_eq!((summary.rows_in, summary.rows_rejected), (44, 4));
    let (_, kept, log_summary) = the_log(&bench.dead_letters());
    let lines: Vec<u64> = kept.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, bad_lines);
    for (entry, text) in kept.iter().zip(&bad) {
        let raw = entry["raw"].as_str().unwrap();
        if text.len() <= 512 {
            assert_eq!(raw, text, "kept in full");
        } else {
            assert!(raw.starts_with(&text[..512]), "{raw}");
            assert!(
                raw.ends_with(&format!("…[truncated, {} bytes]", text.len())),
                "{raw}"
            );
        }
    }
    assert_eq!(log_summary["rejected"], 4);
    assert_eq!(log_summary["kept"], 4);
    assert_eq!(log_summary["dropped"], 0);
    assert!(log_summary["scan_stopped_after_line"].is_null());
    bench.finish().await;
}

/// The scan stops early, yet the fingerprint is the BLAKE3 of the whole file: two files that
/// differ only after the stop have different fingerprints, each that of its whole content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_stop_still_fingerprints_the_whole_file() {
    let _serial = SERIAL.lock().await;
    let bench = Bench::new("dl_hash").await;
    let mut first = b"bad\n".repeat(100_000);
    let mut second = first.clone();
    first.extend_from_slice(good(0).as_bytes());
    second.extend_from_slice(good(1).as_bytes());
    let mut fingerprints = Vec::new();
    for (name, content) in [(&b"HASH_a.txt"[..], &first), (&b"HASH_b.txt"[..], &second)] {
        let (summary, why) = quarantined(bench.load(name, content, false).await);
        let stopped = summary.scan_stopped_after_line.expect("an early stop");
        assert!(stopped < 20_000, "stopped after line {stopped} of 100001");
        assert!(why.contains(&format!("after line {stopped}")), "{why}");
        assert_eq!(summary.rows_in, stopped);
        assert_eq!(summary.size_bytes, content.len() as u64);
        assert_eq!(
            summary.fingerprint,
            blake3::hash(content).to_hex().to_string()
        );
        let history = bench.history(&summary.fingerprint).await;
        assert_eq!(history.rows_in, stopped as i64);
        fingerprints.push(summary.fingerprint);
    }
    assert_ne!(fingerprints[0], fingerprints[1]);
    bench.finish().await;
}

/// A 230-byte name with one reject: the log's final name is shortened to fit (the old one was
/// 257 bytes: ENAMETOOLONG on the rename, and a `.tmp` left behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_230_byte_name_with_one_reject_leaves_a_final_log_and_no_tmp() {
    let _serial = SERIAL.lock().await;
    let bench = Bench::new("dl_long").await;
    let name = format!("LONG_{}_full_1min_adjsplit.txt", "n".repeat(202));
    assert_eq!(name.len(), 230);
    let content = format!("{}{}bad\n{}", good(0), good(1), good(2));
    let summary = loaded(bench.load(name.as_bytes(), content.as_bytes(), false).await);
    assert_eq!(summary.rows_rejected, 1);
    let files = entries(&bench.dead_letters());
    assert_eq!(files.len(), 1, "one final log, no .tmp: {files:?}");
    let log_name = files[0].file_name().unwrap().as_bytes();
    assert!(log_name.ends_with(b".rejects.jsonl") && log_name.len() <= 255);
    assert_eq!(summary.dead_letter.as_deref(), Some(files[0].as_path()));
    let (_, kept, _) = the_log(&bench.dead_letters());
    assert_eq!(kept[0]["file"], name.as_str());
    bench.finish().await;
}

/// Two names that differ only in a byte that is not UTF-8 (the same content, loaded again with
/// `--force`): two logs. Before, both mapped to one lossy name and shared one log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_names_differing_only_in_an_invalid_byte_get_two_logs() {
    let _serial = SERIAL.lock().await;
    let bench = Bench::new("dl_bytes").await;
    let content = format!("{}bad\n{}{}", good(0), good(1), good(2));
    for (i, name) in [&b"BADB_\xff_full.txt"[..], &b"BADB_\xfe_full.txt"[..]]
        .into_iter()
        .enumerate()
    {
        loaded(bench.load(name, content.as_bytes(), i > 0).await);
    }
    let files = entries(&bench.dead_letters());
    assert_eq!(files.len(), 2, "{files:?}");
    let shown: Vec<String> = files
        .iter()
        .map(|f| json_lines(f)[0]["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, vec!["BADB_\\xfe_full.txt", "BADB_\\xff_full.txt"]);
    bench.finish().await;
}

/// Rejected rows by reason, and dropped dead-letter lines, moved between two scrapes.
fn reject_deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> (BTreeMap<String, u64>, u64) {
    let delta =
        |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    let by_reason = after
        .keys()
        .filter_map(|k| {
            let reason = k
                .strip_prefix("bar_ingest_rows_rejected_total{reason=\"")?
                .strip_suffix("\"}")?;
            let d = delta(k);
            (d != 0.0).then(|| (reason.to_owned(), d as u64))
        })
        .collect();
    (
        by_reason,
        delta("bar_ingest_dead_letter_lines_dropped_total") as u64,
    )
}

/// The daemon, in-process: for a loaded file over the line budget and a quarantined file
/// stopped early, the summary's counts by reason equal the metric deltas, the dropped lines
/// equal the dropped metric's delta, and the sidecar says after which line the scan stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_equal_the_metric_deltas_and_the_sidecar_names_the_stop() {
    let _serial = SERIAL.lock().await;
    let site = Site::new(&unique_keyspace("dl_metrics"));
    let config = site.config("a", "");
    let port = common::free_port();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&config, text).unwrap();
    let settings = Settings::load(&config, None).unwrap();
    let addr = settings.metrics_listen;
    let daemon = common::InProcess::start(settings.clone());
    wait_until_async(WAIT, "the daemon ready", || async {
        matches!(common::http_get(addr, "/readyz"), Ok((200, _)))
    })
    .await;

    // Loaded: 4000 good rows, 1500 rejects of three reasons (500 over the 1000-line budget).
    let mut mixed = String::new();
    for i in 0..4000u32 {
        mixed.push_str(&good(i));
        match i % 8 {
            0 => mixed.push_str("2021-03-01 09:30:00,ten,11,9,10.5,100\n"),
            3 => mixed.push_str("only,three,fields\n"),
            5 => mixed.push_str("2021-13-01 09:30:00,10,11,9,10.5,100\n"),
            _ => {}
        }
    }
    // Quarantined, stopped early: short lines of three reasons in turn, no good row.
    let mut bad = String::new();
    for i in 0..30_000u32 {
        bad.push_str(match i % 3 {
            0 => "x\n",
            1 => "1,1,1,1,1,1\n",
            _ => "\u{1}\n",
        });
    }
    let cases = [
        ("MIXD_full_1min_adjsplit.txt", mixed, "done"),
        ("QUAR_full_1min_adjsplit.txt", bad, "failed"),
    ];
    for (name, content, folder) in cases {
        let before = common::scrape(addr);
        std::fs::write(site.inbox().join(name), &content).unwrap();
        let sidecar = format!("{name}.error.json");
        wait_until_async(WAIT, &format!("{name} in {folder}/"), || async {
            let there = site.files_in(folder);
            there.iter().any(|p| p.ends_with(name))
                && (folder == "done" || there.iter().any(|p| p.ends_with(&sidecar)))
        })
        .await;
        let (metric_by_reason, metric_dropped) = reject_deltas(&before, &common::scrape(addr));
        let dead_letters = site.state().join("dead-letter");
        let log = entries(&dead_letters)
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .as_bytes()
                    .starts_with(name.as_bytes())
            })
            .expect("the file's dead-letter log");
        let summary = json_lines(&log).pop().unwrap();
        assert_eq!(by_reason(&summary), metric_by_reason, "{name}: by reason");
        assert_eq!(
            summary["dropped"].as_u64().unwrap(),
            metric_dropped,
            "{name}: dropped"
        );
        assert!(metric_dropped > 0, "{name}: over the budget");
        if folder == "failed" {
            let stopped = summary["scan_stopped_after_line"].as_u64().unwrap();
            assert!(stopped < 10_000, "stopped after line {stopped} of 30000");
            let sidecar = site.state().join("failed").join(&sidecar);
            let sidecar: Value =
                serde_json::from_str(&std::fs::read_to_string(sidecar).unwrap()).unwrap();
            let error = sidecar["error"].as_str().unwrap();
            assert!(
                error.contains(&format!("stopped early after line {stopped}")),
                "{error}"
            );
            assert_eq!(sidecar["rows_in"], stopped);
            assert_eq!(sidecar["rows_rejected"], stopped);
        } else {
            assert!(summary["scan_stopped_after_line"].is_null());
            assert_eq!(summary["rejected"], 1500);
        }
    }
    assert!(daemon.stop().await.is_ok());
    let session = common::connect(&settings).await;
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    common::drop_keyspace(&session, &schema).await;
}
