//! Containers: how a delivery is packaged (plain, gzip, zstd, zip), the units it holds, and
//! each unit read as a stream of its decoded bytes, with limits that hostile input cannot pass.
//!
//! # What is accepted
//! - A plain file: one unit, its bytes as they are.
//! - gzip (`1f 8b`, or a `.gz` name): one unit, every member of a multi-member file decoded in
//!   turn (what `gzip -d` does).
//! - zstd (`28 b5 2f fd`, or a `.zst`/`.zstd` name): one unit, every frame decoded in turn.
//! - zip (`50 4b 03 04`, an empty zip `50 4b 05 06`, or a `.zip` name): one unit per file
//!   member, Stored, Deflate or Deflate64. Directories, anything under `__MACOSX/` and dot-files
//!   (`.DS_Store`, a `._x` of macOS) are not units. A member that is itself gzip or zstd (by its
//!   first bytes or its name) is decoded too; a zip inside a zip is refused.
//!
//! Magic bytes decide first, the name's extension second ([`Packaging::detect`]).
//!
//! # Units and their names
//! [`Delivery::read`] learns a delivery's units without decompressing anything (for a zip, from
//! its central directory). Each [`Unit`] has an [`index`](Unit::index) (0, 1, ... in directory
//! order, skipped members not counted) and a [`name`](Unit::name):
//! - plain, gzip, zstd: the delivery's own name (`AAPL_full_1min_adjsplit.txt.gz`);
//! - a zip member: `<zip name>!<member path>` (`A_bundle.zip!AAPL_full_1min_adjsplit.txt`),
//!   the member path as the zip stores it, `/`-separated.
//!
//! [`Unit::inner_name`] is the decoded file's own name (the last path component, without a
//! `.gz`/`.zst`/`.zstd` suffix: `AAPL_full_1min_adjsplit.txt`): the name to take a symbol or a
//! layout from. [`Unit::flat_name`] is the name as one path component (a member path's `/` and
//! `%` written `%2F` and `%25`): the name to derive a file name from, through
//! [`crate::names::derived`]. Show names in logs through [`crate::names::Shown`].
//!
//! # Reading
//! [`Unit::open`] takes the delivery's already-opened descriptor and returns a
//! `Box<dyn Read + Send>` of the unit's decoded bytes, from the unit's first byte, every time it
//! is called (the loader reads each unit twice). It reads with positioned reads on its own
//! duplicate of the descriptor, so readers never move each other's offset. Everything streams:
//! memory per open unit is a few read buffers and the decoder's window (32 KiB for Deflate,
//! 64 KiB for Deflate64, at most 2^[`ZSTD_WINDOW_LOG_MAX`] bytes for zstd), whatever the size.
//! The bytes read are exactly the decoded content: a fingerprint of them is the same for a
//! plain copy and any re-compressed copy. A zip member's size and CRC-32 are checked against its
//! directory entry; a gzip member's CRC-32 and size by the decoder.
//!
//! # Limits ([`Limits`])
//! A compressed unit may decode to at most `max(max_ratio × its compressed size, ratio_floor)`
//! bytes, and never more than `max_unit_bytes` (defaults: 250 ×, 64 MiB, 16 GiB). A zip member
//! whose directory entry declares more is refused before anything is decoded; any other unit is
//! stopped by an error once it passes the limit. A zip with more than `max_members` entries or a
//! central directory over `max_directory_bytes` is refused before the directory is parsed.
//!
//! # Errors
//! Every error is a [`ContainerError`] naming the unit (or the delivery), in an
//! [`std::io::Error`] when it comes out of a reader ([`ContainerError::of`] finds it again).
//! Map each to the file's (or the unit's) failure with [`ContainerError::reason`] as its code
//! and the message as its reason: it goes to `failed/`, nothing of the unit is written.
//! [`ContainerError::Read`] is a read error of the file system, not a fault of the content.

mod bundle;
mod guard;
mod positioned;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::Arc;

use crate::names::Shown;
use bundle::Member;
use guard::{Capped, Labeled};
use positioned::Positioned;

