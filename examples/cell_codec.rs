//! Day-cell body encodings compared on real-shaped bars: bytes per bar and encode/decode ns per
//! bar (release build, one thread's CPU time, median of 5 runs), for the codec's own zstd body at a few
//! levels, the same body stored without compression, plain bit packing of the same integer
//! columns, and pco (pcodec) on the raw columns. Each way's decode is checked bit for bit
//! against the input before it is timed.
//!
//! Data: bar-gen's generator (the bars its files hold: one symbol, ~500 bars a trading day with
//! gaps) for 1 year and 10 years; the 1 year with 6-decimal fractional volumes; and the 1 year
//! with every price divided by 3 (not short decimals: raw doubles).
//!
//! `cargo run --release --example cell_codec [FILTER]` (FILTER: only the data sets or encodings
//! whose names contain it, e.g. `zstd 3`). A measurement, not a test.

use std::hint::black_box;
use std::time::Duration;

use bar_gen::{GenSpec, SymbolBars, ticks_to_price};
use bar_ingest::cell::values::{TimeEncoding, decimal_scale, zigzag};
use bar_ingest::cell::{self, Compression, DayColumns};
use chrono::{NaiveDate, TimeZone};

/// Timed runs per case; the median is reported.
const RUNS: usize = 5;

/// CPU time of this thread: on a shared machine, time spent waiting for a core is not counted
/// (wall time here varied 2-3x with the other jobs' load).
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusive `t`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// One data set: its days, each its own columns.
struct DataSet {
    name: &'static str,
    days: Vec<DayColumns>,
}

impl DataSet {
    fn bars(&self) -> usize {
        self.days.iter().map(DayColumns::len).sum()
    }
}

/// The generated bars of `symbol` from `from` to `to`, one `DayColumns` per trading day.
fn generated(from: (i32, u32, u32), to: (i32, u32, u32)) -> anyhow::Result<Vec<DayColumns>> {
    let day = |(y, m, d): (i32, u32, u32)| {
        NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| anyhow::anyhow!("bad date"))
    };
    let spec = GenSpec {
        symbols: vec!["AAPL".into()],
        start: day(from)?,
        end: day(to)?,
        seed: 1,
    };
    let tz = chrono_tz::America::New_York;
    let mut days: Vec<DayColumns> = Vec::new();
    let mut current = None;
    for bar in SymbolBars::new(&spec, "AAPL") {
        if current != Some(bar.date) {
            current = Some(bar.date);
            days.push(DayColumns::with_capacity(960));
        }
        let local = bar.date.and_time(bar.time());
        let utc = tz
            .from_local_datetime(&local)
            .earliest()
            .ok_or_else(|| anyhow::anyhow!("no instant for {local}"))?;
        if let Some(d) = days.last_mut() {
            d.push(
                utc.timestamp_millis(),
                ticks_to_price(bar.open),
                ticks_to_price(bar.high),
                ticks_to_price(bar.low),
                ticks_to_price(bar.close),
                bar.volume as f64,
            );
        }
    }
    Ok(days)
}

/// A way to store a day, measured.
trait Codec {
    fn name(&self) -> String;
    fn encode(&self, day: &DayColumns) -> anyhow::Result<Vec<u8>>;
    fn decode_into(&self, bytes: &[u8], out: &mut DayColumns) -> anyhow::Result<()>;
}

/// The codec itself, body compressed as given.
struct Cell(Compression);

impl Codec for Cell {
    fn name(&self) -> String {
        match self.0 {
            Compression::Stored => "cell: varints, stored".into(),
            Compression::Zstd { level } => format!("cell: varints + zstd {level}"),
        }
    }
    fn encode(&self, day: &DayColumns) -> anyhow::Result<Vec<u8>> {
        Ok(cell::encode_with(day.view(), self.0)?)
    }
    fn decode_into(&self, bytes: &[u8], out: &mut DayColumns) -> anyhow::Result<()> {
        cell::decode_into(bytes, out)?;
        Ok(())
    }
}

