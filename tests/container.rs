//! Containers (`source::container`): deliveries packaged as gzip, zstd and zip read as units of
//! their exact decoded bytes, and hostile or broken ones refused with errors naming the unit.
//! Every input is generated here (the one Deflate64 fixture is in `tests/data/`); no database.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use bar_gen::GenSpec;
use bar_ingest::source::container::{ContainerError, Delivery, Limits, Packaging, Unit};
use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// Four days of one symbol's bars, as bar-gen writes them (about 120 KB).
fn bars(symbol: &str) -> Vec<u8> {
    bars_until(symbol, 7)
}

/// One symbol's bars from 2024-03-04 to 2024-03-`last_day`, seed 7.
fn bars_until(symbol: &str, last_day: u32) -> Vec<u8> {
    let spec = GenSpec {
        symbols: vec![symbol.into()],
        start: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
        end: NaiveDate::from_ymd_opt(2024, 3, last_day).unwrap(),
        seed: 7,
    };
    let mut out = Vec::new();
    bar_gen::write_symbol(&spec, symbol, &mut out).unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// A zip of `(name, method, content)` members, written by the zip crate.
fn zip_of(members: &[(&str, CompressionMethod, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    for (name, method, content) in members {
        if name.ends_with('/') {
            w.add_directory(*name, SimpleFileOptions::default())
                .unwrap();
            continue;
        }
        let options = SimpleFileOptions::default().compression_method(*method);
        w.start_file(*name, options).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `bytes` in a file named `name` in `dir`, opened for reading.
fn file_in(dir: &Path, name: &str, bytes: &[u8]) -> File {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    File::open(path).unwrap()
}

fn delivery(file: &File, name: &str) -> Result<Delivery, ContainerError> {
    Delivery::read(file, OsStr::new(name), Limits::default())
}

fn decoded(file: &File, unit: &Unit) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    unit.open(file)?.read_to_end(&mut out)?;
    Ok(out)
}

/// The container error of a failed read, its reason code and message.
fn failure(result: io::Result<Vec<u8>>) -> (&'static str, String) {
    let e = result.expect_err("the read should fail");
    let container = ContainerError::of(&e).expect("a container error");
    (container.reason(), e.to_string())
}

fn names(d: &Delivery) -> Vec<String> {
    d.units()
        .iter()
        .map(|u| u.name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_plain_file_is_one_unit_of_its_own_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let content = bars("AAPL");
    let file = file_in(dir.path(), "AAPL_full_1min_adjsplit.txt", &content);
    let d = delivery(&file, "AAPL_full_1min_adjsplit.txt").unwrap();
    assert_eq!(d.packaging(), Packaging::Plain);
    assert_eq!(names(&d), ["AAPL_full_1min_adjsplit.txt"]);
    let unit = &d.units()[0];
    assert_eq!(unit.declared_size(), Some(content.len() as u64));
    assert_eq!(decoded(&file, unit).unwrap(), content);
}

#[test]
fn a_multi_member_gzip_decodes_every_member_every_time_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (bars("AAPL"), bars("MSFT"));
    let mut packed = gzip(&first);
    packed.extend(gzip(&second));
    let file = file_in(dir.path(), "AAPL_full_1min_adjsplit.txt.gz", &packed);
    let d = delivery(&file, "AAPL_full_1min_adjsplit.txt.gz").unwrap();
    assert_eq!(d.packaging(), Packaging::Gzip);
    let unit = &d.units()[0];
    assert_eq!(unit.inner_name(), "AAPL_full_1min_adjsplit.txt");
    assert_eq!(unit.compressed_size(), packed.len() as u64);
    assert_eq!(unit.declared_size(), None);
    let whole = [first, second].concat();
    assert_eq!(decoded(&file, unit).unwrap(), whole);
    assert_eq!(
        decoded(&file, unit).unwrap(),
        whole,
        "a second pass reads the same"
    );
}

#[test]
fn a_zstd_file_of_several_frames_decodes_every_frame_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (bars("AAPL"), bars("MSFT"));
    let packed = [zstd(&first), zstd(&second)].concat();
    // Named without `.zst`: the magic bytes decide.
    let file = file_in(dir.path(), "2024-03-04.csv", &packed);
    let d = delivery(&file, "2024-03-04.csv").unwrap();
    assert_eq!(d.packaging(), Packaging::Zstd);
    assert_eq!(
        decoded(&file, &d.units()[0]).unwrap(),
        [first, second].concat()
    );
}

#[test]
fn zip_members_are_units_and_folders_macos_files_and_dot_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (aapl, msft, spy) = (bars("AAPL"), bars("MSFT"), bars("SPY"));
    let spy_gz = gzip(&spy);
    let packed = zip_of(&[
        (
            "AAPL_full_1min_adjsplit.txt",
            CompressionMethod::Stored,
            &aapl,
        ),
        ("sub/", CompressionMethod::Stored, b""),
        (
            "sub/MSFT_full_1min_adjsplit.txt",
            CompressionMethod::Deflated,
            &msft,
        ),
        (
            "__MACOSX/sub/._MSFT_full_1min_adjsplit.txt",
            CompressionMethod::Deflated,
            b"junk",
        ),
        (".DS_Store", CompressionMethod::Stored, b"junk"),
        (
            "SPY_full_1min_adjsplit.txt.gz",
            CompressionMethod::Stored,
            &spy_gz,
        ),
    ]);
    let file = file_in(dir.path(), "bundle.zip", &packed);
    let d = delivery(&file, "bundle.zip").unwrap();
    assert_eq!(d.packaging(), Packaging::Zip);
    assert_eq!(
        names(&d),
        [
            "bundle.zip!AAPL_full_1min_adjsplit.txt",
            "bundle.zip!sub/MSFT_full_1min_adjsplit.txt",
            "bundle.zip!SPY_full_1min_adjsplit.txt.gz",
        ]
    );
    let units = d.units();
    assert_eq!(units.iter().map(Unit::index).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(units[1].inner_name(), "MSFT_full_1min_adjsplit.txt");
    assert_eq!(
        units[1].flat_name(),
        "bundle.zip!sub%2FMSFT_full_1min_adjsplit.txt"
    );
    assert_eq!(units[2].inner_name(), "SPY_full_1min_adjsplit.txt");
    assert_eq!(units[2].packaging(), Packaging::Gzip);
    assert_eq!(units[0].compressed_size(), aapl.len() as u64, "stored");
    assert!(
        units[1].compressed_size() < msft.len() as u64 / 2,
        "deflated"
    );
    assert_eq!(units[1].declared_size(), Some(msft.len() as u64));
    assert_eq!(units[2].declared_size(), Some(spy_gz.len() as u64));
    assert_eq!(decoded(&file, &units[0]).unwrap(), aapl);
    assert_eq!(decoded(&file, &units[1]).unwrap(), msft);
    assert_eq!(
        decoded(&file, &units[2]).unwrap(),
        spy,
        "the nested gzip is decoded"
    );
}

#[test]
fn units_read_at_the_same_time_do_not_move_each_other_or_the_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let (aapl, msft) = (bars("AAPL"), bars("MSFT"));
    let packed = zip_of(&[
        ("AAPL.txt", CompressionMethod::Deflated, &aapl),
        ("MSFT.txt", CompressionMethod::Stored, &msft),
    ]);
    let mut file = file_in(dir.path(), "b.zip", &packed);
    let d = delivery(&file, "b.zip").unwrap();
    file.seek(SeekFrom::Start(5)).unwrap();
    let mut readers = [
        d.units()[0].open(&file).unwrap(),
        d.units()[1].open(&file).unwrap(),
    ];
    let mut out = [Vec::new(), Vec::new()];
    let mut buf = [0u8; 1000];
    let mut open = [true, true];
    while open.iter().any(|o| *o) {
        for i in 0..2 {
            if open[i] {
                let n = readers[i].read(&mut buf).unwrap();
                open[i] = n > 0;
                out[i].extend_from_slice(&buf[..n]);
            }
        }
    }
    assert_eq!(out[0], aapl);
    assert_eq!(out[1], msft);
    assert_eq!(
        file.stream_position().unwrap(),
        5,
        "the caller's offset is kept"
    );
}

/// Made by 7-Zip from the bars of `bars_until("DSIX", 5)` (see tests/data/README.md).
#[test]
fn a_deflate64_member_made_by_7zip_decodes_to_the_exact_original() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/deflate64.zip");
    let file = File::open(&fixture).unwrap();
    let d = delivery(&file, "deflate64.zip").unwrap();
    assert_eq!(names(&d), ["deflate64.zip!DSIX_full_1min_adjsplit.txt"]);
    let content = decoded(&file, &d.units()[0]).unwrap();
    assert_eq!(content.len(), 61_433);
    assert!(
        content == bars_until("DSIX", 5),
        "decoded bytes differ from the original"
    );
}

#[test]
fn an_empty_zip_has_no_units() {
    let dir = tempfile::tempdir().unwrap();
    let file = file_in(dir.path(), "empty.zip", &zip_of(&[]));
    let d = delivery(&file, "empty.zip").unwrap();
    assert_eq!(d.packaging(), Packaging::Zip);
    assert!(d.units().is_empty());
}

/// 1 MiB of zeros as one gzip member (about 1 KB), repeated: a gzip of `mib` MiB of zeros
/// written without compressing it all.
fn gzip_of_zeros(mib: usize) -> Vec<u8> {
    let member = gzip(&vec![0; 1 << 20]);
    member.repeat(mib)
}

#[test]
fn a_gzip_bomb_stops_at_the_ratio_limit_with_the_unit_and_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = gzip_of_zeros(1024);
    assert!(
        bomb.len() < 2 << 20,
        "1 GiB of zeros in {} bytes",
        bomb.len()
    );
    let file = file_in(dir.path(), "ZERO.txt.gz", &bomb);
    let d = delivery(&file, "ZERO.txt.gz").unwrap();
    let (limit, _) = Limits::default().decoded_limit(bomb.len() as u64);
    let mut reader = d.units()[0].open(&file).unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let e = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("the bomb decoded whole: {total} bytes"),
            Ok(n) => total += n as u64,
            Err(e) => break e,
        }
    };
    assert!(
        total <= limit && limit < 1 << 30,
        "stopped after {total} of {limit}"
    );
    let c = ContainerError::of(&e).unwrap();
    assert_eq!(c.reason(), "container_too_large");
    let msg = e.to_string();
    assert!(msg.starts_with("ZERO.txt.gz: decoded more than"), "{msg}");
    assert!(msg.contains(&format!("{limit} bytes")), "{msg}");
    assert!(msg.contains("Limits::max_ratio"), "{msg}");
}

