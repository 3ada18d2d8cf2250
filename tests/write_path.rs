//! The write path's regression tests (issue 19, the review's findings): each test is named after
//! the defect it pins, runs the real loader or the real binary on real folders against the real
//! node, and failed before its fix.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bar_ingest::ingest::{FileResult, LoadOptions, Progress};
use common::{Stored, expected_bars};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

/// `per_day` one-minute bars a day from 04:00 on each of `n_days` weekdays from 2021-03-01;
/// `version` sets the prices and volumes.
fn bars(n_days: u32, per_day: u32, version: u32) -> String {
    bars_from(chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap(), n_days, per_day, version)
}

fn bars_from(mut day: chrono::NaiveDate, n_days: u32, per_day: u32, version: u32) -> String {
    use chrono::Datelike;
    let mut out = String::new();
    let mut days = 0;
    while days < n_days {
        if day.weekday().number_from_monday() <= 5 {
            for m in 0..per_day {
                let t = chrono::NaiveTime::from_hms_opt(4, 0, 0).unwrap()
                    + chrono::TimeDelta::minutes(i64::from(m));
                let p = f64::from(version) * 10.0 + f64::from(m % 50) / 10.0;
                out.push_str(&format!(
                    "{day} {t},{p},{},{},{p},{}\n",
                    p + 1.0,
                    p - 1.0,
                    m + version
                ));
            }
            days += 1;
        }
        day = day.succ_opt().unwrap();
    }
    out
}

fn write_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, body).unwrap();
    f
}

/// How a file is changed once pass 1 has read it whole.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// A day of bars appended.
    Append,
    /// The last line's volume rewritten in place (same length).
    Rewrite,
}

/// Pass 2 read to the file's current end and wrote its rows before the fingerprints were
/// compared: rows appended (or changed) after pass 1 were written unvalidated. Now pass 2 reads
/// only pass 1's content, each chunk checked first, and a changed file is handed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_2_wrote_rows_appended_or_changed_after_pass_1() {
    for change in [Change::Append, Change::Rewrite] {
        let (session, schema, mut settings) = common::fresh_schema("wp_grow").await;
        // Pass 2 paced so that it is still reading when the file changes.
        settings.ingest.pace.rows_per_second = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
        let mut body = bars(50, 960, 1);
        // The last line, with a volume of its own that the rewrite changes.
        body.push_str("2021-05-28 19:00:00,5,6,4,5,11111\n");
        let file = write_file(&dir.path().join("in"), "GROW_full_1min_adjsplit.txt", &body);
        let size = body.len() as u64;
        let progress = Arc::new(Progress::default());
        let changer = {
            let (progress, file) = (progress.clone(), file.clone());
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                // Pass 2 has begun (both passes count their bytes): pass 1 is over.
                while progress.bytes.load(Ordering::Relaxed) <= size {
                    assert!(start.elapsed() < WAIT, "pass 1 never ended");
                    std::thread::sleep(Duration::from_millis(1));
                }
                match change {
                    Change::Append => {
                        let later = chrono::NaiveDate::from_ymd_opt(2021, 6, 1).unwrap();
                        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
                        f.write_all(bars_from(later, 1, 60, 9).as_bytes()).unwrap();
                    }
                    Change::Rewrite => {
                        use std::os::unix::fs::FileExt;
                        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                        f.write_all_at(b"22222", size - 6).unwrap();
                    }
                }
            })
        };
        let result = loader
            .load(
                &file,
                LoadOptions::default(),
                &CancellationToken::new(),
                Some(progress),
            )
            .await
            .into_single()
            .expect("one unit");
        changer.join().unwrap();
        assert!(
            matches!(result, FileResult::Changed(_)),
            "{change:?}: {result:?}"
        );
        let validated = expected_bars("GROW", &body);
        let by_time: std::collections::HashMap<i64, &Stored> =
            validated.iter().map(|b| (b.1, b)).collect();
        let stored = common::all_bars(&session, &schema).await;
        let unvalidated: Vec<&Stored> = stored
            .iter()
            .filter(|b| by_time.get(&b.1) != Some(b))
            .collect();
        assert!(
            unvalidated.is_empty(),
            "{change:?}: {} rows written that pass 1 never validated, e.g. {:?}",
            unvalidated.len(),
            unvalidated.first()
        );
        common::drop_keyspace(&session, &schema).await;
    }
}
