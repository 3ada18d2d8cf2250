//! A file that changes while it is loaded is handed back to the inbox and not claimed again
//! before `watch.changed_backoff`; once it stops changing it loads whole.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bar_gen::GenSpec;
use bar_ingest::config::Settings;
use bar_ingest::store::Schema;
use chrono::NaiveDate;
use common::{Site, unique_keyspace, wait_until_async};

const WAIT: Duration = Duration::from_secs(120);
const BACKOFF: Duration = Duration::from_secs(4);

/// Appends one valid bar per tick to the open file while it is away from the inbox, and stops
/// (noting when) the first time it sees the file back in the inbox.
fn appender(
    mut file: std::fs::File,
    in_inbox: std::path::PathBuf,
    appended: Arc<Mutex<String>>,
    back_at: Arc<Mutex<Option<Instant>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut left = false;
        let mut minute = 0u32;
        while start.elapsed() < WAIT {
            let here = in_inbox.exists();
            if left && here {
                *back_at.lock().unwrap() = Some(Instant::now());
                return;
            }
            if !here {
                left = true;
                let line = format!(
                    "2030-01-02 {:02}:{:02}:00,10.0,11.0,9.0,10.5,{}\n",
                    9 + (30 + minute) / 60,
                    (30 + minute) % 60,
                    100 + minute
                );
                file.write_all(line.as_bytes()).unwrap();
                appended.lock().unwrap().push_str(&line);
                minute += 1;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_changed_while_loading_waits_its_backoff_then_loads_whole() {
    let site = Site::new(&unique_keyspace("changing"));
    let mut settings: Settings = Settings::load(&site.config("a", ""), None).unwrap();
    settings.watch.changed_backoff = BACKOFF;
    let schema = Schema::from_config(&settings.database);

    // A few weeks of bars, so that pass 2 takes long enough for appends to land in it.
    let spec = GenSpec {
        symbols: vec!["CHNG".into()],
        start: NaiveDate::from_ymd_opt(2021, 3, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2021, 3, 31).unwrap(),
        seed: 7,
    };
    let mut body = Vec::new();
    bar_gen::write_symbol(&spec, "CHNG", &mut body).unwrap();
    let name = bar_gen::file_name("CHNG");
    let outside = site.dir.path().join(&name);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&outside)
        .unwrap();
    file.write_all(&body).unwrap();

    let daemon = common::InProcess::start(settings.clone());
    let appended = Arc::new(Mutex::new(String::new()));
    let back_at = Arc::new(Mutex::new(None));
    let in_inbox = site.inbox().join(&name);
    // The writer keeps its descriptor: the appends follow the file into processing/.
    std::fs::rename(&outside, &in_inbox).unwrap();
    let writer = appender(file, in_inbox.clone(), appended.clone(), back_at.clone());

    writer.join().unwrap();
    let back = back_at
        .lock()
        .unwrap()
        .expect("the file changed while it was loaded and was handed back to the inbox");
    assert!(
        !appended.lock().unwrap().is_empty(),
        "lines were appended while it was away"
    );
    // Without the backoff it would be claimed again within the watcher's settle time.
    while back.elapsed() < BACKOFF - Duration::from_millis(800) {
        assert!(
            in_inbox.exists(),
            "claimed again {:?} after it was handed back; the backoff is {BACKOFF:?}",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until_async(
        WAIT,
        "the file archived to done/ after its backoff",
        || async { site.files_in("done").len() == 1 },
    )
    .await;
    assert!(site.files_in("failed").is_empty());

    let mut text = String::from_utf8(body).unwrap();
    text.push_str(&appended.lock().unwrap());
    let session = common::connect(&settings).await;
    let stored = common::all_bars(&session, &schema).await;
    assert_eq!(stored, common::expected_bars("CHNG", &text));

    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "{ended:?}");
    common::drop_keyspace(&session, &schema).await;
}