pub use guard::LimitRule;

/// Bytes [`Packaging::detect`] looks at.
pub const MAGIC_BYTES: usize = 4;

/// Largest zstd window accepted (2^27 = 128 MiB, zstd's own default limit): a frame asking for
/// more is refused, so a hostile frame cannot make the decoder allocate more.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Read buffer between the file and a decoder.
const READ_BUFFER_BYTES: usize = 256 * 1024;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const EMPTY_ZIP_MAGIC: &[u8] = b"PK\x05\x06";

/// How a delivery (or a zip member) is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packaging {
    /// The bytes as they are.
    Plain,
    /// gzip, possibly several members one after the other.
    Gzip,
    /// zstd, possibly several frames.
    Zstd,
    /// A zip archive: one unit per file member.
    Zip,
}

impl Packaging {
    /// The packaging of a file named `name` whose first bytes (up to [`MAGIC_BYTES`]) are
    /// `first_bytes`: by the magic bytes first, by the name's extension (`.gz`, `.zst`, `.zstd`,
    /// `.zip`, any case) second, [`Packaging::Plain`] otherwise.
    pub fn detect(name: &OsStr, first_bytes: &[u8]) -> Packaging {
        Self::by_magic(first_bytes)
            .or_else(|| Self::by_extension(name))
            .unwrap_or(Packaging::Plain)
    }

    fn by_magic(first: &[u8]) -> Option<Packaging> {
        if first.starts_with(GZIP_MAGIC) {
            Some(Packaging::Gzip)
        } else if first.starts_with(ZSTD_MAGIC) {
            Some(Packaging::Zstd)
        } else if first.starts_with(ZIP_MAGIC) || first.starts_with(EMPTY_ZIP_MAGIC) {
            Some(Packaging::Zip)
        } else {
            None
        }
    }

    fn by_extension(name: &OsStr) -> Option<Packaging> {
        match compression_suffix(name.as_bytes())?.1 {
            ".gz" => Some(Packaging::Gzip),
            ".zst" | ".zstd" => Some(Packaging::Zstd),
            _ => Some(Packaging::Zip),
        }
    }

    /// `plain`, `gzip`, `zstd` or `zip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Packaging::Plain => "plain",
            Packaging::Gzip => "gzip",
            Packaging::Zstd => "zstd",
            Packaging::Zip => "zip",
        }
    }
}

impl fmt::Display for Packaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The packaging suffix `name` ends with (ASCII case ignored): its length in bytes and which.
fn compression_suffix(name: &[u8]) -> Option<(usize, &'static str)> {
    [".gz", ".zst", ".zstd", ".zip"]
        .into_iter()
        .find(|s| {
            name.len() > s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
        })
        .map(|s| (s.len(), s))
}

/// The limits that keep a hostile delivery from filling memory or running forever (see the
/// module docs). [`Limits::default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decoded bytes a compressed unit may have per compressed byte (250). Real bar files
    /// compress 4× to 15×; 1 GB of zeros compresses about 1000× with gzip, far more with zstd.
    pub max_ratio: u64,
    /// Decoded bytes a compressed unit may have whatever its ratio (64 MiB): a small file of
    /// repetitive lines compresses far beyond `max_ratio`, and 64 MiB costs nothing to read.
    pub ratio_floor: u64,
    /// Decoded bytes no unit may pass (16 GiB): many times the largest vendor file (a full
    /// one-minute history of one symbol is about 300 MB, a day of every US ticker about 350 MB).
    pub max_unit_bytes: u64,
    /// Entries of a zip's central directory, files and skipped ones alike (100 000; a
    /// FirstRate letter bundle holds hundreds).
    pub max_members: u64,
    /// Bytes of a zip's central directory (64 MiB): it is held in memory while the units are
    /// listed, about its own size.
    pub max_directory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ratio: 250,
            ratio_floor: 64 << 20,
            max_unit_bytes: 16 << 30,
            max_members: 100_000,
            max_directory_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The most decoded bytes a unit of `compressed` bytes may have, and which rule sets it.
    pub fn decoded_limit(&self, compressed: u64) -> (u64, LimitRule) {
        let by_ratio = compressed
            .saturating_mul(self.max_ratio)
            .max(self.ratio_floor);
        if by_ratio < self.max_unit_bytes {
            let rule = if by_ratio == self.ratio_floor {
                LimitRule::Floor
            } else {
                LimitRule::Ratio(self.max_ratio)
            };
            (by_ratio, rule)
        } else {
            (self.max_unit_bytes, LimitRule::Absolute)
        }
    }
}

