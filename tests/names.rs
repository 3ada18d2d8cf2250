//! File names and moves (issue 11, "Names" and "A delivery can be lost"): renames that never
//! replace, so two instances archiving the same name at once, or a hand-back into an inbox where
//! a new delivery of the name arrived, lose nothing; the longest names (255 bytes) archived and
//! failed with derived names that fit; names that differ only in invalid UTF-8 bytes kept apart;
//! a newline in a name never forges a log line.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use bar_ingest::config::Settings;
use bar_ingest::daemon;
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
