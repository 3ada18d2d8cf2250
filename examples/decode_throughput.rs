//! Decode throughput of the containers (`source::container`): a FirstRate-style file of about
//! 200 MB packed as gzip, zstd, a Deflate zip member and (when `7z` is installed) a Deflate64 zip
//! member, each decoded through `Unit::open`; prints MB/s of decoded output (best of three) and
//! checks the decoded bytes hash like the plain file.
//!
//! `cargo run --release --example decode_throughput -- DIR` writes the files into DIR.
//! `cargo run --release --example decode_throughput -- --decode FILE` decodes every unit of FILE
//! once and prints the bytes: run it under `/usr/bin/time -v` for the peak RSS.
//! A measurement, not a test: it asserts nothing about speed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bar_gen::GenSpec;
use bar_ingest::source::container::{Delivery, Limits};
use chrono::NaiveDate;

/// Timed runs per packaging; the best is reported.
const RUNS: usize = 3;
/// Symbols of the generated file (one file, their bars one after the other): about 200 MB.
const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "SPY", "QQQ"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, file] if flag == "--decode" => decode_once(Path::new(file)),
        [dir] => throughput(Path::new(dir)),
        _ => anyhow::bail!("usage: decode_throughput DIR | decode_throughput --decode FILE"),
    }
}

/// Decodes every unit of `path` once; prints units, bytes, seconds.
fn decode_once(path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let (units, bytes, _) = decode_all(path)?;
    println!(
        "{}: {units} units, {bytes} decoded bytes in {:.1}s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every unit of `path` decoded: (units, decoded bytes, BLAKE3 of all of them in order).
fn decode_all(path: &Path) -> anyhow::Result<(usize, u64, blake3::Hash)> {
    let file = File::open(path)?;
    let name = path.file_name().unwrap_or(OsStr::new(""));
    let delivery = Delivery::read(&file, name, Limits::default())?;
    let mut hasher = blake3::Hasher::new();
    let mut bytes = 0;
    let mut buf = vec![0u8; 256 * 1024];
    for unit in delivery.units() {
        let mut reader = unit.open(&file)?;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            hasher.update(&buf[..n]);
        }
    }
    Ok((delivery.units().len(), bytes, hasher.finalize()))
}

fn throughput(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let plain = dir.join("BENCH_full_1min_adjsplit.txt");
    generate(&plain)?;
    let mut files = vec![("plain", plain.clone())];
    files.push(("gzip", gzip(&plain)?));
    files.push(("zstd", zstd(&plain)?));
    files.push(("zip Deflate", zip_deflate(&plain, dir)?));
    match seven_zip_deflate64(&plain, dir) {
        Ok(path) => files.push(("zip Deflate64", path)),
        Err(e) => println!("zip Deflate64: skipped ({e})"),
    }
    let (_, _, want) = decode_all(&plain)?;
    for (what, path) in files {
        let size = std::fs::metadata(&path)?.len();
        let mut best = Duration::MAX;
        let mut decoded = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            let (_, bytes, hash) = decode_all(&path)?;
            best = best.min(started.elapsed());
            decoded = bytes;
            anyhow::ensure!(
                hash == want,
                "{what}: decoded bytes differ from the plain file"
            );
        }
        println!(
            "{what:>14}: {size:>11} bytes -> {decoded} decoded, {:>7.1} MB/s decoded (best of {RUNS}, {:.2}s)",
            decoded as f64 / best.as_secs_f64() / 1e6,
            best.as_secs_f64()
        );
    }
    Ok(())
}

/// Writes the bars of [`SYMBOLS`] from 2006 to 2011 into one file (about 185 MB).
fn generate(path: &Path) -> anyhow::Result<()> {
    let spec = GenSpec {
        symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
        start: NaiveDate::from_ymd_opt(2006, 1, 1).expect("a date"),
        end: NaiveDate::from_ymd_opt(2011, 12, 31).expect("a date"),
        seed: 1,
    };
    let mut out = BufWriter::new(File::create(path)?);
    for symbol in SYMBOLS {
        bar_gen::write_symbol(&spec, symbol, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn gzip(plain: &Path) -> anyhow::Result<PathBuf> {
    let target = with_suffix(plain, ".gz");
    let mut enc = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(&target)?),
        flate2::Compression::default(),
    );
    io::copy(&mut File::open(plain)?, &mut enc)?;
    enc.finish()?.flush()?;
    Ok(target)
}

fn zstd(plain: &Path) -> anyhow::Result<PathBuf> {
    let target = with_suffix(plain, ".zst");
    let mut enc = zstd::Encoder::new(BufWriter::new(File::create(&target)?), 3)?;
    io::copy(&mut File::open(plain)?, &mut enc)?;
    enc.finish()?.flush()?;
    Ok(target)
}

fn zip_deflate(plain: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let target = dir.join("deflate.zip");
    let mut zip = zip::ZipWriter::new(File::create(&target)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let name = plain
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    zip.start_file(name, options)?;
    io::copy(&mut File::open(plain)?, &mut zip)?;
    zip.finish()?;
    Ok(target)
}

/// A Deflate64 zip made by 7-Zip (the zip crate cannot write Deflate64).
fn seven_zip_deflate64(plain: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let target = dir.join("deflate64.zip");
    let _ = std::fs::remove_file(&target);
    let status = Command::new("7z")
        .args(["a", "-tzip", "-mm=Deflate64", "-bd", "-bso0"])
        .arg(&target)
        .arg(plain)
        .status()?;
    anyhow::ensure!(status.success(), "7z failed: {status}");
    Ok(target)
}