#[test]
fn a_zstd_bomb_stops_at_the_absolute_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 256 MiB of zeros compress to a few KB; a small absolute limit keeps the test fast.
    let mut enc = zstd::Encoder::new(Vec::new(), 1).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let file = file_in(dir.path(), "z.csv.zst", &bomb);
    let limits = Limits {
        max_unit_bytes: 32 << 20,
        ..Limits::default()
    };
    let d = Delivery::read(&file, OsStr::new("z.csv.zst"), limits).unwrap();
    let (reason, msg) = failure(decoded(&file, &d.units()[0]));
    assert_eq!(reason, "container_too_large");
    assert!(msg.contains("over the limit of 33554432 bytes"), "{msg}");
    assert!(msg.contains("Limits::max_unit_bytes"), "{msg}");
}

#[test]
fn a_gzip_bomb_inside_a_zip_is_capped_by_the_members_compressed_size() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = gzip_of_zeros(512);
    let packed = zip_of(&[("ZERO.txt.gz", CompressionMethod::Stored, &bomb)]);
    let file = file_in(dir.path(), "b.zip", &packed);
    let d = delivery(&file, "b.zip").unwrap();
    let (reason, msg) = failure(decoded(&file, &d.units()[0]));
    assert_eq!(reason, "container_too_large");
    assert!(
        msg.starts_with("b.zip!ZERO.txt.gz: decoded more than"),
        "{msg}"
    );
}

