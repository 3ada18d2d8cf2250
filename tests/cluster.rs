//! Node loss on a real three-node cluster (`scripts/dev-db start --cluster`): keyspaces with
//! `NetworkTopologyStrategy` and 3 replicas in dc1, writes at `LOCAL_QUORUM` with
//! `local_datacenter = "dc1"`, the real daemon loading a paced file while nodes are killed and
//! restarted. Every test reads the result back at `ALL` and compares it with the file.
//!
//! These kill and restart the cluster's nodes, so they must run one at a time and apart from
//! other tests: they are `#[ignore]`d and `scripts/test` runs them last, after starting the
//! cluster (`cargo test --test cluster -- --ignored --test-threads=1 --nocapture`). Each prints
//! its timings.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bar_gen::GenSpec;
use bar_ingest::account::history::Outcome;
use bar_ingest::config::Settings;
use bar_ingest::store::{self, Schema};
use chrono::NaiveDate;
use common::{Site, Stored, all_bars, expected_bars, history};
use scylla::client::session::Session;
use scylla::statement::Consistency;

const WAIT: Duration = Duration::from_secs(300);
/// The longest wait for the nodes to agree on the schema.
const SCHEMA_WAIT: Duration = Duration::from_secs(180);
/// The cluster's CQL endpoints (override with `BAR_INGEST_TEST_CLUSTER_POINTS`, comma-separated).
const CLUSTER_POINTS: &str = "127.0.0.1:9242,127.0.0.2:9242,127.0.0.3:9242";
/// The longest stall of the load allowed when one node of three is killed: far below the
/// 10 s request timeout the tests configure, which is what a silent node would cost.
const ONE_NODE_PAUSE_LIMIT: Duration = Duration::from_secs(5);
/// The daemon's pace cap in every test, so that the faults land in the middle of a load.
const PACE: u64 = 3_000;

