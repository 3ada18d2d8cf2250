//! The database goes away for 30 s in the middle of a load: the daemon stays up, dead-letters
//! nothing, and finishes the load once the node is back.
//!
//! This stops the shared dev node, so it must not run beside other tests: it is `#[ignore]`d
//! and `scripts/test` runs it on its own afterwards (`cargo test --test outage -- --ignored`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bar_gen::GenSpec;
use bar_ingest::account::history::Outcome;
use chrono::NaiveDate;
use common::{Site, all_bars, expected_bars, history};

const WAIT: Duration = Duration::from_secs(300);
const OUTAGE: Duration = Duration::from_secs(30);

fn dev_db(action: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-db");
    let status = Command::new(script)
        .arg(action)
        .status()
        .expect("run scripts/dev-db");
    assert!(status.success(), "scripts/dev-db {action} failed");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared dev node; scripts/test runs it alone"]
async fn node_stopped_for_30_s_mid_load_pauses_and_then_completes() {
    let (session, schema, _) = common::fresh_schema("outage").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("o", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[ingest]\n",
        "[ingest]\nbatch_rows = 5\nmax_batches_in_flight = 2\n",
    );
    std::fs::write(&config, text).unwrap();

    let spec = GenSpec {
        symbols: vec!["OUT".into()],
        start: NaiveDate::from_ymd_opt(2018, 1, 2).unwrap(),
        end: NaiveDate::from_ymd_opt(2018, 2, 28).unwrap(),
        seed: 30,
    };
    let mut buf = Vec::new();
    bar_gen::write_symbol(&spec, "OUT", &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let expected = expected_bars("OUT", &text);

    let mut daemon = site.spawn_daemon(&config);
    std::fs::write(site.inbox().join(bar_gen::file_name("OUT")), &text).unwrap();
    common::wait_until(WAIT, "the file claimed", || {
        !site.files_in("processing/o").is_empty()
    });
    drop(session);

    dev_db("stop");
    let stopped_at = std::time::Instant::now();
    while stopped_at.elapsed() < OUTAGE {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited while the database was down:\n{}",
            site.log("o")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        site.files_in("done").is_empty(),
        "the load cannot have finished without the node"
    );
    // The retries show in the metrics while the node is away, not only in the log.
    let endpoint = common::endpoint_from_log(&site.log("o")).expect("the endpoint in the log");
    let retries = write_retries(endpoint);
    assert!(
        retries > 0.0,
        "bar_ingest_write_retries_total is {retries} during the outage"
    );
    dev_db("start");

    common::wait_until(WAIT, "the file in done/", || {
        site.files_in("done").len() == 1
    });
    assert!(common::terminate(&mut daemon).success());
    let log = site.log("o");
    assert!(log.contains("retrying"), "no retry was logged:\n{log}");
    assert!(
        site.files_in("dead-letter").is_empty(),
        "nothing may be dead-lettered for an outage"
    );
    assert!(site.files_in("failed").is_empty());

    let session = common::connect(&common::settings(&schema.keyspace)).await;
    assert_eq!(all_bars(&session, &schema).await, expected);
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Loaded);
    assert_eq!(records[0].rows_written as usize, expected.len());
    common::drop_keyspace(&session, &schema).await;
}

/// The sum of `bar_ingest_write_retries_total` over its causes, from /metrics.
fn write_retries(endpoint: std::net::SocketAddr) -> f64 {
    let (status, body) = common::http_get(endpoint, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| l.starts_with("bar_ingest_write_retries_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// `/readyz` follows the database: 200 while the node is up, 503 saying "database
/// unreachable" within a few probe intervals of `scripts/dev-db stop`, 200 again once
/// `scripts/dev-db start` brought it back. `/healthz` answers 200 throughout.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared dev node; scripts/test runs it alone"]
async fn readyz_is_503_while_the_node_is_stopped_and_200_after_it_returns() {
    let (session, schema, _) = common::fresh_schema("outage_readyz").await;
    drop(session);
    let site = Site::new(&schema.keyspace);
    let config = site.config("r", "");
    let mut daemon = site.spawn_daemon(&config);
    let mut endpoint = None;
    common::wait_until(WAIT, "the daemon to log its endpoint", || {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited:\n{}",
            site.log("r")
        );
        endpoint = common::endpoint_from_log(&site.log("r"));
        endpoint.is_some()
    });
    let endpoint = endpoint.unwrap();
    let readyz = || common::http_get(endpoint, "/readyz").expect("GET /readyz");
    let healthz_ok = || common::http_get(endpoint, "/healthz").is_ok_and(|(s, _)| s == 200);
    common::wait_until(WAIT, "/readyz 200 with the node up", || readyz().0 == 200);

    dev_db("stop");
    common::wait_until(WAIT, "/readyz 503 with the node stopped", || {
        assert!(
            healthz_ok(),
            "/healthz must answer 200 while the process runs"
        );
        readyz().0 == 503
    });
    let (_, body) = readyz();
    assert!(body.contains("database unreachable"), "{body}");
    dev_db("start");

    common::wait_until(WAIT, "/readyz 200 after the node returned", || {
        assert!(
            healthz_ok(),
            "/healthz must answer 200 while the process runs"
        );
        readyz().0 == 200
    });
    assert!(common::terminate(&mut daemon).success());
    let session = common::connect(&common::settings(&schema.keyspace)).await;
    common::drop_keyspace(&session, &schema).await;
}
