//! Packing generated files the way vendors deliver them: each gzipped, each zstd-compressed,
//! or all in one zip bundle (Deflate members).
//!
//! It works on the files already written (whatever their layout): each packed file is written
//! as `NAME.part`, synced and renamed like the plain ones, then the plain files are removed.
//! The output is deterministic (no time stamps in the gzip headers or the zip entries).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Name of the bundle `--pack zip` writes.
pub const BUNDLE_NAME: &str = "bundle.zip";
/// zstd level of `--pack zst` (zstd's default).
const ZSTD_LEVEL: i32 = 3;
/// Buffer between the plain file and its packed copy.
const BUFFER_BYTES: usize = 256 * 1024;

/// How to pack the generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pack {
    /// Each file gzipped, `NAME.gz`.
    Gz,
    /// Each file zstd-compressed, `NAME.zst`.
    Zst,
    /// All files as Deflate members of one zip, `bundle.zip`.
    Zip,
}

/// Packs `written` (the plain files and their row counts, all in `dir`) and removes them;
/// returns the packed files and their row counts (a zip: one file, the rows of all).
pub fn pack(written: &[(PathBuf, u64)], pack: Pack, dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let packed = match pack {
        Pack::Gz | Pack::Zst => written
            .iter()
            .map(|(path, rows)| Ok((compress(path, pack)?, *rows)))
            .collect::<io::Result<Vec<_>>>()?,
        Pack::Zip => vec![(
            bundle(written, dir)?,
            written.iter().map(|(_, rows)| rows).sum(),
        )],
    };
    for (path, _) in written {
        fs::remove_file(path)?;
    }
    Ok(packed)
}

/// `path` + `suffix`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `path.gz` or `path.zst`; returns its path.
fn compress(path: &Path, pack: Pack) -> io::Result<PathBuf> {
    let suffix = if pack == Pack::Gz { ".gz" } else { ".zst" };
    let target = with_suffix(path, suffix);
    write_then_rename(&target, |out| {
        let mut plain = BufReader::with_capacity(BUFFER_BYTES, File::open(path)?);
        if pack == Pack::Gz {
            let mut enc = GzEncoder::new(out, Compression::default());
            io::copy(&mut plain, &mut enc)?;
            enc.finish()?.flush()
        } else {
            let mut enc = zstd::Encoder::new(out, ZSTD_LEVEL)?;
            io::copy(&mut plain, &mut enc)?;
            enc.finish()?.flush()
        }
    })?;
    Ok(target)
}

/// Writes `dir/bundle.zip` holding every file of `written` under its own name.
fn bundle(written: &[(PathBuf, u64)], dir: &Path) -> io::Result<PathBuf> {
    let target = dir.join(BUNDLE_NAME);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644)
        .large_file(true);
    let part = with_suffix(&target, ".part");
    let mut zip = ZipWriter::new(File::create(&part)?);
    for (path, _) in written {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        zip.start_file(name, options).map_err(io::Error::other)?;
        let mut plain = BufReader::with_capacity(BUFFER_BYTES, File::open(path)?);
        io::copy(&mut plain, &mut zip)?;
    }
    let file = zip.finish().map_err(io::Error::other)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&part, &target)?;
    Ok(target)
}

/// Writes `target` as `target.part` through `write`, syncs it and renames it.
fn write_then_rename(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let part = with_suffix(target, ".part");
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&part)?);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&part, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenSpec, write_all};
    use bar_ingest::source::container::{Delivery, Limits};
    use chrono::NaiveDate;
    use std::io::Read;

    fn spec() -> GenSpec {
        GenSpec {
            symbols: vec!["AAPL".into(), "BRK.B".into()],
            start: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 3, 6).unwrap(),
            seed: 3,
        }
    }

    /// Every unit of every packed file, decoded: (inner name, bytes).
    fn unpacked(packed: &[(PathBuf, u64)]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (path, _) in packed {
            let file = File::open(path).unwrap();
            let name = path.file_name().unwrap();
            for unit in Delivery::read(&file, name, Limits::default())
                .unwrap()
                .units()
            {
                let mut bytes = Vec::new();
                unit.open(&file).unwrap().read_to_end(&mut bytes).unwrap();
                out.push((unit.inner_name().to_string_lossy().into_owned(), bytes));
            }
        }
        out
    }

    #[test]
    fn packed_files_decode_to_the_plain_files_and_replace_them() {
        for how in [Pack::Gz, Pack::Zst, Pack::Zip] {
            let dir = tempfile::tempdir().unwrap();
            let written = write_all(&spec(), dir.path()).unwrap();
            let plain: Vec<(String, Vec<u8>)> = written
                .iter()
                .map(|(p, _)| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, fs::read(p).unwrap())
                })
                .collect();
            let packed = pack(&written, how, dir.path()).unwrap();
            assert_eq!(unpacked(&packed), plain, "{how:?}");
            let left = fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(
                left,
                packed.len(),
                "{how:?}: only the packed files are left"
            );
            let rows: u64 = written.iter().map(|(_, r)| r).sum();
            assert_eq!(packed.iter().map(|(_, r)| r).sum::<u64>(), rows);
        }
    }
}
