//! Reloading the configuration while the daemon runs: the live keys (pace caps, bounds of the
//! batches in flight) change at once, as /metrics shows; other changed keys are named as
//! needing a restart; a file that does not validate changes nothing. In-process through
//! `daemon::run`'s reload channel, and through the real binary on SIGHUP.
//!
//! A test binary of its own: the metrics recorder is the process's, and the in-process daemon
//! here is the only one that sets these gauges.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bar_ingest::config::{ConfigError, Settings};
use bar_ingest::store::Schema;
use common::{Site, unique_keyspace};

/// Longest wait for something that must happen.
const WAIT: Duration = Duration::from_secs(60);

const TEXT: &str = "2021-03-01 09:30:00,10.0,10.5,9.5,10.25,100\n\
                    2021-03-01 09:31:00,10.25,10.75,10.0,10.5,200\n";

const LIMIT: &str = "bar_ingest_write_concurrency_limit";
const ROWS_CAP: &str = "bar_ingest_max_rows_per_second";

/// A site's config with the metrics on a port of its own; `ingest` lines go into `[ingest]`.
struct TestConfig {
    path: PathBuf,
    base: String,
    metrics: std::net::SocketAddr,
}

impl TestConfig {
    fn new(site: &Site, instance: &str) -> Self {
        let path = site.config(instance, "");
        let port = common::free_port();
        let base = std::fs::read_to_string(&path).unwrap().replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        );
        let metrics = format!("127.0.0.1:{port}").parse().unwrap();
        let config = Self {
            path,
            base,
            metrics,
        };
        config.write("", "500ms");
        config
    }

    /// Rewrites the file with `ingest` lines added to `[ingest]` and `watch.settle = settle`.
    fn write(&self, ingest: &str, settle: &str) {
        let text = self
            .base
            .replace("[ingest]\n", &format!("[ingest]\n{ingest}"))
            .replace("settle = \"500ms\"", &format!("settle = \"{settle}\""));
        std::fs::write(&self.path, text).unwrap();
    }

    fn read(&self) -> Result<Settings, ConfigError> {
        Settings::load(&self.path, None)
    }

    /// The value of an unlabelled series in /metrics, if the endpoint answers and has it.
    fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = common::http_get(self.metrics, "/metrics").ok()?;
        if status != 200 {
            return None;
        }
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until /metrics shows `name` at `value` (on a blocking section of the runtime, so
    /// that an in-process daemon runs meanwhile).
    fn wait_for_metric(&self, name: &str, value: f64, what: &str) {
        tokio::task::block_in_place(|| {
            common::wait_until(WAIT, what, || self.metric(name) == Some(value));
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_the_live_keys_and_names_the_others() {
    let site = Site::new(&unique_keyspace("reload_inproc"));
    let config = TestConfig::new(&site, "a");
    config.write("max_rows_per_second = 50000\n", "500ms");
    let settings = config.read().expect("the test config is valid");
    let schema = Schema::from_config(&settings.database);
    let daemon = common::InProcess::start(settings.clone());
    config.wait_for_metric(ROWS_CAP, 50_000.0, "the rows cap of the file at start");
    config.wait_for_metric(LIMIT, 32.0, "the in-flight limit at its start value");

    // Two live keys and one that needs a restart.
    config.write(
        "max_rows_per_second = 100000\nmax_batches_in_flight = 16\n",
        "600ms",
    );
    let changes = daemon.reload(config.read()).await.expect("a valid file");
    assert_eq!(
        changes.applied,
        vec!["ingest.max_batches_in_flight", "ingest.max_rows_per_second"]
    );
    assert_eq!(changes.need_restart, vec!["watch.settle"]);
    config.wait_for_metric(ROWS_CAP, 100_000.0, "the new rows cap in force");
    config.wait_for_metric(LIMIT, 16.0, "the limit within the new maximum");

    // A file that does not validate: refused, nothing changes.
    config.write("max_batches_in_flight = 0\n", "500ms");
    let refused = daemon.reload(config.read()).await;
    let err = refused.expect_err("max_batches_in_flight = 0 is not valid");
    assert!(
        err.to_string().contains("ingest.max_batches_in_flight"),
        "{err}"
    );
    assert_eq!(config.metric(ROWS_CAP), Some(100_000.0));
    assert_eq!(config.metric(LIMIT), Some(16.0));

    // The same valid file again: nothing new applied, the restart still pending.
    config.write(
        "max_rows_per_second = 100000\nmax_batches_in_flight = 16\n",
        "600ms",
    );
    let again = daemon.reload(config.read()).await.expect("a valid file");
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.need_restart, vec!["watch.settle"]);

    // The daemon still loads files, under the new settings.
    std::fs::write(site.inbox().join("RELD_full_1min_adjsplit.txt"), TEXT).unwrap();
    common::wait_until_async(WAIT, "the file archived to done/", || async {
        site.files_in("done").len() == 1
    })
    .await;
    let session = common::connect(&settings).await;
    assert_eq!(
        common::all_bars(&session, &schema).await,
        common::expected_bars("RELD", TEXT)
    );
    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "{ended:?}");
    common::drop_keyspace(&session, &schema).await;
}

/// The daemon process, killed if the test ends without stopping it (a failed assertion).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().is_ok_and(|s| s.is_none()) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits until the daemon's log holds `needle`.
fn wait_for_log(site: &Site, instance: &str, needle: &str) {
    common::wait_until(WAIT, needle, || site.log(instance).contains(needle));
}

/// The binary turns SIGHUP into a reload (SIGHUP's default would end the process): the cap
/// changes, the changed restart-only key is named in a warning, a broken file is refused, and
/// the daemon still stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file_of_the_running_binary() {
    let site = Site::new(&unique_keyspace("reload_hup"));
    let config = TestConfig::new(&site, "h");
    let settings = config.read().expect("the test config is valid");
    let schema = Schema::from_config(&settings.database);
    let mut daemon = Running(site.spawn_daemon(&config.path));
    let cap = |value: f64, what: &str| config.wait_for_metric(ROWS_CAP, value, what);
    cap(0.0, "the daemon up, with no rows cap");

    config.write("max_rows_per_second = 100000\n", "700ms");
    common::signal(&daemon.0, "HUP");
    cap(100_000.0, "the cap of the file read again");
    wait_for_log(&site, "h", "configuration reloaded");
    wait_for_log(&site, "h", "`watch.settle` differs");

    config.write("max_rows_per_second = 5\n", "700ms");
    common::signal(&daemon.0, "HUP");
    wait_for_log(&site, "h", "reload refused");
    let log = site.log("h");
    assert!(log.contains("ingest.max_rows_per_second"), "{log}");
    assert_eq!(config.metric(ROWS_CAP), Some(100_000.0));

    let status = common::terminate(&mut daemon.0);
    assert!(status.success(), "{status:?}\n{}", site.log("h"));
    let session = common::connect(&settings).await;
    common::drop_keyspace(&session, &schema).await;
}