/// pco on each raw column (its own delta and float modes find the decimals): six standalone
/// pco blobs, each prefixed by its length (u32).
struct Pco;

impl Codec for Pco {
    fn name(&self) -> String {
        "pco (pcodec 1.1) per column".into()
    }
    fn encode(&self, day: &DayColumns) -> anyhow::Result<Vec<u8>> {
        let config = pco::ChunkConfig::default();
        let mut out = Vec::new();
        let mut put = |blob: Vec<u8>| {
            out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            out.extend_from_slice(&blob);
        };
        put(pco::standalone::simple_compress(&day.times, &config)?);
        for c in [&day.open, &day.high, &day.low, &day.close, &day.volume] {
            put(pco::standalone::simple_compress(c, &config)?);
        }
        Ok(out)
    }
    fn decode_into(&self, mut bytes: &[u8], out: &mut DayColumns) -> anyhow::Result<()> {
        fn take<'a>(bytes: &mut &'a [u8]) -> anyhow::Result<&'a [u8]> {
            let (len, rest) = bytes
                .split_at_checked(4)
                .ok_or_else(|| anyhow::anyhow!("short"))?;
            let len = u32::from_le_bytes(len.try_into()?) as usize;
            let (blob, rest) = rest
                .split_at_checked(len)
                .ok_or_else(|| anyhow::anyhow!("short"))?;
            *bytes = rest;
            Ok(blob)
        }
        fn into_tail<T: pco::data_types::Number + Default>(
            blob: &[u8],
            column: &mut Vec<T>,
            n: usize,
        ) -> anyhow::Result<()> {
            let at = column.len();
            column.resize(at + n, T::default());
            pco::standalone::simple_decompress_into(blob, &mut column[at..])?;
            Ok(())
        }
        let times = take(&mut bytes)?;
        let (decompressor, _) = pco::standalone::FileDecompressor::new(times)?;
        let n = decompressor.n_hint();
        into_tail(times, &mut out.times, n)?;
        for c in [
            &mut out.open,
            &mut out.high,
            &mut out.low,
            &mut out.close,
            &mut out.volume,
        ] {
            into_tail(take(&mut bytes)?, c, n)?;
        }
        Ok(())
    }
}

/// Plain bit packing of the codec's integer columns (time steps; prices as zigzag deltas of
/// their decimal integers; volumes as zigzag integers; raw bits where a column has no scale):
/// per column a kind byte, a scale byte and a bit width, then the values packed LSB first.
struct BitPack;

const KIND_RAW: u8 = 0;
const KIND_DECIMAL: u8 = 1;
const KIND_DELTA: u8 = 2;

fn pack(out: &mut Vec<u8>, kind: u8, scale: u8, words: &[u64]) {
    let width = words.iter().fold(0u64, |a, &w| a | w);
    let width = (64 - width.leading_zeros()) as usize;
    out.extend_from_slice(&[kind, scale, width as u8]);
    let start = out.len();
    out.resize(start + (words.len() * width).div_ceil(8) + 8, 0);
    for (i, &w) in words.iter().enumerate() {
        let bit = i * width;
        let at = start + bit / 8;
        let shift = bit % 8;
        let chunk = u128::from(w) << shift;
        let mut word = [0u8; 16];
        let end = (at + 16).min(out.len());
        word[..end - at].copy_from_slice(&out[at..end]);
        let merged = u128::from_le_bytes(word) | chunk;
        out[at..end].copy_from_slice(&merged.to_le_bytes()[..end - at]);
    }
}

