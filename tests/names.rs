//! File names and moves (issue 11, "Names" and "A delivery can be lost"): renames that never
//! replace, so two instances archiving the same name at once, or a hand-back into an inbox where
//! a new delivery of the name arrived, lose nothing; the longest names (255 bytes) archived and
//! failed with derived names that fit; names that differ only in invalid UTF-8 bytes kept apart;
//! a newline in a name never forges a log line.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use bar_ingest::config::Settings;
use bar_ingest::names::NAME_MAX;
use bar_ingest::pipeline::claim::{self, Folders};
use common::{Site, unique_keyspace, wait_until, wait_until_async};

/// Rounds of each race: enough that check-then-rename loses a file in practice (a few per run
/// of two archivers; the hand-back race is narrower and needs more rounds).
const ROUNDS: usize = 400;
const HAND_BACK_ROUNDS: usize = 2000;
const WAIT: Duration = Duration::from_secs(90);

fn contents_of(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

/// Two instances (own processing/ folders, one shared done/) archive a file of the same name in
/// every round, at the same moment: every file must end in done/, none replaced by the other.
#[test]
fn two_instances_archiving_the_same_name_at_once_lose_no_file() {
    let root = tempfile::tempdir().unwrap();
    let instances: Vec<Folders> = ["a", "b"]
        .iter()
        .map(|i| Folders::new(&root.path().join("inbox"), root.path(), i))
        .collect();
    for f in &instances {
        std::fs::create_dir_all(&f.processing).unwrap();
    }
    let done = instances[0].done.clone();
    std::fs::create_dir_all(&done).unwrap();
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = instances
        .into_iter()
        .enumerate()
        .map(|(who, folders)| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let file = folders.processing.join("SAME_full_1min_adjsplit.txt");
                    std::fs::write(&file, format!("{who}-{round}")).unwrap();
                    start.wait();
                    claim::archive(&file, &done).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got: BTreeSet<String> = contents_of(&done).into_iter().collect();
    let want: BTreeSet<String> = (0..2)
        .flat_map(|who| (0..ROUNDS).map(move |r| format!("{who}-{r}")))
        .collect();
    let lost: Vec<_> = want.difference(&got).collect();
    assert!(lost.is_empty(), "files lost from done/: {lost:?}");
    assert_eq!(got.len(), 2 * ROUNDS);
}

/// In every round a file is handed back to the inbox (it changed while loading) while a sender
/// delivers a new file of the same name with `link` (which never replaces): neither may be lost.
/// Between rounds the inbox is emptied into `sink/` under fresh names, as claims would.
#[test]
fn a_hand_back_never_replaces_a_new_delivery_of_the_same_name() {
    let root = tempfile::tempdir().unwrap();
    let folders = Folders::new(&root.path().join("inbox"), root.path(), "a");
    let (staging, sink) = (root.path().join("staging"), root.path().join("sink"));
    for d in [&folders.inbox, &folders.processing, &staging, &sink] {
        std::fs::create_dir_all(d).unwrap();
    }
    let name = "BACK_full_1min_adjsplit.txt";
    let barrier = Arc::new(Barrier::new(2));
    let sender = {
        let (barrier, staging, inbox) = (barrier.clone(), staging.clone(), folders.inbox.clone());
        std::thread::spawn(move || {
            for round in 0..HAND_BACK_ROUNDS {
                let staged = staging.join(format!("d{round}"));
                std::fs::write(&staged, format!("delivered-{round}")).unwrap();
                barrier.wait();
                // A refused delivery stays staged (not lost); a delivered one leaves staging.
                if std::fs::hard_link(&staged, inbox.join(name)).is_ok() {
                    std::fs::remove_file(&staged).unwrap();
                }
                barrier.wait();
                barrier.wait();
            }
        })
    };
    for round in 0..HAND_BACK_ROUNDS {
        let file = folders.processing.join(name);
        std::fs::write(&file, format!("handed-back-{round}")).unwrap();
        barrier.wait();
        claim::archive(&file, &folders.inbox).unwrap();
        barrier.wait();
        for (k, entry) in std::fs::read_dir(&folders.inbox).unwrap().enumerate() {
            std::fs::rename(entry.unwrap().path(), sink.join(format!("{round}-{k}"))).unwrap();
        }
        barrier.wait();
    }
    sender.join().unwrap();
    let mut got: BTreeSet<String> = contents_of(&sink).into_iter().collect();
    got.extend(contents_of(&staging));
    let lost: Vec<String> = (0..HAND_BACK_ROUNDS)
        .flat_map(|r| [format!("handed-back-{r}"), format!("delivered-{r}")])
        .filter(|c| !got.contains(c))
        .collect();
    assert!(lost.is_empty(), "files lost: {lost:?}");
}

const DAY1: &str = "2021-03-01 09:30:00,10,11,9,10.5,100\n";
const DAY2: &str = "2021-03-02 09:30:00,20,21,19,20.5,200\n";

/// Runs the daemon of `site` (instance `a`) in-process until the returned sender fires.
fn start_daemon(site: &Site) -> (Settings, common::InProcess) {
    let settings = Settings::load(&site.config("a", ""), None).expect("the test config is valid");
    let daemon = common::InProcess::start(settings.clone());
    (settings, daemon)
}

/// Stops the daemon, checks nothing is left claimed, and drops the test keyspace.
async fn stop_daemon(site: &Site, settings: &Settings, daemon: common::InProcess) {
    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "run ended with {ended:?}");
    assert!(
        site.files_in("processing/a").is_empty(),
        "nothing may stay in processing/"
    );
    let session = common::connect(settings).await;
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    common::drop_keyspace(&session, &schema).await;
}

/// Every entry of `state/<sub>` as (name bytes, content).
fn entries(site: &Site, sub: &str) -> Vec<(Vec<u8>, String)> {
    let mut v: Vec<_> = site
        .files_in(sub)
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().as_bytes().to_vec();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn longest_name(prefix: &str, fill: char) -> String {
    let name = format!(
        "{prefix}{}.txt",
        fill.to_string().repeat(NAME_MAX - prefix.len() - 4)
    );
    assert_eq!(name.len(), NAME_MAX);
    name
}

/// A 255-byte name already in done/ (an earlier delivery): the new one is loaded and archived
/// under a shortened `name~hash.<suffix>`, not stuck in processing/ (`name.1` is 257 bytes). A 255-byte
/// name that fails (no symbol) goes to failed/ with its sidecar (`name.error.json` is 266).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_names_are_archived_and_failed_with_names_that_fit() {
    let site = Site::new(&unique_keyspace("names_long"));
    let good = longest_name("LONG_", 'x');
    let bad = longest_name("_", 'y');
    std::fs::create_dir_all(site.state().join("done")).unwrap();
    std::fs::write(site.state().join("done").join(&good), "earlier delivery").unwrap();
    std::fs::write(site.inbox().join(&good), DAY1).unwrap();
    std::fs::write(site.inbox().join(&bad), DAY1).unwrap();
    let (settings, daemon) = start_daemon(&site);

    wait_until_async(WAIT, "2 files in done/ and 2 in failed/", || async {
        site.files_in("done").len() == 2 && site.files_in("failed").len() == 2
    })
    .await;
    let done = entries(&site, "done");
    let (kept, new): (Vec<_>, Vec<_>) = done.iter().partition(|(n, _)| n == good.as_bytes());
    assert_eq!(
        kept[0].1, "earlier delivery",
        "the earlier file is untouched"
    );
    let (new_name, new_content) = &new[0];
    assert!(new_name.len() <= NAME_MAX && ends_with_unique_suffix(new_name));
    assert!(new_name.starts_with(b"LONG_xxxx"));
    assert_eq!(new_content, DAY1);

    let failed = entries(&site, "failed");
    assert!(failed.iter().any(|(n, c)| n == bad.as_bytes() && c == DAY1));
    let (sidecar_name, sidecar) = failed
        .iter()
        .find(|(n, _)| n.ends_with(b".error.json"))
        .expect("the failed file's sidecar");
    assert!(sidecar_name.len() <= NAME_MAX);
    let body: serde_json::Value = serde_json::from_str(sidecar).unwrap();
    assert_eq!(body["file"], bad.as_str());
    assert_eq!(body["outcome"], "failed");
    stop_daemon(&site, &settings, daemon).await;
}

/// Whether `name` ends with the suffix archiving gives a taken name: `.` and 16 digits (the
/// move's time in µs).
fn ends_with_unique_suffix(name: &[u8]) -> bool {
    name.len() > 17
        && name[name.len() - 17] == b'.'
        && name[name.len() - 16..].iter().all(u8::is_ascii_digit)
}

/// Two names that differ only in one invalid UTF-8 byte, both already in done/: both new files
/// load, and each is archived under its own bytes plus a unique suffix (not a lossy
/// `NU_\u{fffd}.txt.<suffix>` shared by both and told apart only by the order they came in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_differing_only_in_an_invalid_byte_both_load_and_keep_their_bytes() {
    let site = Site::new(&unique_keyspace("names_bytes"));
    let names: Vec<OsString> = [&b"NU_\xfe.txt"[..], &b"NU_\xff.txt"[..]]
        .iter()
        .map(|b| OsString::from_vec(b.to_vec()))
        .collect();
    let done_dir = site.state().join("done");
    std::fs::create_dir_all(&done_dir).unwrap();
    for (name, text) in names.iter().zip([DAY1, DAY2]) {
        std::fs::write(done_dir.join(name), "earlier delivery").unwrap();
        std::fs::write(site.inbox().join(name), text).unwrap();
    }
    let (settings, daemon) = start_daemon(&site);
    wait_until_async(WAIT, "4 files in done/", || async {
        site.files_in("done").len() == 4
    })
    .await;

    let done = entries(&site, "done");
    for (name, text) in names.iter().zip([DAY1, DAY2]) {
        let name = name.as_bytes();
        assert!(
            done.contains(&(name.to_vec(), "earlier delivery".into())),
            "{done:?}"
        );
        assert!(
            done.iter().any(|(n, c)| n.len() == name.len() + 17
                && n.starts_with(name)
                && ends_with_unique_suffix(n)
                && c == text),
            "{done:?}"
        );
    }
    let session = common::connect(&settings).await;
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    let mut expected = common::expected_bars("NU", DAY1);
    expected.extend(common::expected_bars("NU", DAY2));
    assert_eq!(common::all_bars(&session, &schema).await, expected);
    stop_daemon(&site, &settings, daemon).await;
}