/// A zip of one member, written byte by byte: `declared` and `crc` are what its entries say,
/// whatever `data` is.
fn hand_zip(name: &str, method: u16, data: &[u8], declared: u64, crc: u32) -> Vec<u8> {
    let (size32, csize32) = (declared as u32, data.len() as u32);
    let n = name.len() as u16;
    let mut out = Vec::new();
    out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00");
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // time, date
    for v in [crc, csize32, size32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    let directory_at = out.len() as u32;
    out.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00");
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    for v in [crc, csize32, size32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&[0; 12]); // extra, comment, disk, internal and external attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name.as_bytes());
    let directory_len = out.len() as u32 - directory_at;
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    out.extend_from_slice(&directory_len.to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A raw Deflate stream of `mib` MiB of zeros: one fully flushed segment (byte-aligned,
/// referring to nothing before it) repeated, then an empty final block.
fn deflate_of_zeros(mib: usize) -> Vec<u8> {
    let mut c = flate2::Compress::new(Compression::fast(), false);
    let mut segment = Vec::with_capacity(1 << 16);
    c.compress_vec(&vec![0; 1 << 20], &mut segment, flate2::FlushCompress::Full)
        .unwrap();
    let mut out = segment.repeat(mib);
    out.extend_from_slice(&[0x03, 0x00]); // final block, fixed Huffman, end of block
    out
}

#[test]
fn a_zip_member_declaring_a_bombs_size_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let data = deflate_of_zeros(1024);
    let packed = hand_zip("ZERO.txt", 8, &data, (1 << 32) - 1, 0);
    let file = file_in(dir.path(), "bomb.zip", &packed);
    let d = delivery(&file, "bomb.zip").unwrap();
    let e = d.units()[0].open(&file).err().expect("refused at open");
    let msg = e.to_string();
    assert_eq!(
        ContainerError::of(&e).unwrap().reason(),
        "container_too_large"
    );
    assert!(
        msg.starts_with("bomb.zip!ZERO.txt: declares 4294967295 bytes from"),
        "{msg}"
    );
}

#[test]
fn a_zip_member_longer_than_declared_stops_at_its_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = deflate_of_zeros(64);
    let packed = hand_zip("ZERO.txt", 8, &data, 1000, 0);
    let file = file_in(dir.path(), "liar.zip", &packed);
    let d = delivery(&file, "liar.zip").unwrap();
    let (reason, msg) = failure(decoded(&file, &d.units()[0]));
    assert_eq!(reason, "container_corrupt");
    assert!(
        msg.contains("more bytes than the 1000 its directory entry declares"),
        "{msg}"
    );
}

#[test]
fn a_zip_member_with_a_wrong_crc_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let content = b"2024-03-04 09:30:00,1,1,1,1,100\n";
    let crc = crc32fast::hash(content);
    let good = hand_zip("A.txt", 0, content, content.len() as u64, crc);
    let bad = hand_zip("A.txt", 0, content, content.len() as u64, crc ^ 1);
    let good_file = file_in(dir.path(), "good.zip", &good);
    let d = delivery(&good_file, "good.zip").unwrap();
    assert_eq!(decoded(&good_file, &d.units()[0]).unwrap(), content);
    let bad_file = file_in(dir.path(), "bad.zip", &bad);
    let d = delivery(&bad_file, "bad.zip").unwrap();
    let (reason, msg) = failure(decoded(&bad_file, &d.units()[0]));
    assert_eq!(reason, "container_corrupt");
    assert!(
        msg.starts_with("bad.zip!A.txt: corrupt or truncated stored zip member"),
        "{msg}"
    );
    assert!(msg.contains("CRC-32"), "{msg}");
}

#[test]
fn truncated_gzip_and_zstd_files_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let content = bars("AAPL");
    for (name, packed) in [("A.txt.gz", gzip(&content)), ("A.txt.zst", zstd(&content))] {
        let cut = &packed[..packed.len() * 2 / 3];
        let file = file_in(dir.path(), name, cut);
        let d = delivery(&file, name).unwrap();
        let (reason, msg) = failure(decoded(&file, &d.units()[0]));
        assert_eq!(reason, "container_corrupt", "{name}: {msg}");
        assert!(
            msg.starts_with(&format!("{name}: corrupt or truncated")),
            "{msg}"
        );
    }
}