/// Why a delivery or one of its units cannot be read. The message names the unit (escaped as
/// in logs) and what to do where something can be done.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Not a valid archive or stream: bad header, corrupt data, truncated, a size or CRC-32
    /// that disagrees with the directory.
    #[error("{unit}: corrupt or truncated {what}: {detail}")]
    Corrupt {
        unit: String,
        what: &'static str,
        detail: String,
    },
    /// Decoded more bytes than [`Limits`] allow (a decompression bomb, or a limit to raise).
    #[error(
        "{unit}: {what} {decoded} bytes from {compressed} compressed bytes, over the limit of \
         {limit} bytes ({rule}); refused as a likely decompression bomb"
    )]
    TooLarge {
        unit: String,
        /// `decoded more than` (stopped while decoding) or `declares` (a zip entry's size).
        what: &'static str,
        decoded: u64,
        compressed: u64,
        limit: u64,
        rule: LimitRule,
    },
    /// A zip whose directory is over [`Limits::max_members`] or [`Limits::max_directory_bytes`].
    #[error("{unit}: the zip's central directory has {count} {what}, over the limit of {limit}")]
    DirectoryTooLarge {
        unit: String,
        /// `entries` or `bytes`.
        what: &'static str,
        count: u64,
        limit: u64,
    },
    /// An encrypted zip member: it cannot be read without a password.
    #[error("{unit}: the zip member is encrypted; deliver it unencrypted")]
    Encrypted { unit: String },
    /// A compression method or a kind of member that is not read.
    #[error("{unit}: {what} is not supported")]
    Unsupported { unit: String, what: String },
    /// A zip member whose path is absolute or climbs out with `..` (never extracted anyway:
    /// refused because no honest bundle has one).
    #[error("{unit}: the zip member's path is absolute or contains `..`; refused")]
    UnsafePath { unit: String },
    /// The file system failed to read the file.
    #[error("{unit}: read error: {source}")]
    Read {
        unit: String,
        #[source]
        source: io::Error,
    },
}

impl ContainerError {
    /// A stable code for the failure: `container_corrupt`, `container_too_large`,
    /// `container_encrypted`, `container_unsupported`, `container_unsafe_path`, `read_error`.
    pub fn reason(&self) -> &'static str {
        match self {
            ContainerError::Corrupt { .. } => "container_corrupt",
            ContainerError::TooLarge { .. } | ContainerError::DirectoryTooLarge { .. } => {
                "container_too_large"
            }
            ContainerError::Encrypted { .. } => "container_encrypted",
            ContainerError::Unsupported { .. } => "container_unsupported",
            ContainerError::UnsafePath { .. } => "container_unsafe_path",
            ContainerError::Read { .. } => "read_error",
        }
    }

    /// The container error inside an I/O error from a unit's reader, if it holds one.
    pub fn of(error: &io::Error) -> Option<&ContainerError> {
        error.get_ref()?.downcast_ref::<ContainerError>()
    }
}

