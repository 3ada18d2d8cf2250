//! Pass 1 over a file: fingerprint its content, validate every line, log the rejects, and learn
//! the local days it covers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::Progress;
use super::outcome::LoadError;
use crate::account::dead_letter::DeadLetterLog;
use crate::model::Bucket;
use crate::pipeline::validate::{BarReader, Row};
use crate::source::firstrate::FirstRate;

/// Read buffer of both passes.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What pass 1 learned of a file.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// BLAKE3 of the whole content, hex.
    pub(crate) fingerprint: String,
    pub(crate) size: u64,
    pub(crate) rows_in: u64,
    pub(crate) rows_rejected: u64,
    pub(crate) rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Month buckets holding at least one good row.
    pub(crate) months: BTreeSet<Bucket>,
    /// Exchange-local days of the earliest and the latest good row.
    pub(crate) days: Option<(NaiveDate, NaiveDate)>,
    /// UTC milliseconds of the first and the last good row.
    pub(crate) first_bar: Option<i64>,
    pub(crate) last_bar: Option<i64>,
}

impl Scan {
    fn add_bar(&mut self, ts_millis: i64, bucket: Bucket, day: NaiveDate) {
        self.first_bar.get_or_insert(ts_millis);
        self.last_bar = Some(ts_millis);
        self.months.insert(bucket);
        self.days = Some(match self.days {
            None => (day, day),
            Some((first, last)) => (first.min(day), last.max(day)),
        });
    }
}

/// The running BLAKE3 hash of everything read; shared so the caller can finish it after the
/// reader was consumed.
type SharedHasher = Arc<Mutex<blake3::Hasher>>;

/// Reads everything through a BLAKE3 hasher (one lock per buffer refill, not per line).
struct Hashing<R> {
    inner: R,
    hasher: SharedHasher,
    progress: Option<Arc<Progress>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(&buf[..n]);
        if let Some(p) = &self.progress {
            p.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// A file opened for one pass: validated rows, and the hash of what was read.
pub(crate) struct Pass {
    path: PathBuf,
    rows: BarReader<FirstRate<BufReader<Hashing<File>>>>,
    hasher: SharedHasher,
}

impl Pass {
    /// A pass over `file` from its start (`path` names it in errors).
    pub(crate) fn new(
        file: &File,
        path: &Path,
        tz: Tz,
        progress: Option<Arc<Progress>>,
    ) -> Result<Self, LoadError> {
        let read_error = |source| LoadError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = file.try_clone().map_err(read_error)?;
        file.seek(SeekFrom::Start(0)).map_err(read_error)?;
        let hasher = SharedHasher::default();
        let reader = BufReader::with_capacity(
            READ_BUFFER_BYTES,
            Hashing {
                inner: file,
                hasher: Arc::clone(&hasher),
                progress,
            },
        );
        Ok(Self {
            path: path.to_owned(),
            rows: BarReader::new(reader, tz),
            hasher,
        })
    }

    /// The next row, or None at the end of the file.
    pub(crate) fn next_row(&mut self) -> Result<Option<Row>, LoadError> {
        match self.rows.next() {
            None => Ok(None),
            Some(Ok(row)) => Ok(Some(row)),
            Some(Err(source)) => Err(LoadError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The fingerprint of everything read (the whole file once `next_row` returned None).
    pub(crate) fn fingerprint(&self) -> String {
        let h = self.hasher.lock().unwrap_or_else(PoisonError::into_inner);
        h.finalize().to_hex().to_string()
    }
}

/// Opens a claimed file once, for both passes: without following a symbolic link and without
/// blocking on a FIFO, and only if the descriptor is a regular file. Whatever is at the path
/// now is what is read, even if it was swapped in after the watcher saw a regular file there.
pub(crate) fn open_regular(path: &Path) -> Result<File, LoadError> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        // O_NOFOLLOW on a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(LoadError::NotRegular {
                path: path.to_owned(),
                kind: "a symbolic link",
            });
        }
        Err(source) => {
            return Err(LoadError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let kind = file
        .metadata()
        .map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?
        .file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(LoadError::NotRegular {
        path: path.to_owned(),
        kind: what,
    })
}

/// Pass 1: fingerprint, validate every line, write the dead-letter log, learn the covered range.
/// Blocking (file I/O and CPU): run it off the async runtime.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    tz: Tz,
    dead_letter: &mut DeadLetterLog,
    progress: Option<Arc<Progress>>,
) -> Result<Scan, LoadError> {
    let mut pass = Pass::new(file, path, tz, progress)?;
    let mut s = Scan::default();
    while let Some(row) = pass.next_row()? {
        s.rows_in += 1;
        match row {
            Row::Bar(v) => s.add_bar(v.bar.ts_millis, v.bucket, v.local_date),
            Row::Rejected(r) => {
                s.rows_rejected += 1;
                *s.rejected_by_reason.entry(r.reason.code()).or_default() += 1;
                dead_letter
                    .write(r.line, &r.raw, r.reason.code(), &r.message)
                    .map_err(LoadError::DeadLetter)?;
            }
        }
    }
    s.fingerprint = pass.fingerprint();
    s.size = file
        .metadata()
        .map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?
        .len();
    Ok(s)
}