#[test]
fn a_gzip_cut_at_its_trailer_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let packed = gzip(&bars("AAPL"));
    let file = file_in(dir.path(), "A.txt.gz", &packed[..packed.len() - 4]);
    let d = delivery(&file, "A.txt.gz").unwrap();
    let (reason, _) = failure(decoded(&file, &d.units()[0]));
    assert_eq!(reason, "container_corrupt");
}

#[test]
fn a_truncated_or_damaged_zip_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let content = bars("AAPL");
    let packed = zip_of(&[("AAPL.txt", CompressionMethod::Deflated, &content)]);
    // Cut: the central directory is gone, the delivery cannot be listed.
    let file = file_in(dir.path(), "cut.zip", &packed[..packed.len() / 2]);
    let e = delivery(&file, "cut.zip").expect_err("no directory");
    assert_eq!(e.reason(), "container_corrupt");
    assert!(
        e.to_string()
            .starts_with("cut.zip: corrupt or truncated zip"),
        "{e}"
    );
    // Damaged: the member's compressed bytes overwritten in the middle.
    let mut damaged = packed.clone();
    let middle = damaged.len() / 3;
    damaged[middle..middle + 64].fill(0xA5);
    let file = file_in(dir.path(), "damaged.zip", &damaged);
    let d = delivery(&file, "damaged.zip").unwrap();
    let (reason, msg) = failure(decoded(&file, &d.units()[0]));
    assert_eq!(reason, "container_corrupt", "{msg}");
    assert!(
        msg.starts_with("damaged.zip!AAPL.txt: corrupt or truncated Deflate zip member"),
        "{msg}"
    );
}