impl From<ContainerError> for io::Error {
    /// `InvalidData` for a fault of the content, the original kind for a read error.
    fn from(e: ContainerError) -> Self {
        let kind = match &e {
            ContainerError::Read { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// A unit's name as shown in messages (escaped like a path in a log line).
fn shown(name: &OsStr) -> String {
    Shown(Path::new(name)).to_string()
}

/// A delivery (one file) and its units.
#[derive(Debug, Clone)]
pub struct Delivery {
    packaging: Packaging,
    units: Vec<Unit>,
}

impl Delivery {
    /// Learns how `file` (named `name`, the file's own name) is packaged and lists its units,
    /// without decoding any. Reads its first bytes and, for a zip, its central directory.
    pub fn read(file: &File, name: &OsStr, limits: Limits) -> Result<Delivery, ContainerError> {
        let read_error = |source| ContainerError::Read {
            unit: shown(name),
            source,
        };
        let size = file.metadata().map_err(read_error)?.len();
        let mut first = [0u8; MAGIC_BYTES];
        let got = positioned::read_prefix(file, &mut first).map_err(read_error)?;
        let packaging = Packaging::detect(name, &first[..got]);
        let units = match packaging {
            Packaging::Zip => bundle::units(file, name, size, limits)?,
            _ => vec![Unit::whole(name, packaging, size, limits)],
        };
        Ok(Delivery { packaging, units })
    }

    /// How the file is packaged.
    pub fn packaging(&self) -> Packaging {
        self.packaging
    }

    /// Its units, in order (none for an empty zip).
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Its units, owned.
    pub fn into_units(self) -> Vec<Unit> {
        self.units
    }
}

/// One unit of a delivery: what is accounted, fingerprinted and loaded as one file.
#[derive(Debug, Clone)]
pub struct Unit {
    index: usize,
    name: OsString,
    inner_name: OsString,
    flat_name: OsString,
    compressed_size: u64,
    declared_size: Option<u64>,
    body: Body,
    limits: Limits,
}

/// Where a unit's bytes are and how they are encoded.
#[derive(Debug, Clone)]
enum Body {
    /// The whole file, plain, gzip or zstd.
    Whole(Packaging),
    /// A zip member.
    Member(Member),
}

impl Unit {
    /// The one unit of a plain, gzip or zstd file of `size` bytes.
    fn whole(name: &OsStr, packaging: Packaging, size: u64, limits: Limits) -> Unit {
        Unit {
            index: 0,
            name: name.to_owned(),
            inner_name: inner_name(name.as_bytes()),
            flat_name: name.to_owned(),
            compressed_size: size,
            declared_size: (packaging == Packaging::Plain).then_some(size),
            body: Body::Whole(packaging),
            limits,
        }
    }

    /// Whether the unit is the whole file as it is (plain, not compressed, not a member).
    pub fn is_whole_plain(&self) -> bool {
        matches!(self.body, Body::Whole(Packaging::Plain))
    }

    /// Its position among the delivery's units, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its name: the delivery's name, or `<zip name>!<member path>` (module docs).
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// The decoded file's own name: the last component of the name, without a compression
    /// suffix (`.gz`, `.zst`, `.zstd`). For symbol and layout rules.
    pub fn inner_name(&self) -> &OsStr {
        &self.inner_name
    }

    /// The name as one path component (no `/`), distinct for distinct names: to derive file
    /// names from, through [`crate::names::derived`].
    pub fn flat_name(&self) -> &OsStr {
        &self.flat_name
    }

    /// Bytes the unit takes in the file (the whole file for plain, gzip and zstd).
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }

    /// Decoded size, when known without decoding: a plain file's size, a zip member's size
    /// from its directory entry (checked while reading); None for gzip and zstd.
    pub fn declared_size(&self) -> Option<u64> {
        self.declared_size
    }

    /// The packaging of the unit's own bytes, as far as known without reading them: the file's
    /// for a whole file, a zip member's by its name (its first bytes decide when opened).
    pub fn packaging(&self) -> Packaging {
        match &self.body {
            Body::Whole(p) => *p,
            Body::Member(_) => Packaging::by_extension(&self.name)
                .filter(|p| *p != Packaging::Zip)
                .unwrap_or(Packaging::Plain),
        }
    }

    /// The unit's decoded bytes from its start, read from `file` (the delivery's descriptor,
    /// which is neither moved nor closed). Errors, here and from the reader, carry a
    /// [`ContainerError`] naming the unit.
    pub fn open(&self, file: &File) -> io::Result<Box<dyn Read + Send>> {
        let name: Arc<str> = shown(&self.name).into();
        let file = file.try_clone().map_err(|source| ContainerError::Read {
            unit: name.to_string(),
            source,
        })?;
        let (limit, rule) = self.limits.decoded_limit(self.compressed_size);
        let decoded: Box<dyn Read + Send> = match &self.body {
            Body::Whole(Packaging::Plain) => return Ok(Box::new(Positioned::new(file, 0, None))),
            Body::Whole(packaging) => {
                let raw = Positioned::new(file, 0, None);
                let what = if *packaging == Packaging::Gzip {
                    "gzip file"
                } else {
                    "zstd file"
                };
                Box::new(Labeled::new(decoder(*packaging, raw, &name)?, &name, what))
            }
            Body::Member(member) => {
                member.check(&name, self.limits)?;
                let raw = Labeled::new(member.open(file, &name)?, &name, member.what());
                self.nested(Box::new(raw), &name)?
            }
        };
        let capped = Capped::new(decoded, &name, self.compressed_size, limit, rule);
        Ok(Box::new(capped))
    }

    /// A zip member's decoded bytes, decoded once more when they are gzip or zstd.
    fn nested(
        &self,
        mut raw: Box<dyn Read + Send>,
        name: &Arc<str>,
    ) -> io::Result<Box<dyn Read + Send>> {
        let mut first = [0u8; MAGIC_BYTES];
        let got = fill(&mut raw, &mut first)?;
        let prefix = io::Cursor::new(first[..got].to_vec());
        let whole: Box<dyn Read + Send> = Box::new(prefix.chain(raw));
        match Packaging::detect(&self.name, &first[..got]) {
            Packaging::Plain => Ok(whole),
            Packaging::Zip => Err(ContainerError::Unsupported {
                unit: name.to_string(),
                what: "a zip inside a zip".into(),
            }
            .into()),
            p => {
                let what = if p == Packaging::Gzip {
                    "gzip member"
                } else {
                    "zstd member"
                };
                Ok(Box::new(Labeled::new(decoder(p, whole, name)?, name, what)))
            }
        }
    }
}

/// A streaming decoder of `packaging` (gzip or zstd) over `raw`.
fn decoder<R: Read + Send + 'static>(
    packaging: Packaging,
    raw: R,
    name: &str,
) -> io::Result<Box<dyn Read + Send>> {
    let buffered = BufReader::with_capacity(READ_BUFFER_BYTES, raw);
    match packaging {
        Packaging::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered))),
        _ => {
            let mut zstd =
                zstd::stream::read::Decoder::with_buffer(buffered).map_err(|source| {
                    ContainerError::Read {
                        unit: name.to_owned(),
                        source,
                    }
                })?;
            zstd.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|source| ContainerError::Read {
                    unit: name.to_owned(),
                    source,
                })?;
            Ok(Box::new(zstd))
        }
    }
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The last path component of `name` without its compression suffix (`.gz`, `.zst`,
/// `.zstd`; a `.zip` stays).
fn inner_name(name: &[u8]) -> OsString {
    let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
    let cut = match compression_suffix(base) {
        Some((len, suffix)) if suffix != ".zip" => base.len() - len,
        _ => base.len(),
    };
    OsString::from_vec(base[..cut].to_vec())
}

/// `<zip name>!<member path>`: the unit name of a member.
fn member_name(zip: &OsStr, member: &[u8]) -> OsString {
    let mut name = zip.as_bytes().to_vec();
    name.push(b'!');
    name.extend_from_slice(member);
    OsString::from_vec(name)
}

/// [`member_name`] as one path component: the member path's `%` and `/` as `%25` and `%2F`.
fn flat_member_name(zip: &OsStr, member: &[u8]) -> OsString {
    let mut name = zip.as_bytes().to_vec();
    name.push(b'!');
    for &b in member {
        match b {
            b'%' => name.extend_from_slice(b"%25"),
            b'/' => name.extend_from_slice(b"%2F"),
            _ => name.push(b),
        }
    }
    OsString::from_vec(name)
}

#[cfg(test)]
mod tests;
