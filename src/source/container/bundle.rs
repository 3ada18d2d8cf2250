//! Zip bundles: the units listed from the central directory, and one member read as a stream
//! whose size and CRC-32 are checked against its directory entry.
//!
//! The `zip` crate parses the directory (zip64, comments, name encodings); a member is decoded
//! here, from its local header on, with `flate2` (Deflate) and `deflate64` (Deflate64): the
//! crate's own member reader borrows the archive, and a unit's reader must own what it reads.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use zip::{CompressionMethod, ZipArchive};

use super::positioned::{Positioned, read_fully_at};
use super::{
    Body, ContainerError, Limits, READ_BUFFER_BYTES, Unit, flat_member_name, inner_name,
    member_name, shown,
};

/// Signature and fixed size of a local file header, and where its name and extra-field
/// lengths are.
const LOCAL_HEADER_MAGIC: &[u8] = b"PK\x03\x04";
const LOCAL_HEADER_BYTES: usize = 30;
const LOCAL_NAME_LEN_AT: usize = 26;
const LOCAL_EXTRA_LEN_AT: usize = 28;

/// End-of-central-directory record: signature, size, and where its fields are; it is followed
/// by a comment of up to 65 535 bytes, so it lies in the file's last `EOCD_BYTES + 65 535`.
const EOCD_MAGIC: &[u8] = b"PK\x05\x06";
const EOCD_BYTES: usize = 22;
const EOCD_ENTRIES_AT: usize = 10;
const EOCD_DIR_SIZE_AT: usize = 12;
const MAX_COMMENT_BYTES: usize = 65_535;
/// The zip64 locator (20 bytes, just before the record above) and the zip64 record it points
/// to, with the fields read from each.
const ZIP64_LOCATOR_MAGIC: &[u8] = b"PK\x06\x07";
const ZIP64_LOCATOR_BYTES: usize = 20;
const ZIP64_LOCATOR_OFFSET_AT: usize = 8;
const ZIP64_EOCD_MAGIC: &[u8] = b"PK\x06\x06";
const ZIP64_EOCD_BYTES: usize = 56;
const ZIP64_EOCD_ENTRIES_AT: usize = 32;
const ZIP64_EOCD_DIR_SIZE_AT: usize = 40;

/// How a member's bytes are compressed (the methods read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Stored,
    Deflate,
    Deflate64,
}

/// Why a member cannot be read, known from its directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Encrypted,
    UnsafePath,
    Symlink,
    Method(String),
}

/// Where a member is and what its directory entry says of it.
#[derive(Debug, Clone)]
pub(super) struct Member {
    header_start: u64,
    method: Result<Method, Problem>,
    compressed: u64,
    size: u64,
    crc32: u32,
}

/// The units of the zip `file` (named `name`, `size` bytes): one per file member.
pub(super) fn units(
    file: &File,
    name: &OsStr,
    size: u64,
    limits: Limits,
) -> Result<Vec<Unit>, ContainerError> {
    let corrupt = |e: zip::result::ZipError| ContainerError::Corrupt {
        unit: shown(name),
        what: "zip",
        detail: e.to_string(),
    };
    check_directory(file, name, size, &limits)?;
    let reader = file.try_clone().map_err(|source| ContainerError::Read {
        unit: shown(name),
        source,
    })?;
    let archive = ZipArchive::new(Positioned::new(reader, 0, None)).map_err(corrupt)?;
    check_count(name, archive.len() as u64, "entries", limits.max_members)?;
    let mut units = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_data(i).map_err(corrupt)?;
        let path = entry.name_raw();
        if entry.is_dir() || (!unsafe_path(path) && skipped(path)) {
            continue;
        }
        let member = Member {
            header_start: entry.header_start(),
            method: problem(path, entry.encrypted(), entry.is_symlink())
                .map_or_else(|| method(entry.compression()), Err),
            compressed: entry.compressed_size(),
            size: entry.size(),
            crc32: entry.crc32(),
        };
        units.push(Unit {
            index: units.len(),
            name: member_name(name, path),
            inner_name: inner_name(path),
            flat_name: flat_member_name(name, path),
            compressed_size: member.compressed,
            declared_size: Some(member.size),
            body: Body::Member(member),
            limits,
        });
    }
    Ok(units)
}

/// Refuses a directory over the limits before it is parsed (and held in memory).
fn check_directory(
    file: &File,
    name: &OsStr,
    size: u64,
    limits: &Limits,
) -> Result<(), ContainerError> {
    let (entries, bytes) = directory_extent(file, size).map_err(|source| ContainerError::Read {
        unit: shown(name),
        source,
    })?;
    check_count(name, entries, "entries", limits.max_members)?;
    check_count(name, bytes, "bytes", limits.max_directory_bytes)
}

