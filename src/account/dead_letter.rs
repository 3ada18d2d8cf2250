//! The dead-letter log: the rejected rows of one input file, within a budget. The first rejects
//! are kept in full, one JSON line each (file, line, raw text, reason code, message, time); every
//! reject is counted by reason, and the log ends with a summary line holding those counts. One
//! log file per input file, written tmp + fsync + rename.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::DeadLetterConfig;
use crate::model::reject::Rejection;
use crate::names::{Shown, derived};
use crate::pipeline::rename::sync_dir;

/// One kept dead-letter line. Line 0 means the entry is about the whole file (e.g. `empty_file`).
#[derive(Debug, Serialize)]
pub(crate) struct DeadLetterEntry<'a> {
    pub file: &'a str,
    pub line: u64,
    /// The line's text, cut at [`MAX_RAW_BYTES`](crate::model::reject::MAX_RAW_BYTES) and then
    /// marked `…[truncated, N bytes]`.
    pub raw: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
    /// RFC 3339 UTC time the row was rejected.
    pub time: &'a str,
}

/// The last line of every log: exact counts of all the rejects, kept or not.
#[derive(Debug, Serialize)]
struct DeadLetterSummary<'a> {
    /// Always true: tells this line from the entries.
    summary: bool,
    file: &'a str,
    /// Rejected rows examined, kept or not; equal to the sum of `by_reason`.
    rejected: u64,
    /// Entries above this line about rejected rows.
    kept: u64,
    /// Rejected rows counted but not written in full (over the budget).
    dropped: u64,
    by_reason: &'a BTreeMap<&'static str, u64>,
    max_lines_per_file: u64,
    max_bytes_per_file: u64,
    /// Set when validation stopped early because the file was certain to be quarantined: the
    /// last line examined (later lines were hashed, not validated or counted).
    scan_stopped_after_line: Option<u64>,
    time: &'a str,
}

/// Writes the rejects of one input file to `<dir>/<name>.<instance>.rejects.jsonl.tmp`, and on
/// [`finish`](Self::finish) renames it to `<dir>/<name>.<fingerprint12>.rejects.jsonl`. Both
/// names come from the input name's bytes through [`derived`]: they fit the filesystem's limit
/// and differ for names that differ only in bytes that are not UTF-8. A log dropped unfinished
/// removes its temp file.
#[derive(Debug)]
pub(crate) struct DeadLetterLog {
    /// The input's name, escaped, for the `file` field.
    file_shown: String,
    /// The input's name, bytes as they are, for the log's own names.
    input_name: std::ffi::OsString,
    dir: PathBuf,
    tmp: PathBuf,
    budget: DeadLetterConfig,
    /// Opened on the first reject or whole-file entry, so clean files leave nothing behind.
    out: Option<BufWriter<File>>,
    /// One entry, serialized before it is written, to weigh it against the byte budget.
    entry: Vec<u8>,
    /// Entries written about rejected rows, and their bytes.
    kept: u64,
    kept_bytes: u64,
    /// The budget ran out: nothing more is written, so the kept lines are the first ones.
    full: bool,
    /// Every rejected row, by reason code.
    by_reason: BTreeMap<&'static str, u64>,
    scan_stopped_after_line: Option<u64>,
    /// Formatted once per log; rows of one file are rejected within moments of each other.
    time: String,
}