/// Sets `bits` in the general-purpose flags of every local and central header of `zip`, or
/// its method to `method`.
fn patch_headers(zip: &mut [u8], bits: u16, method: Option<u16>) {
    for i in 0..zip.len().saturating_sub(12) {
        let (flags_at, method_at) = match &zip[i..i + 4] {
            b"PK\x03\x04" => (i + 6, i + 8),
            b"PK\x01\x02" => (i + 8, i + 10),
            _ => continue,
        };
        let flags = u16::from_le_bytes([zip[flags_at], zip[flags_at + 1]]) | bits;
        zip[flags_at..flags_at + 2].copy_from_slice(&flags.to_le_bytes());
        if let Some(m) = method {
            zip[method_at..method_at + 2].copy_from_slice(&m.to_le_bytes());
        }
    }
}

#[test]
fn encrypted_unsupported_unsafe_and_nested_zip_members_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let content = b"2024-03-04 09:30:00,1,1,1,1,100\n";
    let mut encrypted = zip_of(&[("A.txt", CompressionMethod::Stored, content)]);
    patch_headers(&mut encrypted, 1, None);
    let mut bzip2 = zip_of(&[("B.txt", CompressionMethod::Stored, content)]);
    patch_headers(&mut bzip2, 0, Some(12));
    let inner = zip_of(&[("C.txt", CompressionMethod::Stored, content)]);
    let cases = [
        (
            "enc.zip",
            encrypted,
            "container_encrypted",
            "enc.zip!A.txt: the zip member is encrypted",
        ),
        (
            "bz.zip",
            bzip2,
            "container_unsupported",
            "bz.zip!B.txt: the compression method Bzip2 (12) of this zip member",
        ),
        (
            "up.zip",
            zip_of(&[("../../etc/D.txt", CompressionMethod::Stored, content)]),
            "container_unsafe_path",
            "up.zip!../../etc/D.txt: the zip member's path is absolute or contains `..`",
        ),
        (
            "abs.zip",
            zip_of(&[("/etc/E.txt", CompressionMethod::Stored, content)]),
            "container_unsafe_path",
            "abs.zip!/etc/E.txt: the zip member's path",
        ),
        (
            "nest.zip",
            zip_of(&[("inner.zip", CompressionMethod::Stored, &inner)]),
            "container_unsupported",
            "nest.zip!inner.zip: a zip inside a zip is not supported",
        ),
    ];
    for (name, packed, want_reason, want_msg) in cases {
        let file = file_in(dir.path(), name, &packed);
        let d = delivery(&file, name).unwrap();
        assert_eq!(d.units().len(), 1, "{name}: the member is a unit");
        let (reason, msg) = failure(decoded(&file, &d.units()[0]));
        assert_eq!(reason, want_reason, "{name}: {msg}");
        assert!(msg.starts_with(want_msg), "{name}: {msg}");
    }
}

#[test]
fn a_zip_with_more_entries_than_the_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(String, CompressionMethod, &[u8])> = (0..5)
        .map(|i| (format!("S{i}.txt"), CompressionMethod::Stored, &b"x"[..]))
        .collect();
    let refs: Vec<_> = members
        .iter()
        .map(|(n, m, c)| (n.as_str(), *m, *c))
        .collect();
    let file = file_in(dir.path(), "many.zip", &zip_of(&refs));
    let limits = Limits {
        max_members: 4,
        ..Limits::default()
    };
    let e = Delivery::read(&file, OsStr::new("many.zip"), limits).expect_err("over the limit");
    assert_eq!(e.reason(), "container_too_large");
    assert_eq!(
        e.to_string(),
        "many.zip: the zip's central directory has 5 entries, over the limit of 4"
    );
}

#[test]
fn a_zip_whose_directory_is_over_the_byte_limit_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let packed = zip_of(&[
        ("AAPL.txt", CompressionMethod::Stored, b"x"),
        ("MSFT.txt", CompressionMethod::Stored, b"y"),
    ]);
    let file = file_in(dir.path(), "two.zip", &packed);
    let limits = Limits {
        max_directory_bytes: 100,
        ..Limits::default()
    };
    let e = Delivery::read(&file, OsStr::new("two.zip"), limits).expect_err("over the limit");
    assert_eq!(e.reason(), "container_too_large");
    // Two central headers of 46 bytes and an 8-byte name each.
    assert_eq!(
        e.to_string(),
        "two.zip: the zip's central directory has 108 bytes, over the limit of 100"
    );
}