fn check_count(
    name: &OsStr,
    count: u64,
    what: &'static str,
    limit: u64,
) -> Result<(), ContainerError> {
    if count > limit {
        return Err(ContainerError::DirectoryTooLarge {
            unit: shown(name),
            what,
            count,
            limit,
        });
    }
    Ok(())
}

/// The entries and bytes of the central directory as its end records give them: the largest
/// over every end-of-directory signature in the file's tail (a fake one in a comment can only
/// make the check stricter), (0, 0) when there is none (the parser then refuses the file).
fn directory_extent(file: &File, size: u64) -> io::Result<(u64, u64)> {
    let tail_len = size.min((EOCD_BYTES + MAX_COMMENT_BYTES) as u64);
    let tail_start = size - tail_len;
    let mut tail = vec![0; tail_len as usize];
    let got = read_fully_at(file, &mut tail, tail_start)?;
    tail.truncate(got);
    let mut extent = (0, 0);
    for at in (0..tail.len().saturating_sub(EOCD_BYTES - 1))
        .filter(|&i| tail[i..].starts_with(EOCD_MAGIC))
    {
        let record = &tail[at..at + EOCD_BYTES];
        let mut found = (
            u64::from(le16(record, EOCD_ENTRIES_AT)),
            u64::from(le32(record, EOCD_DIR_SIZE_AT)),
        );
        if at >= ZIP64_LOCATOR_BYTES {
            let locator = &tail[at - ZIP64_LOCATOR_BYTES..at];
            if let Some(zip64) = zip64_extent(file, locator)? {
                found = (found.0.max(zip64.0), found.1.max(zip64.1));
            }
        }
        extent = (extent.0.max(found.0), extent.1.max(found.1));
    }
    Ok(extent)
}