/// A name with a newline, loaded and failed by the real binary logging as text (what the journal
/// gets): the name is shown escaped, and no line of the log starts with what follows the newline.
#[test]
fn a_newline_in_a_name_forges_no_log_line() {
    let site = Site::new(&unique_keyspace("names_newline"));
    let loaded = "NL_a\nERROR forged by a loaded file.txt";
    let failed = "_\nERROR forged by a failed file.txt";
    std::fs::write(site.inbox().join(loaded), DAY1).unwrap();
    std::fs::write(site.inbox().join(failed), DAY1).unwrap();
    let config = site.config("n", "");
    let mut daemon = site.spawn_daemon(&config);
    wait_until(
        WAIT,
        "one file in done/ and one in failed/ with its sidecar",
        || site.files_in("done").len() == 1 && site.files_in("failed").len() == 2,
    );
    let status = common::terminate(&mut daemon);
    assert!(status.success(), "{status:?}\n{}", site.log("n"));
    let log = site.log("n");
    let forged: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ERROR forged"))
        .collect();
    assert!(forged.is_empty(), "forged log lines: {forged:?}\n{log}");
    for escaped in [
        r"NL_a\nERROR forged by a loaded file.txt",
        r"_\nERROR forged by a failed",
    ] {
        assert!(
            log.contains(escaped),
            "the name is not shown escaped:\n{log}"
        );
    }
    let settings = Settings::load(&config, None).unwrap();
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let session = common::connect(&settings).await;
        common::drop_keyspace(&session, &schema).await;
    });
}