fn unpack<'a>(
    bytes: &'a [u8],
    n: usize,
    words: &mut Vec<u64>,
) -> anyhow::Result<(u8, u8, &'a [u8])> {
    let [kind, scale, width, rest @ ..] = bytes else {
        anyhow::bail!("short");
    };
    let width = usize::from(*width);
    let len = (n * width).div_ceil(8) + 8;
    anyhow::ensure!(rest.len() >= len && width <= 64, "short");
    words.clear();
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    for i in 0..n {
        let bit = i * width;
        let at = bit / 8;
        let mut w = [0u8; 16];
        let end = (at + 16).min(rest.len());
        w[..end - at].copy_from_slice(&rest[at..end]);
        words.push((u128::from_le_bytes(w) >> (bit % 8)) as u64 & mask);
    }
    Ok((*kind, *scale, &rest[len..]))
}

impl Codec for BitPack {
    fn name(&self) -> String {
        "bit packing (no compressor)".into()
    }
    fn encode(&self, day: &DayColumns) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&(day.len() as u16).to_le_bytes());
        out.extend_from_slice(&day.times.first().copied().unwrap_or(0).to_le_bytes());
        let minutes = TimeEncoding::choose(&day.times) == TimeEncoding::Minutes;
        let steps: Vec<u64> = day
            .times
            .windows(2)
            .map(|w| (w[1] - w[0]) as u64 / if minutes { 60_000 } else { 1 })
            .collect();
        pack(&mut out, u8::from(minutes), 0, &steps);
        let mut ints = Vec::new();
        for (i, c) in [&day.open, &day.high, &day.low, &day.close, &day.volume]
            .into_iter()
            .enumerate()
        {
            match decimal_scale(c, &mut ints) {
                Some(scale) if i == 4 => {
                    let w: Vec<u64> = ints.iter().map(|&n| zigzag(n)).collect();
                    pack(&mut out, KIND_DECIMAL, scale, &w);
                }
                Some(scale) => {
                    let mut prev = 0;
                    let w: Vec<u64> = ints
                        .iter()
                        .map(|&n| {
                            let d = zigzag(n - prev);
                            prev = n;
                            d
                        })
                        .collect();
                    pack(&mut out, KIND_DELTA, scale, &w);
                }
                None => {
                    let w: Vec<u64> = c.iter().map(|v| v.to_bits()).collect();
                    pack(&mut out, KIND_RAW, 0, &w);
                }
            }
        }
        Ok(out)
    }
    fn decode_into(&self, bytes: &[u8], out: &mut DayColumns) -> anyhow::Result<()> {
        use bar_ingest::cell::values::{unscaled, unzigzag};
        anyhow::ensure!(bytes.len() >= 10, "short");
        let n = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
        let mut t = i64::from_le_bytes(bytes[2..10].try_into()?);
        let mut words = Vec::with_capacity(n);
        let (minutes, _, mut rest) = unpack(&bytes[10..], n.saturating_sub(1), &mut words)?;
        let unit = if minutes == 1 { 60_000 } else { 1 };
        if n > 0 {
            out.times.push(t);
        }
        for &s in &words {
            t += s as i64 * unit;
            out.times.push(t);
        }
        for c in [
            &mut out.open,
            &mut out.high,
            &mut out.low,
            &mut out.close,
            &mut out.volume,
        ] {
            let (kind, scale, tail) = unpack(rest, n, &mut words)?;
            rest = tail;
            match kind {
                KIND_RAW => c.extend(words.iter().map(|&w| f64::from_bits(w))),
                KIND_DECIMAL => c.extend(words.iter().map(|&w| unscaled(unzigzag(w), scale))),
                _ => {
                    let mut acc = 0i64;
                    c.extend(words.iter().map(|&w| {
                        acc += unzigzag(w);
                        unscaled(acc, scale)
                    }));
                }
            }
        }
        Ok(())
    }
}