/// The entries and bytes of the zip64 end record a zip64 locator points to, if it is one.
fn zip64_extent(file: &File, locator: &[u8]) -> io::Result<Option<(u64, u64)>> {
    if !locator.starts_with(ZIP64_LOCATOR_MAGIC) {
        return Ok(None);
    }
    let mut record = [0u8; ZIP64_EOCD_BYTES];
    let got = read_fully_at(file, &mut record, le64(locator, ZIP64_LOCATOR_OFFSET_AT))?;
    if got < ZIP64_EOCD_BYTES || !record.starts_with(ZIP64_EOCD_MAGIC) {
        return Ok(None);
    }
    Ok(Some((
        le64(&record, ZIP64_EOCD_ENTRIES_AT),
        le64(&record, ZIP64_EOCD_DIR_SIZE_AT),
    )))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

/// An absolute path (`/x`, `\x`, `C:x`), a `..` component, or a NUL byte.
fn unsafe_path(path: &[u8]) -> bool {
    path.first().is_some_and(|b| *b == b'/' || *b == b'\\')
        || path.get(1) == Some(&b':')
        || path.contains(&0)
        || path
            .split(|b| *b == b'/' || *b == b'\\')
            .any(|c| c == b"..")
}

/// Not a unit: anything under `__MACOSX/`, a dot-file.
fn skipped(path: &[u8]) -> bool {
    let mut components = path.split(|b| *b == b'/');
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    components.any(|c| c == b"__MACOSX") || base.starts_with(b".")
}

/// What keeps a member from being read, known from its directory entry.
fn problem(path: &[u8], encrypted: bool, symlink: bool) -> Option<Problem> {
    if unsafe_path(path) {
        Some(Problem::UnsafePath)
    } else if encrypted {
        Some(Problem::Encrypted)
    } else if symlink {
        Some(Problem::Symlink)
    } else {
        None
    }
}

fn method(method: CompressionMethod) -> Result<Method, Problem> {
    match method {
        CompressionMethod::Stored => Ok(Method::Stored),
        CompressionMethod::Deflated => Ok(Method::Deflate),
        CompressionMethod::Deflate64 => Ok(Method::Deflate64),
        other => Err(Problem::Method(format!(
            "the compression method {}",
            method_name(other)
        ))),
    }
}

/// `Bzip2 (12)` for a method this build cannot read (the crate names it only by number).
#[allow(deprecated)] // `Unsupported` is how the crate reports a method it has no variant for.
fn method_name(method: CompressionMethod) -> String {
    match method {
        CompressionMethod::Unsupported(n) => {
            format!("{} ({n})", CompressionMethod::name_from_u16(n))
        }
        other => format!("{other:?}"),
    }
}

impl Member {
    /// Refuses a member that cannot be read, or that declares more bytes than the limit.
    pub(super) fn check(&self, unit: &str, limits: Limits) -> Result<(), ContainerError> {
        let unit = unit.to_owned();
        match &self.method {
            Ok(_) => {}
            Err(Problem::Encrypted) => return Err(ContainerError::Encrypted { unit }),
            Err(Problem::UnsafePath) => return Err(ContainerError::UnsafePath { unit }),
            Err(Problem::Symlink) => {
                let what = "a symbolic link member".into();
                return Err(ContainerError::Unsupported { unit, what });
            }
            Err(Problem::Method(what)) => {
                let what = format!("{what} of this zip member (only Stored, Deflate, Deflate64)");
                return Err(ContainerError::Unsupported { unit, what });
            }
        }
        let (limit, rule) = limits.decoded_limit(self.compressed);
        if self.size > limit {
            return Err(ContainerError::TooLarge {
                unit,
                what: "declares",
                decoded: self.size,
                compressed: self.compressed,
                limit,
                rule,
            });
        }
        Ok(())
    }

    /// What is decoded, for messages.
    pub(super) fn what(&self) -> &'static str {
        match self.method {
            Ok(Method::Stored) => "stored zip member",
            Ok(Method::Deflate) => "Deflate zip member",
            _ => "Deflate64 zip member",
        }
    }

    /// The member's decoded bytes, checked against its size and CRC-32 (after [`Self::check`]).
    pub(super) fn open(&self, file: File, unit: &Arc<str>) -> io::Result<Box<dyn Read + Send>> {
        let start = self.data_start(&file, unit)?;
        let end = start
            .checked_add(self.compressed)
            .ok_or_else(|| self.corrupt(unit, "its size passes the end of any file"))?;
        let raw = Positioned::new(file, start, Some(end));
        let decoded: Box<dyn Read + Send> = match self.method {
            Ok(Method::Stored) => Box::new(raw),
            Ok(Method::Deflate) => Box::new(flate2::bufread::DeflateDecoder::new(
                BufReader::with_capacity(READ_BUFFER_BYTES, raw),
            )),
            Ok(Method::Deflate64) => Box::new(deflate64::Deflate64Decoder::with_buffer(
                BufReader::with_capacity(READ_BUFFER_BYTES, raw),
            )),
            Err(_) => return Err(self.corrupt(unit, "it cannot be read")),
        };
        Ok(Box::new(Checked {
            inner: decoded,
            unit: Arc::clone(unit),
            what: self.what(),
            declared: self.size,
            crc32: self.crc32,
            hasher: crc32fast::Hasher::new(),
            decoded: 0,
            checked: false,
        }))
    }

    /// Where the member's data starts: after its local header, name and extra field.
    fn data_start(&self, file: &File, unit: &Arc<str>) -> io::Result<u64> {
        let mut header = [0u8; LOCAL_HEADER_BYTES];
        let got = read_fully_at(file, &mut header, self.header_start).map_err(|source| {
            ContainerError::Read {
                unit: unit.to_string(),
                source,
            }
        })?;
        if got < LOCAL_HEADER_BYTES || !header.starts_with(LOCAL_HEADER_MAGIC) {
            return Err(self.corrupt(unit, "no local file header where the directory says"));
        }
        let variable = u64::from(le16(&header, LOCAL_NAME_LEN_AT))
            + u64::from(le16(&header, LOCAL_EXTRA_LEN_AT));
        Ok(self.header_start + LOCAL_HEADER_BYTES as u64 + variable)
    }

    fn corrupt(&self, unit: &str, detail: &str) -> io::Error {
        ContainerError::Corrupt {
            unit: unit.to_owned(),
            what: self.what(),
            detail: detail.to_owned(),
        }
        .into()
    }
}

/// A member's decoded bytes, failing when they pass its declared size, or end short of it or
/// with another CRC-32.
struct Checked<R> {
    inner: R,
    unit: Arc<str>,
    what: &'static str,
    declared: u64,
    crc32: u32,
    hasher: crc32fast::Hasher,
    decoded: u64,
    /// The size and CRC-32 were checked at the end.
    checked: bool,
}

impl<R: Read> Checked<R> {
    fn corrupt(&self, detail: String) -> io::Error {
        ContainerError::Corrupt {
            unit: self.unit.to_string(),
            what: self.what,
            detail,
        }
        .into()
    }

    fn check_end(&mut self) -> io::Result<()> {
        if self.decoded != self.declared {
            return Err(self.corrupt(format!(
                "it ends after {} of the {} bytes its directory entry declares",
                self.decoded, self.declared
            )));
        }
        let crc = self.hasher.clone().finalize();
        if crc != self.crc32 {
            return Err(self.corrupt(format!(
                "its CRC-32 is {crc:08x}, its directory entry says {:08x}",
                self.crc32
            )));
        }
        self.checked = true;
        Ok(())
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if !self.checked {
                self.check_end()?;
            }
            return Ok(0);
        }
        self.decoded += n as u64;
        if self.decoded > self.declared {
            return Err(self.corrupt(format!(
                "it has more bytes than the {} its directory entry declares",
                self.declared
            )));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
