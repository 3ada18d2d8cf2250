//! Every outcome a file can have, with the exact metric deltas it causes (the daemon run
//! in-process, its /metrics read before and after each file), and every exit code of every
//! command in the README's table.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bar_ingest::config::Settings;
use common::{Site, run_load, unique_keyspace, wait_until_async};

const WAIT: Duration = Duration::from_secs(60);

const GOOD: &str = "2021-03-01 09:30:00,10,11,9,10.5,100\n";
const GOOD2: &str = "2021-03-01 09:31:00,10,11,9,10.5,100\n";
const BAD: &str = "2021-03-01 09:32:00,ten,11,9,10.5,100\n";
const BAD2: &str = "2021-03-01 09:33:00,10,11,9,x,100\n";

/// The series that changed between two scrapes, with their deltas (histograms and gauges of
/// time left out: only counters of files, rows and bytes).
fn deltas(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(k, _)| {
            k.starts_with("bar_ingest_files_total")
                || k.starts_with("bar_ingest_rows_")
                || k.starts_with("bar_ingest_task_panics_total")
        })
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d != 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_moves_exactly_its_counters() {
    let site = Site::new(&unique_keyspace("outcomes"));
    let port = common::free_port();
    let config = site.config("a", "");
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

    // (file name, content, folder it must end in, expected deltas)
    let cases: Vec<(&str, String, &str, BTreeMap<String, f64>)> = vec![
        (
            "HALF_full_1min_adjsplit.txt",
            format!("{GOOD}{GOOD2}{BAD}{BAD2}"),
            "done",
            expect(&[
                ("bar_ingest_files_total{outcome=\"loaded\"}", 1.0),
                ("bar_ingest_rows_written_total", 2.0),
                ("bar_ingest_rows_rejected_total{reason=\"bad_number\"}", 2.0),
            ]),
        ),
        (
            "OVER_full_1min_adjsplit.txt",
            format!("{GOOD}{BAD}{BAD2}"),
            "failed",
            expect(&[
                ("bar_ingest_files_total{outcome=\"quarantined\"}", 1.0),
                ("bar_ingest_rows_rejected_total{reason=\"bad_number\"}", 2.0),
            ]),
        ),
        (
            "_no_symbol.txt",
            GOOD.to_owned(),
            "failed",
            expect(&[("bar_ingest_files_total{outcome=\"failed\"}", 1.0)]),
        ),
        (
            "EMPT_full_1min_adjsplit.txt",
            String::new(),
            "failed",
            expect(&[("bar_ingest_files_total{outcome=\"empty\"}", 1.0)]),
        ),
        (
            // The content of HALF again, under its own name: a duplicate.
            "HALF_full_1min_adjsplit.txt",
            format!("{GOOD}{GOOD2}{BAD}{BAD2}"),
            "duplicates",
            expect(&[("bar_ingest_files_total{outcome=\"duplicate\"}", 1.0)]),
        ),
    ];
    for (name, content, folder, want) in cases {
        let before = common::scrape(addr);
        let data_files = || {
            site.files_in(folder)
                .iter()
                .filter(|p| !p.to_string_lossy().ends_with(".error.json"))
                .count()
        };
        let in_folder = data_files();
        std::fs::write(site.inbox().join(name), &content).unwrap();
        wait_until_async(WAIT, &format!("{name} in {folder}/"), || async {
            data_files() > in_folder
        })
        .await;
        // Metrics are recorded before the file is moved; one scrape after is enough.
        let got = deltas(&before, &common::scrape(addr));
        assert_eq!(got, want, "{name}: metric deltas");
    }
    assert!(daemon.stop().await.is_ok());
    let session = common::connect(&settings).await;
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    common::drop_keyspace(&session, &schema).await;
}

/// Runs the binary with `args`; returns its exit code.
fn exit_code(args: &[&str]) -> i32 {
    Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .args(args)
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .env_remove("BAR_INGEST_CONFIG")
        .output()
        .expect("run bar-ingest")
        .status
        .code()
        .unwrap_or(-1)
}

/// A config whose database cannot be reached (nothing listens on port 1).
fn unreachable_config(site: &Site) -> std::path::PathBuf {
    let config = site.config("a", "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&common::contact_points(), "127.0.0.1:1");
    std::fs::write(
        &config,
        text.replace(
            "request_timeout = \"10s\"",
            "request_timeout = \"2s\"\nconnect_timeout = \"2s\"",
        ),
    )
    .unwrap();
    config
}

#[test]
fn every_command_exits_with_the_codes_the_readme_gives() {
    let site = Site::new(&unique_keyspace("exits"));
    let good = site.config("a", "");
    let down = unreachable_config(&Site::new("exits_down"));
    let c = |p: &Path| p.to_str().unwrap().to_owned();
    let dir = site.dir.path();
    std::fs::write(dir.join("CLEAN_full_1min_adjsplit.txt"), GOOD).unwrap();
    std::fs::write(
        dir.join("PART_full_1min_adjsplit.txt"),
        format!("{GOOD}{GOOD2}{BAD}"),
    )
    .unwrap();

    // init-schema: 0, or 2 when the database is unreachable.
    assert_eq!(exit_code(&["--config", &c(&good), "init-schema"]), 0);
    assert_eq!(exit_code(&["--config", &c(&down), "init-schema"]), 2);
    // load: 0 all written, 1 rows rejected, 2 a bad path or no database.
    let clean = c(&dir.join("CLEAN_full_1min_adjsplit.txt"));
    let part = c(&dir.join("PART_full_1min_adjsplit.txt"));
    assert_eq!(run_load(&good, &[&clean]).0, 0);
    assert_eq!(run_load(&good, &[&part]).0, 1);
    assert_eq!(run_load(&good, &[&c(&dir.join("missing.txt"))]).0, 2);
    assert_eq!(run_load(&down, &[&clean]).0, 2);
    // fetch: 0, or 2 for a bad argument or an unreachable database.
    let fetch = |config: &Path, from: &str| {
        exit_code(&[
            "--config",
            &c(config),
            "fetch",
            "CLEAN",
            "--from",
            from,
            "--to",
            "2021-03-02",
        ])
    };
    assert_eq!(fetch(&good, "2021-03-01"), 0);
    assert_eq!(fetch(&good, "2021-03-05"), 2, "--from after --to");
    assert_eq!(fetch(&good, "not-a-date"), 2);
    assert_eq!(fetch(&down, "2021-03-01"), 2);
    // check-config: 0 valid, 2 invalid.
    assert_eq!(exit_code(&["check-config", &c(&good)]), 0);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[database]\ncontact_pointz = [\"x\"]\n").unwrap();
    assert_eq!(exit_code(&["check-config", &c(&bad)]), 2);
    // run: 2 when it cannot start (the inbox is a file). Exit 0 after SIGTERM and 143 after a
    // second one are pinned by tests/faults.rs.
    let broken = Site::new(&unique_keyspace("exits_run"));
    std::fs::remove_dir(broken.inbox()).unwrap();
    std::fs::write(broken.inbox(), "a file").unwrap();
    assert_eq!(
        exit_code(&["--config", &c(&broken.config("a", "")), "run"]),
        2
    );

    let settings = Settings::load(&good, None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let session = common::connect(&settings).await;
        let schema = bar_ingest::store::Schema::from_config(&settings.database);
        common::drop_keyspace(&session, &schema).await;
    });
}