/// Bit-exact equality of two sets of columns.
fn same_bits(a: &DayColumns, b: &DayColumns) -> bool {
    let f = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
    };
    a.times == b.times
        && f(&a.open, &b.open)
        && f(&a.high, &b.high)
        && f(&a.low, &b.low)
        && f(&a.close, &b.close)
        && f(&a.volume, &b.volume)
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn measure(codec: &dyn Codec, data: &DataSet) -> anyhow::Result<()> {
    let bars = data.bars();
    let mut cells = Vec::new();
    let mut encode_runs = Vec::new();
    for _ in 0..RUNS {
        let t = thread_cpu();
        cells = data
            .days
            .iter()
            .map(|d| codec.encode(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        encode_runs.push(thread_cpu() - t);
    }
    let bytes: usize = cells.iter().map(Vec::len).sum();
    // All days into one set of columns, as fetch will; checked before timing.
    let mut all = DayColumns::with_capacity(bars);
    let mut want = DayColumns::with_capacity(bars);
    for d in &data.days {
        want.times.extend_from_slice(&d.times);
        want.open.extend_from_slice(&d.open);
        want.high.extend_from_slice(&d.high);
        want.low.extend_from_slice(&d.low);
        want.close.extend_from_slice(&d.close);
        want.volume.extend_from_slice(&d.volume);
    }
    for c in &cells {
        codec.decode_into(c, &mut all)?;
    }
    anyhow::ensure!(
        same_bits(&all, &want),
        "{} does not round-trip {}",
        codec.name(),
        data.name
    );
    let mut decode_runs = Vec::new();
    for _ in 0..RUNS {
        all.clear();
        let t = thread_cpu();
        for c in &cells {
            codec.decode_into(black_box(c), &mut all)?;
        }
        decode_runs.push(thread_cpu() - t);
        black_box(&all);
    }
    let per_bar = |d: Duration| d.as_nanos() as f64 / bars as f64;
    let decode = median(decode_runs);
    println!(
        "| {} | {} | {:.2} | {:.0} | {:.1} | {:.1} |",
        data.name,
        codec.name(),
        bytes as f64 / bars as f64,
        per_bar(median(encode_runs)),
        per_bar(decode),
        decode.as_secs_f64() * 1e3,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let year = generated((2024, 1, 1), (2024, 12, 31))?;
    let decade = generated((2015, 1, 1), (2024, 12, 31))?;
    let mut fractional = year.clone();
    for (i, d) in fractional.iter_mut().enumerate() {
        for (j, v) in d.volume.iter_mut().enumerate() {
            // Whole shares plus six decimals, as Polygon prints them.
            let micro = ((i * 7919 + j * 104_729) % 1_000_000) as f64;
            *v = (*v * 1e6 + micro) / 1e6;
        }
    }
    let mut thirds = year.clone();
    for d in &mut thirds {
        for c in [&mut d.open, &mut d.high, &mut d.low, &mut d.close] {
            c.iter_mut().for_each(|p| *p /= 3.0);
        }
    }
    let sets = [
        DataSet {
            name: "1 year",
            days: year,
        },
        DataSet {
            name: "10 years",
            days: decade,
        },
        DataSet {
            name: "1 year, fractional volumes",
            days: fractional,
        },
        DataSet {
            name: "1 year, prices / 3",
            days: thirds,
        },
    ];
    let codecs: Vec<Box<dyn Codec>> = vec![
        Box::new(Cell(Compression::Stored)),
        Box::new(Cell(Compression::Zstd { level: 1 })),
        Box::new(Cell(Compression::Zstd { level: 3 })),
        Box::new(Cell(Compression::Zstd { level: 9 })),
        Box::new(Cell(Compression::Zstd { level: 19 })),
        Box::new(BitPack),
        Box::new(Pco),
    ];
    for s in &sets {
        println!(
            "{}: {} days, {} bars (raw 48 bytes a bar)",
            s.name,
            s.days.len(),
            s.bars()
        );
    }
    println!("| data | encoding | bytes/bar | encode ns/bar | decode ns/bar | decode ms |");
    println!("|---|---|---|---|---|---|");
    // An argument picks the data sets and encodings whose names contain it (e.g. `zstd 3`).
    let only = std::env::args().nth(1).unwrap_or_default();
    for s in &sets {
        for c in &codecs {
            if s.name.contains(&only) || c.name().contains(&only) {
                measure(c.as_ref(), s)?;
            }
        }
    }
    Ok(())
}