/// Temp logs opened by this process so far (part of each temp name).
static TEMP_LOGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl DeadLetterLog {
    /// A log for the input file named `input_name`, kept in `dir` (created if missing).
    pub fn new(dir: &Path, input_name: &OsStr, instance: &str, budget: DeadLetterConfig) -> Self {
        Self {
            file_shown: Shown(Path::new(input_name)).to_string(),
            input_name: input_name.to_owned(),
            dir: dir.to_owned(),
            // The process and a count in it: `load` on a daemon's host shares its instance
            // name, and two logs of one name must never write one temp file.
            tmp: dir.join(derived(
                input_name,
                &format!(
                    ".{instance}.{}-{}.rejects.jsonl.tmp",
                    std::process::id(),
                    TEMP_LOGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ),
            )),
            budget,
            out: None,
            entry: Vec::new(),
            kept: 0,
            kept_bytes: 0,
            full: false,
            by_reason: BTreeMap::new(),
            scan_stopped_after_line: None,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Counts a rejected row, and writes it in full while the budget lasts.
    pub fn reject(&mut self, r: &Rejection) -> std::io::Result<()> {
        *self.by_reason.entry(r.reason.code()).or_default() += 1;
        if self.full || self.kept >= self.budget.max_lines_per_file {
            self.full = true;
            return Ok(());
        }
        self.serialize(r.line, &r.raw, r.reason.code(), &r.message)?;
        if self.kept_bytes + self.entry.len() as u64 > self.budget.max_bytes_per_file {
            self.full = true;
            return Ok(());
        }
        self.write_entry()?;
        self.kept += 1;
        self.kept_bytes += self.entry.len() as u64;
        Ok(())
    }

    /// Writes an entry about the whole file (line 0, e.g. `empty_file`): not a rejected row,
    /// not counted, not subject to the budget (there is at most one per file).
    pub fn whole_file(&mut self, reason: &str, message: &str) -> std::io::Result<()> {
        self.serialize(0, "", reason, message)?;
        self.write_entry()
    }

    /// Notes that validation stopped after `line`, the file being certain to be quarantined.
    pub fn scan_stopped(&mut self, line: u64) {
        self.scan_stopped_after_line = Some(line);
    }

    /// Rejected rows so far, kept or not.
    pub fn rejected(&self) -> u64 {
        self.by_reason.values().sum()
    }

    /// Rejected rows so far by reason code, kept or not.
    pub fn by_reason(&self) -> &BTreeMap<&'static str, u64> {
        &self.by_reason
    }

    /// Rejected rows counted but not written in full.
    pub fn dropped(&self) -> u64 {
        self.rejected() - self.kept
    }

    fn serialize(
        &mut self,
        line: u64,
        raw: &str,
        reason: &str,
        message: &str,
    ) -> std::io::Result<()> {
        self.entry.clear();
        let entry = DeadLetterEntry {
            file: &self.file_shown,
            line,
            raw,
            reason,
            message,
            time: &self.time,
        };
        serde_json::to_writer(&mut self.entry, &entry)?;
        self.entry.push(b'\n');
        Ok(())
    }

    /// Appends the serialized entry, opening the temp file first if needed.
    fn write_entry(&mut self) -> std::io::Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                std::fs::create_dir_all(&self.dir)?;
                self.out.insert(BufWriter::new(File::create(&self.tmp)?))
            }
        };
        out.write_all(&self.entry)
    }

    /// Drops what was written (the content was already accounted for, e.g. a duplicate).
    pub(crate) fn discard(self) {
        // Drop removes the temp file.
    }

    /// Ends the log with its summary line, flushes, fsyncs and renames it to its final name;
    /// None if nothing was rejected. On an error the temp file is removed.
    pub fn finish(mut self, fingerprint: &str) -> std::io::Result<Option<PathBuf>> {
        if self.out.is_none() && self.by_reason.is_empty() {
            return Ok(None);
        }
        let finished = self.finish_log(fingerprint);
        if finished.is_err() {
            self.remove_tmp();
        }
        finished.map(Some)
    }

    fn finish_log(&mut self, fingerprint: &str) -> std::io::Result<PathBuf> {
        self.write_summary()?;
        let out = self.out.take().expect("write_summary opened it");
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let short = &fingerprint[..fingerprint.len().min(12)];
        let path = self.dir.join(derived(
            &self.input_name,
            &format!(".{short}.rejects.jsonl"),
        ));
        std::fs::rename(&self.tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(path)
    }

    fn write_summary(&mut self) -> std::io::Result<()> {
        self.entry.clear();
        let summary = DeadLetterSummary {
            summary: true,
            file: &self.file_shown,
            rejected: self.rejected(),
            kept: self.kept,
            dropped: self.dropped(),
            by_reason: &self.by_reason,
            max_lines_per_file: self.budget.max_lines_per_file,
            max_bytes_per_file: self.budget.max_bytes_per_file,
            scan_stopped_after_line: self.scan_stopped_after_line,
            time: &self.time,
        };
        serde_json::to_writer(&mut self.entry, &summary)?;
        self.entry.push(b'\n');
        self.write_entry()
    }

    /// Best effort: closes and removes the temp file.
    fn remove_tmp(&mut self) {
        self.out = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Drop for DeadLetterLog {
    /// A log neither finished nor discarded (a read error, a panic) leaves no temp file.
    fn drop(&mut self) {
        if self.out.is_some() {
            self.remove_tmp();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    use super::*;
    use crate::model::reject::RejectReason;

    fn rejection(line: u64, reason: RejectReason, raw: &str) -> Rejection {
        Rejection {
            line,
            raw: raw.to_owned(),
            reason,
            message: format!("{reason} on line {line}"),
        }
    }

    fn log(dir: &Path, name: &str, budget: DeadLetterConfig) -> DeadLetterLog {
        DeadLetterLog::new(dir, OsStr::new(name), "i1", budget)
    }

    fn json_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn names_in(dir: &Path) -> Vec<OsString> {
        let mut v: Vec<OsString> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn entries_land_as_json_lines_then_a_summary_under_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log(dir.path(), "AAPL_full.txt", DeadLetterConfig::default());
        let r = rejection(3, RejectReason::BadNumber, "2005-01-03 08:00:00,x");
        log.reject(&r).unwrap();
        log.reject(&rejection(4, RejectReason::BlankLine, ""))
            .unwrap();
        let path = log.finish("abcdef0123456789").unwrap().unwrap();
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            "AAPL_full.txt.abcdef012345.rejects.jsonl"
        );
        let lines = json_lines(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["line"], 3);
        assert_eq!(lines[0]["reason"], "bad_number");
        assert_eq!(lines[0]["raw"], "2005-01-03 08:00:00,x");
        assert_eq!(lines[0]["file"], "AAPL_full.txt");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        let summary = &lines[2];
        assert_eq!(summary["summary"], true);
        assert_eq!(summary["rejected"], 2);
        assert_eq!(summary["kept"], 2);
        assert_eq!(summary["dropped"], 0);
        assert_eq!(summary["by_reason"]["bad_number"], 1);
        assert_eq!(summary["by_reason"]["blank_line"], 1);
        assert!(summary["scan_stopped_after_line"].is_null());
        // No tmp file is left behind.
        assert_eq!(names_in(dir.path()).len(), 1);
    }

    #[test]
    fn only_the_first_lines_are_kept_but_every_reject_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let budget = DeadLetterConfig {
            max_lines_per_file: 3,
            ..DeadLetterConfig::default()
        };
        let mut log = log(dir.path(), "X_full.txt", budget);
        for line in 1..=10 {
            let reason = if line % 2 == 0 {
                RejectReason::FieldCount
            } else {
                RejectReason::BadTimestamp
            };
            log.reject(&rejection(line, reason, "x")).unwrap();
        }
        assert_eq!((log.rejected(), log.dropped()), (10, 7));
        log.scan_stopped(10);
        let lines = json_lines(&log.finish("ff00").unwrap().unwrap());
        assert_eq!(lines.len(), 4, "three entries and the summary");
        let kept: Vec<_> = lines[..3]
            .iter()
            .map(|l| l["line"].as_u64().unwrap())
            .collect();
        assert_eq!(kept, vec![1, 2, 3], "the first rejects are the ones kept");
        let summary = &lines[3];
        assert_eq!(summary["rejected"], 10);
        assert_eq!(summary["kept"], 3);
        assert_eq!(summary["dropped"], 7);
        assert_eq!(summary["by_reason"]["field_count"], 5);
        assert_eq!(summary["by_reason"]["bad_timestamp"], 5);
        assert_eq!(summary["scan_stopped_after_line"], 10);
    }

    #[test]
    fn the_byte_budget_stops_writing_and_keeps_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let long = "y".repeat(400);
        let mut probe = log(dir.path(), "P_full.txt", DeadLetterConfig::default());
        probe
            .serialize(1, &long, "field_count", "field_count on line 1")
            .unwrap();
        let one = probe.entry.len() as u64;
        probe.discard();
        let budget = DeadLetterConfig {
            max_lines_per_file: 1000,
            max_bytes_per_file: 2 * one + one / 2,
        };
        let mut log = log(dir.path(), "P_full.txt", budget);
        for line in 1..=5 {
            log.reject(&rejection(line, RejectReason::FieldCount, &long))
                .unwrap();
        }
        // A short entry after the budget ran out is not written either: the log stays a prefix.
        log.reject(&rejection(6, RejectReason::BlankLine, ""))
            .unwrap();
        let path = log.finish("ab").unwrap().unwrap();
        let lines = json_lines(&path);
        assert_eq!(lines.len(), 3, "two entries and the summary");
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[2]["rejected"], 6);
        assert_eq!(lines[2]["dropped"], 4);
        let summary_bytes = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .len();
        assert!(
            std::fs::metadata(&path).unwrap().len()
                <= budget.max_bytes_per_file + summary_bytes as u64 + 1
        );
    }

    #[test]
    fn zero_lines_keeps_only_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let budget = DeadLetterConfig {
            max_lines_per_file: 0,
            ..DeadLetterConfig::default()
        };
        let mut log = log(dir.path(), "Z_full.txt", budget);
        log.reject(&rejection(7, RejectReason::Binary, "\u{0}"))
            .unwrap();
        let lines = json_lines(&log.finish("cd").unwrap().unwrap());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["summary"], true);
        assert_eq!(lines[0]["by_reason"]["binary"], 1);
        assert_eq!(lines[0]["dropped"], 1);
    }

    #[test]
    fn a_whole_file_entry_is_written_but_not_counted_as_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log(dir.path(), "E_full.txt", DeadLetterConfig::default());
        log.whole_file("empty_file", "the file is empty").unwrap();
        let lines = json_lines(&log.finish("ee").unwrap().unwrap());
        assert_eq!(lines[0]["line"], 0);
        assert_eq!(lines[0]["reason"], "empty_file");
        assert_eq!(lines[1]["rejected"], 0);
    }

    #[test]
    fn a_230_byte_name_gets_a_final_log_that_fits_and_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("LONG_{}.txt", "n".repeat(221));
        assert_eq!(name.len(), 230);
        let mut log = log(dir.path(), &name, DeadLetterConfig::default());
        log.reject(&rejection(1, RejectReason::FieldCount, "x"))
            .unwrap();
        let path = log.finish(&"0123456789abcdef".repeat(4)).unwrap().unwrap();
        let names = names_in(dir.path());
        assert_eq!(names, vec![path.file_name().unwrap().to_owned()]);
        let final_name = path.file_name().unwrap().as_bytes();
        assert!(final_name.len() <= crate::names::NAME_MAX);
        assert!(final_name.ends_with(b".rejects.jsonl"));
        assert_eq!(json_lines(&path)[0]["file"], name.as_str());
    }

    /// `load` on a daemon's host has the daemon's instance name: both wrote the rejects of a
    /// file of one name to one temp path, each truncating the other's. Now every log has a temp
    /// file of its own.
    #[test]
    fn load_on_a_daemon_host_shared_the_daemons_dead_letter_temp_path() {
        let dir = tempfile::tempdir().unwrap();
        let name = OsString::from("AAPL_full_1min_adjsplit.txt");
        let budget = DeadLetterConfig::default();
        let daemon = DeadLetterLog::new(dir.path(), &name, "host1", budget);
        let load = DeadLetterLog::new(dir.path(), &name, "host1", budget);
        assert_ne!(daemon.tmp, load.tmp);
    }

    #[test]
    fn names_differing_only_in_an_invalid_byte_get_distinct_temp_and_final_logs() {
        let dir = tempfile::tempdir().unwrap();
        let a = OsString::from_vec(b"BAD\xff_full.txt".to_vec());
        let b = OsString::from_vec(b"BAD\xfe_full.txt".to_vec());
        let budget = DeadLetterConfig::default();
        let mut la = DeadLetterLog::new(dir.path(), &a, "i1", budget);
        let mut lb = DeadLetterLog::new(dir.path(), &b, "i1", budget);
        assert_ne!(la.tmp, lb.tmp);
        // Both open at once, as two workers would.
        la.reject(&rejection(1, RejectReason::FieldCount, "a"))
            .unwrap();
        lb.reject(&rejection(1, RejectReason::FieldCount, "b"))
            .unwrap();
        let pa = la.finish("ffff").unwrap().unwrap();
        let pb = lb.finish("ffff").unwrap().unwrap();
        assert_ne!(pa, pb);
        assert_eq!(json_lines(&pa)[0]["raw"], "a");
        assert_eq!(json_lines(&pb)[0]["raw"], "b");
        assert_eq!(json_lines(&pa)[0]["file"], "BAD\\xff_full.txt");
        assert_eq!(names_in(dir.path()).len(), 2);
    }

    #[test]
    fn a_failed_finish_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        // The final name is taken by a non-empty directory: the rename fails.
        let blocker = dir.path().join("F_full.txt.ab.rejects.jsonl");
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("keep"), "x").unwrap();
        let mut log = log(dir.path(), "F_full.txt", DeadLetterConfig::default());
        log.reject(&rejection(1, RejectReason::FieldCount, "x"))
            .unwrap();
        assert!(log.finish("ab").is_err());
        assert_eq!(
            names_in(dir.path()),
            vec![OsString::from("F_full.txt.ab.rejects.jsonl")]
        );
    }

    #[test]
    fn a_discarded_or_dropped_log_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut discarded = log(dir.path(), "x.txt", DeadLetterConfig::default());
        discarded
            .reject(&rejection(1, RejectReason::BadNumber, "bad"))
            .unwrap();
        discarded.discard();
        let mut dropped = log(dir.path(), "y.txt", DeadLetterConfig::default());
        dropped
            .reject(&rejection(1, RejectReason::BadNumber, "bad"))
            .unwrap();
        drop(dropped);
        assert_eq!(names_in(dir.path()).len(), 0);
    }

    #[test]
    fn no_rejects_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path(), "x.txt", DeadLetterConfig::default());
        assert!(log.finish("ff").unwrap().is_none());
        assert_eq!(names_in(dir.path()).len(), 0);
    }
}