fn cluster_points() -> Vec<String> {
    std::env::var("BAR_INGEST_TEST_CLUSTER_POINTS")
        .unwrap_or_else(|_| CLUSTER_POINTS.into())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// `scripts/dev-db <action> --cluster [--node N]`; panics if it fails.
fn dev_db(action: &str, node: Option<u8>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-db");
    let mut command = Command::new(script);
    command.arg(action).arg("--cluster");
    if let Some(n) = node {
        command.arg("--node").arg(n.to_string());
    }
    let status = command.status().expect("run scripts/dev-db");
    assert!(
        status.success(),
        "scripts/dev-db {action} --cluster {node:?} failed"
    );
}

/// The cluster's settings for `keyspace`: RF 3 in dc1, LOCAL_QUORUM, dc1 preferred.
fn cluster_settings(keyspace: &str, consistency: Consistency) -> Settings {
    let mut s = Settings::defaults(Some(&cluster_points().join(","))).expect("valid settings");
    s.database.keyspace = keyspace.to_owned();
    s.database.consistency = consistency;
    s.database.local_datacenter = "dc1".into();
    s.database.replication.class = "NetworkTopologyStrategy".into();
    s.database.replication.datacenters = [("dc1".to_owned(), 3)].into();
    s
}

/// Every node up (a no-op when they run) and agreeing on the schema, then a fresh RF 3
/// keyspace with the schema, and a session at `ALL` for the checks. The guard starts the nodes
/// again if the test fails with some of them down, so that the next test finds a whole cluster.
async fn cluster_schema(name: &str) -> (Session, Schema, WholeAgain) {
    dev_db("start", None);
    let settings = cluster_settings(&common::unique_keyspace(name), Consistency::All);
    let session = cluster_session(&settings).await;
    wait_for_schema_agreement(&session).await;
    let schema = Schema::from_config(&settings.database);
    store::init_schema(&session, &schema)
        .await
        .expect("schema creation on the cluster");
    (session, schema, WholeAgain)
}

/// Waits (at most [`SCHEMA_WAIT`]) until every node agrees on the schema: nodes just started
/// may disagree for a while. A node restarted while schema changed can stay behind for good
/// (seen here: a keyspace drop never reached node3 in minutes); after 30 s the nodes whose
/// version differs from the majority's are restarted once, and pull the schema as they start.
async fn wait_for_schema_agreement(session: &Session) {
    let started = Instant::now();
    let mut restarted = false;
    while !matches!(session.check_schema_agreement().await, Ok(Some(_))) {
        assert!(
            started.elapsed() < SCHEMA_WAIT,
            "the cluster's nodes do not agree on the schema after {SCHEMA_WAIT:?}: {:?}",
            schema_versions()
        );
        if !restarted && started.elapsed() > Duration::from_secs(30) {
            restarted = true;
            let versions = schema_versions();
            let majority = versions
                .iter()
                .max_by_key(|(_, v)| versions.iter().filter(|(_, w)| w == v).count())
                .map(|(_, v)| v.clone());
            for (node, version) in &versions {
                if Some(version) != majority.as_ref() {
                    eprintln!(
                        "node{node} is on schema {version}, the others on {majority:?}: restarting it"
                    );
                    dev_db("stop", Some(*node));
                    dev_db("start", Some(*node));
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Each node's schema version as the node itself reports it (cqlsh on that node).
fn schema_versions() -> Vec<(u8, String)> {
    let cqlsh = Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/venv/bin/cqlsh");
    let query = "SELECT schema_version FROM system.local";
    let mut versions = Vec::new();
    for (node, point) in (1u8..).zip(cluster_points()) {
        let Some((host, port)) = point.rsplit_once(':') else {
            continue;
        };
        let Ok(out) = Command::new(&cqlsh)
            .args([host, port, "-e", query])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let uuid = |l: &&str| l.len() == 36 && l.matches('-').count() == 4;
        if let Some(version) = text.lines().map(str::trim).find(uuid) {
            versions.push((node, version.to_owned()));
        }
    }
    versions
}

/// Drops the test's keyspace. Right after a node's restart the driver's wait for schema
/// agreement after the drop may time out; the drop is idempotent, so it is tried again once
/// the nodes agree, for at most [`SCHEMA_WAIT`].
async fn drop_cluster_keyspace(session: &Session, schema: &Schema) {
    let started = Instant::now();
    loop {
        wait_for_schema_agreement(session).await;
        let drop = format!("DROP KEYSPACE IF EXISTS {}", schema.keyspace);
        match session.query_unpaged(drop, ()).await {
            Ok(_) => return,
            Err(e) if started.elapsed() < SCHEMA_WAIT => {
                eprintln!("dropping {}: {e}; trying again", schema.keyspace);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => panic!("drop test keyspace {}: {e}", schema.keyspace),
        }
    }
}

/// On a failing test's unwinding, starts every node of the cluster again.
struct WholeAgain;

impl Drop for WholeAgain {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the test failed: starting every cluster node again for the next test");
            dev_db("start", None);
        }
    }
}

/// A session on the cluster, or the test fails saying how to start it.
async fn cluster_session(settings: &Settings) -> Session {
    match store::connect(settings).await {
        Ok(s) => s,
        Err(e) => panic!(
            "this test needs the three-node dev cluster on {}, and it is not reachable:\n{e}\n\
             start it with `./scripts/dev-db start --cluster` (or run everything with \
             `./scripts/test`)",
            cluster_points().join(", ")
        ),
    }
}

/// Seconds from `from` to `to`, negative when `to` came first.
fn secs(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64()
    } else {
        -(from - to).as_secs_f64()
    }
}

/// A daemon config on the cluster with `rows_per_second` as its pace cap.
fn daemon_config(site: &Site, instance: &str, rows_per_second: u64) -> std::path::PathBuf {
    let config = site.config(
        instance,
        "[database.replication]\nclass = \"NetworkTopologyStrategy\"\ndatacenters = { dc1 = 3 }\n",
    );
    let points: Vec<String> = cluster_points().iter().map(|p| format!("{p:?}")).collect();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            &format!("contact_points = [\"{}\"]", common::contact_points()),
            &format!("contact_points = [{}]", points.join(", ")),
        )
        .replace(
            "consistency = \"ONE\"\n",
            "consistency = \"LOCAL_QUORUM\"\nlocal_datacenter = \"dc1\"\n",
        )
        .replace(
            "[ingest]\n",
            &format!("[ingest]\nmax_rows_per_second = {rows_per_second}\n"),
        );
    assert!(
        text.contains("9242") && text.contains("LOCAL_QUORUM"),
        "{text}"
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// One symbol's bars over the first `months` months of 2019, as a FirstRate file, and what it
/// should store.
fn bar_file(symbol: &str, months: u32, seed: u64) -> (String, Vec<Stored>) {
    let start = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
    let spec = GenSpec {
        symbols: vec![symbol.into()],
        start,
        end: start
            .checked_add_months(chrono::Months::new(months))
            .and_then(|d| d.pred_opt())
            .unwrap(),
        seed,
    };
    let mut buf = Vec::new();
    bar_gen::write_symbol(&spec, symbol, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let expected = expected_bars(symbol, &text);
    (text, expected)
}

/// How every test begins: a fresh RF 3 keyspace (with its guard), the daemon as `instance`
/// paced at [`PACE`], loading a generated file of `months` months, 10 % of it written; and the
/// bars the file should store.
type UnderWay = (Session, Schema, WholeAgain, Site, Loading, Vec<Stored>);

async fn load_under_way(name: &str, instance: &str, months: u32, seed: u64) -> UnderWay {
    let (session, schema, whole) = cluster_schema(name).await;
    let site = Site::new(&schema.keyspace);
    let config = daemon_config(&site, instance, PACE);
    let (text, want) = bar_file("CLU", months, seed);
    let mut load = Loading::start(&site, &config, instance, &text);
    load.wait_for_rows(&site, instance, want.len() as f64 * 0.1);
    (session, schema, whole, site, load, want)
}

/// The running daemon, its endpoint, and a thread sampling `bar_ingest_rows_written_total`
/// every 100 ms.
struct Loading {
    daemon: Child,
    endpoint: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<Vec<(Instant, f64)>>>,
}

impl Loading {
    /// Starts the daemon with `config`, waits for its endpoint, starts sampling, and drops
    /// `text` into the inbox.
    fn start(site: &Site, config: &Path, instance: &str, text: &str) -> Self {
        let mut daemon = site.spawn_daemon(config);
        let mut endpoint = None;
        common::wait_until(WAIT, "the daemon to log its endpoint", || {
            assert!(
                daemon.try_wait().unwrap().is_none(),
                "the daemon exited:\n{}",
                site.log(instance)
            );
            endpoint = common::endpoint_from_log(&site.log(instance));
            endpoint.is_some()
        });
        let endpoint = endpoint.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rows) = rows_written(endpoint) {
                        samples.push((Instant::now(), rows));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                samples
            })
        };
        std::fs::write(site.inbox().join(bar_gen::file_name("CLU")), text).unwrap();
        Self {
            daemon,
            endpoint,
            stop,
            sampler: Some(sampler),
        }
    }

    /// Rows written so far.
    fn rows(&self) -> f64 {
        rows_written(self.endpoint).expect("GET /metrics")
    }

    /// Waits until at least `rows` are written, the daemon alive throughout.
    fn wait_for_rows(&mut self, site: &Site, instance: &str, rows: f64) {
        let started = Instant::now();
        while self.rows() < rows {
            assert!(started.elapsed() < WAIT, "{rows} rows not written in time");
            self.assert_alive(site, instance);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_alive(&mut self, site: &Site, instance: &str) {
        assert!(
            self.daemon.try_wait().unwrap().is_none(),
            "the daemon exited:\n{}",
            site.log(instance)
        );
    }

    /// Waits until `cond` holds, the daemon alive throughout; on timeout fails with the end of
    /// its log.
    fn wait_for(
        &mut self,
        site: &Site,
        instance: &str,
        what: &str,
        mut cond: impl FnMut() -> bool,
    ) {
        let started = Instant::now();
        while !cond() {
            self.assert_alive(site, instance);
            if started.elapsed() > WAIT {
                let log = site.log(instance);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "timed out after {WAIT:?} waiting for {what}; the daemon's log ends:\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the file in done/, stops the daemon and the sampler; returns the samples.
    fn finish(mut self, site: &Site, instance: &str) -> Vec<(Instant, f64)> {
        let started = Instant::now();
        while site.files_in("done").is_empty() {
            assert!(
                started.elapsed() < WAIT,
                "the load did not finish:\n{}",
                site.log(instance)
            );
            assert!(
                site.files_in("failed").is_empty(),
                "the file failed:\n{}",
                site.log(instance)
            );
            self.assert_alive(site, instance);
            std::thread::sleep(Duration::from_millis(100));
        }
        // One more sample after the last write.
        std::thread::sleep(Duration::from_millis(300));
        assert!(common::terminate(&mut self.daemon).success());
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.take().unwrap().join().unwrap()
    }
}

fn rows_written(endpoint: std::net::SocketAddr) -> std::io::Result<f64> {
    let (_, body) = common::http_get(endpoint, "/metrics")?;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix("bar_ingest_rows_written_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

/// The longest time the row count stood still between the first and the last rows written,
/// and when that stall began.
fn longest_stall(samples: &[(Instant, f64)]) -> (Duration, Instant) {
    let Some(total) = samples.last().map(|s| s.1) else {
        panic!("no samples of the row count");
    };
    let mut last_rise: Option<(Instant, f64)> = None;
    let mut longest = (Duration::ZERO, samples[0].0);
    for &(at, rows) in samples {
        match last_rise {
            None if rows > 0.0 => last_rise = Some((at, rows)),
            Some((since, before)) if rows > before => {
                if at - since > longest.0 {
                    longest = (at - since, since);
                }
                last_rise = Some((at, rows));
            }
            _ => {}
        }
        if rows >= total {
            break;
        }
    }
    longest
}

/// The load's outcome: in done/, nothing dead-lettered or failed, one history row with every
/// row, and the bars read at `ALL` equal to the file's.
async fn assert_loaded_exactly(site: &Site, session: &Session, schema: &Schema, want: &[Stored]) {
    assert!(
        site.files_in("dead-letter").is_empty(),
        "nothing may be dead-lettered for a node loss: {:?}",
        site.files_in("dead-letter")
    );
    assert!(site.files_in("failed").is_empty());
    assert_eq!(site.files_in("done").len(), 1);
    let records = history(session, schema).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].outcome, Outcome::Loaded);
    assert_eq!(records[0].rows_written as usize, want.len());
    let read = all_bars(session, schema).await;
    println!(
        "rows expected {}, read at ALL {}, equal: {}",
        want.len(),
        read.len(),
        read == want
    );
    assert_eq!(read.len(), want.len());
    assert!(read == want, "the bars read at ALL differ from the file's");
}

/// One node of three killed with SIGKILL a few seconds into a paced load and restarted: the
/// load goes on at LOCAL_QUORUM with at most a short stall, nothing is dead-lettered, and
/// reading at ALL once the node is back gives exactly the file's bars.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "kills cluster nodes; scripts/test runs it alone against scripts/dev-db --cluster"]
async fn one_node_killed_mid_load_and_restarted_loses_nothing() {
    let (session, schema, _whole, site, mut load, want) =
        load_under_way("cl_one", "a", 20, 101).await;
    let killed_at = Instant::now();
    dev_db("kill", Some(1));
    std::thread::sleep(Duration::from_secs(5));
    load.assert_alive(&site, "a");
    let restart_at = Instant::now();
    dev_db("start", Some(1));
    let back_at = Instant::now();
    let rows_when_back = load.rows();
    let samples = load.finish(&site, "a");
    let done_at = samples.last().unwrap().0;

    let (stall, stall_from) = longest_stall(&samples);
    let first = samples.iter().find(|s| s.1 > 0.0).unwrap().0;
    println!(
        "one node killed: {} rows at {PACE} rows/s; node1 killed {:.1} s into the load, \
         restart began {:.1} s after the kill and took {:.1} s ({} of {} rows written by then); \
         load done {:.1} s after the kill; longest stall {:.2} s, beginning {:.1} s after the kill",
        want.len(),
        (killed_at - first).as_secs_f64(),
        (restart_at - killed_at).as_secs_f64(),
        (back_at - restart_at).as_secs_f64(),
        rows_when_back,
        want.len(),
        secs(killed_at, done_at),
        stall.as_secs_f64(),
        secs(killed_at, stall_from),
    );
    assert!(
        stall < ONE_NODE_PAUSE_LIMIT,
        "the load stood still for {stall:?} with one node of three down"
    );
    assert_loaded_exactly(&site, &session, &schema, &want).await;
    drop_cluster_keyspace(&session, &schema).await;
}

/// Two of three nodes killed mid-load: LOCAL_QUORUM writes cannot be taken, so the load stops
/// without failing or dead-lettering anything, `/readyz` answers 503 saying the replicas are
/// missing, and once one node returns the load completes.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "kills cluster nodes; scripts/test runs it alone against scripts/dev-db --cluster"]
async fn two_of_three_down_pauses_with_readyz_saying_why_then_completes() {
    let (session, schema, _whole, site, mut load, want) =
        load_under_way("cl_two", "b", 3, 102).await;
    let total = want.len() as f64;
    let killed_at = Instant::now();
    dev_db("kill", Some(2));
    dev_db("kill", Some(3));

    let endpoint = load.endpoint;
    let readyz = |endpoint| common::http_get(endpoint, "/readyz").expect("GET /readyz");
    load.wait_for(
        &site,
        "b",
        "/readyz 503 naming the missing replicas",
        || {
            let (status, body) = readyz(endpoint);
            status == 503 && body.contains("replicas_unavailable")
        },
    );
    let said_at = Instant::now();
    let (_, body) = readyz(load.endpoint);
    println!(
        "two nodes down: /readyz said so {:.1} s after the kills: {}",
        (said_at - killed_at).as_secs_f64(),
        body.trim()
    );
    // Writes sent before the coordinator saw the nodes go may still come back; after that,
    // nothing can be taken.
    std::thread::sleep(Duration::from_secs(2));
    let paused_rows = load.rows();
    std::thread::sleep(Duration::from_secs(10));
    load.assert_alive(&site, "b");
    assert_eq!(
        load.rows(),
        paused_rows,
        "rows were written with one replica of three"
    );
    assert!(paused_rows < total, "the load must not have finished");
    assert!(site.files_in("done").is_empty() && site.files_in("failed").is_empty());
    assert!(site.files_in("dead-letter").is_empty());
    let retries = common::scrape(load.endpoint)
        .get("bar_ingest_write_retries_total{cause=\"unavailable\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(
        retries > 0.0,
        "no write retry counted under cause=\"unavailable\""
    );

    let restart_at = Instant::now();
    dev_db("start", Some(2));
    let back_at = Instant::now();
    common::wait_until(WAIT, "/readyz 200 with two nodes up", || {
        readyz(load.endpoint).0 == 200
    });
    let ready_at = Instant::now();
    let samples = load.finish(&site, "b");
    println!(
        "two nodes down: paused at {paused_rows} of {} rows ({retries} retries for \
         unavailable); node2 restarted in {:.1} s; /readyz 200 {:.1} s later; load done \
         {:.1} s after node2 was back",
        want.len(),
        (back_at - restart_at).as_secs_f64(),
        (ready_at - back_at).as_secs_f64(),
        secs(back_at, samples.last().unwrap().0),
    );
    // ALL needs the third node too.
    dev_db("start", Some(3));
    assert_loaded_exactly(&site, &session, &schema, &want).await;
    drop_cluster_keyspace(&session, &schema).await;
}

/// The whole cluster stopped and started again in the middle of a load: the daemon waits,
/// `/readyz` says the database is unreachable meanwhile, and the load completes exactly.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "restarts the cluster; scripts/test runs it alone against scripts/dev-db --cluster"]
async fn whole_cluster_restarted_mid_load_completes_exactly() {
    let (session, schema, _whole, site, mut load, want) =
        load_under_way("cl_all", "c", 3, 103).await;
    // The cluster goes away: a new session checks the result.
    drop(session);
    let total = want.len() as f64;
    let stop_at = Instant::now();
    dev_db("stop", None);
    let stopped_at = Instant::now();
    let rows_at_stop = load.rows();
    load.assert_alive(&site, "c");
    common::wait_until(WAIT, "/readyz 503 with the cluster down", || {
        common::http_get(load.endpoint, "/readyz").is_ok_and(|(s, _)| s == 503)
    });
    let (_, down_body) = common::http_get(load.endpoint, "/readyz").expect("GET /readyz");
    assert!(down_body.contains("database unreachable"), "{down_body}");
    dev_db("start", None);
    let started_at = Instant::now();
    let samples = load.finish(&site, "c");
    println!(
        "whole cluster restarted: stop took {:.1} s at {rows_at_stop} of {} rows, start took \
         {:.1} s; load done {:.1} s after the cluster was back; /readyz while down: {}",
        (stopped_at - stop_at).as_secs_f64(),
        want.len(),
        (started_at - stopped_at).as_secs_f64(),
        secs(started_at, samples.last().unwrap().0),
        down_body.trim()
    );
    assert!(rows_at_stop < total, "the load finished before the stop");

    let session = cluster_session(&cluster_settings(&schema.keyspace, Consistency::All)).await;
    assert_loaded_exactly(&site, &session, &schema, &want).await;
    drop_cluster_keyspace(&session, &schema).await;
}
