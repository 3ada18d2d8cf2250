//! The daemon run in-process: `daemon::run(settings, shutdown)` started on a real inbox against
//! the real node, a file dropped in, the shutdown future resolved; no binary, no `kill`.

mod common;

use std::time::Duration;

use bar_ingest::config::Settings;
use bar_ingest::daemon::DaemonError;
use bar_ingest::store::Schema;
use common::{Site, unique_keyspace, wait_until_async};

/// Longest wait for something that must happen.
const WAIT: Duration = Duration::from_secs(60);

const TEXT: &str = "2021-03-01 09:30:00,10.0,10.5,9.5,10.25,100\n\
                    2021-03-01 09:31:00,10.25,10.75,10.0,10.5,200\n\
                    2021-03-02 09:30:00,10.5,11.0,10.25,10.75,300\n";

fn settings_for(site: &Site, instance: &str) -> Settings {
    Settings::load(&site.config(instance, ""), None).expect("the test config is valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_daemon_loads_a_dropped_file_and_stops_on_its_shutdown_future() {
    let site = Site::new(&unique_keyspace("daemon_inproc"));
    let settings = settings_for(&site, "a");
    let schema = Schema::from_config(&settings.database);
    let daemon = common::InProcess::start(settings.clone());

    std::fs::write(site.inbox().join("INPR_full_1min_adjsplit.txt"), TEXT).unwrap();
    wait_until_async(WAIT, "the file archived to done/", || async {
        site.files_in("done").len() == 1
    })
    .await;
    assert!(site.files_in("failed").is_empty());

    let session = common::connect(&settings).await;
    let stored = common::all_bars(&session, &schema).await;
    assert_eq!(stored, common::expected_bars("INPR", TEXT));

    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "run ended with {ended:?}");
    // Nothing is left claimed.
    assert!(site.files_in("processing/a").is_empty());
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_in_processing_is_resumed_at_start() {
    let site = Site::new(&unique_keyspace("daemon_resume"));
    let settings = settings_for(&site, "a");
    let schema = Schema::from_config(&settings.database);
    // As if an earlier run of instance `a` had claimed it and died.
    let processing = site.state().join("processing").join("a");
    std::fs::create_dir_all(&processing).unwrap();
    std::fs::write(processing.join("RESU_full_1min_adjsplit.txt"), TEXT).unwrap();
    let daemon = common::InProcess::start(settings.clone());
    wait_until_async(WAIT, "the resumed file archived to done/", || async {
        site.files_in("done").len() == 1
    })
    .await;
    assert!(site.files_in("processing/a").is_empty());
    let session = common::connect(&settings).await;
    assert_eq!(
        common::all_bars(&session, &schema).await,
        common::expected_bars("RESU", TEXT)
    );
    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "{ended:?}");
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_failures_are_errors_not_a_clean_exit() {
    // The inbox is a regular file: the folders cannot be set up.
    let site = Site::new(&unique_keyspace("daemon_badinbox"));
    std::fs::remove_dir(site.inbox()).unwrap();
    std::fs::write(site.inbox(), "not a folder").unwrap();
    let ended = common::InProcess::start(settings_for(&site, "a"))
        .ended_on_its_own()
        .await;
    let err = ended.expect_err("an inbox that is a file must stop the daemon with an error");
    assert!(
        matches!(err, DaemonError::Folders(_)),
        "unexpected error: {err:?}"
    );

    // The metrics address is taken: the endpoint cannot start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = Site::new(&unique_keyspace("daemon_badlisten"));
    let mut settings = settings_for(&site, "a");
    settings.metrics_listen = taken.local_addr().unwrap();
    let ended = common::InProcess::start(settings).ended_on_its_own().await;
    let err = ended.expect_err("a taken metrics address must stop the daemon with an error");
    assert!(
        matches!(err, DaemonError::Exporter(_)),
        "unexpected error: {err:?}"
    );
}
