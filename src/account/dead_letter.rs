//! The dead-letter log: one JSON line per rejected input row (file, line, raw text, reason code,
//! message, time), one log file per input file, written tmp + fsync + rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One dead-letter line. Line 0 means the entry is about the whole file (e.g. `empty_file`).
#[derive(Debug, Serialize)]
pub(crate) struct DeadLetterEntry<'a> {
    pub file: &'a str,
    pub line: u64,
    pub raw: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
    /// RFC 3339 UTC time the row was rejected.
    pub time: &'a str,
}

/// Writes the rejects of one input file to `<dir>/<file>.<instance>.rejects.jsonl.tmp`, and on
/// [`finish`](Self::finish) renames it to `<dir>/<file>.<fingerprint12>.rejects.jsonl`.
#[derive(Debug)]
pub(crate) struct DeadLetterLog {
    file_name: String,
    dir: PathBuf,
    tmp: PathBuf,
    /// Opened on the first entry, so files without rejects leave nothing behind.
    out: Option<BufWriter<File>>,
    count: u64,
    /// Formatted once per log; rows of one file are rejected within moments of each other.
    time: String,
}

impl DeadLetterLog {
    /// A log for the input file `file_name`, kept in `dir` (created if missing).
    pub fn new(dir: &Path, file_name: &str, instance: &str) -> Self {
        Self {
            file_name: file_name.to_owned(),
            dir: dir.to_owned(),
            tmp: dir.join(format!("{file_name}.{instance}.rejects.jsonl.tmp")),
            out: None,
            count: 0,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Appends one entry.
    pub fn write(
        &mut self,
        line: u64,
        raw: &str,
        reason: &str,
        message: &str,
    ) -> std::io::Result<()> {
        if self.out.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            self.out = Some(BufWriter::new(File::create(&self.tmp)?));
        }
        let out = self.out.as_mut().expect("opened above");
        let entry = DeadLetterEntry {
            file: &self.file_name,
            line,
            raw,
            reason,
            message,
            time: &self.time,
        };
        serde_json::to_writer(&mut *out, &entry)?;
        out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Drops what was written (the content was already accounted for, e.g. a duplicate).
    pub(crate) fn discard(mut self) {
        if self.out.take().is_some() {
            // Best effort: a leftover tmp file is overwritten by the next attempt.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }

    /// Flushes, fsyncs and renames the log to its final name; None if nothing was rejected.
    pub fn finish(mut self, fingerprint: &str) -> std::io::Result<Option<PathBuf>> {
        let Some(out) = self.out.take() else {
            return Ok(None);
        };
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let short = &fingerprint[..fingerprint.len().min(12)];
        let path = self
            .dir
            .join(format!("{}.{short}.rejects.jsonl", self.file_name));
        std::fs::rename(&self.tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(Some(path))
    }
}

/// Fsyncs a directory so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_land_as_json_lines_under_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DeadLetterLog::new(dir.path(), "AAPL_full.txt", "i1");
        log.write(
            3,
            "2005-01-03 08:00:00,x",
            "bad_number",
            "open `x` is not a number",
        )
        .unwrap();
        log.write(0, "", "empty_file", "the file is empty").unwrap();
        assert_eq!(log.count, 2);
        let path = log.finish("abcdef0123456789").unwrap().unwrap();
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            "AAPL_full.txt.abcdef012345.rejects.jsonl"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["line"], 3);
        assert_eq!(lines[0]["reason"], "bad_number");
        assert_eq!(lines[0]["raw"], "2005-01-03 08:00:00,x");
        assert_eq!(lines[0]["file"], "AAPL_full.txt");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        // No tmp file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_discarded_log_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DeadLetterLog::new(dir.path(), "x.txt", "i1");
        log.write(1, "bad", "bad_number", "no").unwrap();
        log.discard();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn no_rejects_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = DeadLetterLog::new(dir.path(), "x.txt", "i1");
        assert!(log.finish("ff").unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
