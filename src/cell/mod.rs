//! The day-cell codec: one symbol's exchange-local day of one-minute bars as one byte string
//! (columnar, compressed, versioned) and back, bit-exactly. Pure: bytes in, columns out.
//!
//! The format is specified in `docs/day-cell-format.md` (byte layout, version rules, golden
//! vectors); `python/tests/cell_reader.py` is an independent reader written from that spec.
//!
//! - [`encode`] checks the columns (equal lengths, at most [`MAX_BARS`], times strictly
//!   increasing) and picks each column's encoding: times as differences in whole minutes or
//!   milliseconds; prices and volumes as decimal-scaled integers where that round-trips every
//!   value bit for bit, else raw doubles; the body stored as is (or zstd, by [`encode_with`]).
//! - [`decode_into`] appends a cell's bars to caller-owned columns (so many days decode into one
//!   contiguous buffer per column); [`read_header`] reads the bar count and the first and last
//!   instants without touching the body. Untrusted bytes give a [`CellError`], never a panic, and
//!   nothing is allocated from a length that was not checked against [`MAX_BARS`].

pub mod values;

use std::cell::RefCell;
use std::ops::Range;

use values::{BodyReader, MINUTE_MILLIS, decimal_scale, put_varint, unscaled, unzigzag, zigzag};
pub use values::{MAX_DECIMAL_SCALE, MAX_SCALED_MAGNITUDE, TimeEncoding, ValueEncoding};

/// The format version this build writes (and the only one it reads).
pub const FORMAT_VERSION: u8 = 1;

/// Most bars a cell holds: the one-minute bars of the longest exchange-local day, 25 hours (the
/// day clocks fall back: a 24-hour market's bars of that day are 1,500). Longer input is refused
/// on encode and on decode.
pub const MAX_BARS: usize = 1500;

/// Bytes of the fixed header, before the body.
pub const HEADER_BYTES: usize = 36;

/// Bytes [`read_header`] needs: version, compression, bar count, first and last instants.
pub const SUMMARY_BYTES: usize = 20;

/// Largest body a bar can need: six columns of at most 10 bytes (a varint) each. A declared
/// body length over `bars * MAX_BODY_BYTES_PER_BAR` is refused before anything is allocated.
pub const MAX_BODY_BYTES_PER_BAR: usize = 60;

/// The value columns in body order, with the names errors use.
const VALUE_COLUMNS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// How the body is compressed (header byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Code 0: the body as is.
    Stored,
    /// Code 1: one zstd frame; `level` is the encoder's (readers ignore it).
    Zstd { level: i32 },
}

/// What [`encode`] uses: the body stored as is, chosen by measurement (`examples/cell_codec.rs`,
/// the table in `docs/day-cell-format.md`): zstd makes a cell about 28 % smaller but its decode
/// about 40 % slower, and read speed comes first. [`encode_with`] can still write zstd bodies,
/// and every reader reads both.
pub const DEFAULT_COMPRESSION: Compression = Compression::Stored;

/// One day's bars as columns: UTC instants in milliseconds (strictly increasing) and the values.
/// [`decode_into`] appends to these, so one value can hold many days back to back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayColumns {
    pub times: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

impl DayColumns {
    /// Empty columns with room for `bars` bars each.
    pub fn with_capacity(bars: usize) -> Self {
        Self {
            times: Vec::with_capacity(bars),
            open: Vec::with_capacity(bars),
            high: Vec::with_capacity(bars),
            low: Vec::with_capacity(bars),
            close: Vec::with_capacity(bars),
            volume: Vec::with_capacity(bars),
        }
    }

    /// Appends one bar.
    pub fn push(&mut self, time: i64, open: f64, high: f64, low: f64, close: f64, volume: f64) {
        self.times.push(time);
        self.open.push(open);
        self.high.push(high);
        self.low.push(low);
        self.close.push(close);
        self.volume.push(volume);
    }

    /// Bars held (the length of `times`).
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Empties every column, keeping the allocations.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Cuts every column to `len` bars.
    pub fn truncate(&mut self, len: usize) {
        self.times.truncate(len);
        self.open.truncate(len);
        self.high.truncate(len);
        self.low.truncate(len);
        self.close.truncate(len);
        self.volume.truncate(len);
    }

    /// All bars as a borrowed view, for [`encode`].
    pub fn view(&self) -> DayView<'_> {
        DayView {
            times: &self.times,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            volume: &self.volume,
        }
    }

    /// The bars at `range` (e.g. one day of many held back to back). `None` when the range is
    /// out of bounds of any column.
    pub fn view_range(&self, range: Range<usize>) -> Option<DayView<'_>> {
        Some(DayView {
            times: self.times.get(range.clone())?,
            open: self.open.get(range.clone())?,
            high: self.high.get(range.clone())?,
            low: self.low.get(range.clone())?,
            close: self.close.get(range.clone())?,
            volume: self.volume.get(range)?,
        })
    }
}

/// Borrowed columns of one day, the input of [`encode`].
#[derive(Debug, Clone, Copy)]
pub struct DayView<'a> {
    pub times: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
}

impl DayView<'_> {
    /// The value columns in body order.
    fn values(&self) -> [&[f64]; 5] {
        [self.open, self.high, self.low, self.close, self.volume]
    }
}

/// What [`read_header`] reads without decoding the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellHeader {
    /// Format version (always [`FORMAT_VERSION`] once read).
    pub version: u8,
    /// Bars in the cell, at most [`MAX_BARS`].
    pub bars: usize,
    /// Instant of the first bar, UTC milliseconds (0 in an empty cell).
    pub first_millis: i64,
    /// Instant of the last bar (equal to the first in a one-bar cell, 0 in an empty one).
    pub last_millis: i64,
}

/// Why a cell could not be encoded or decoded. Offsets are in the cell (header fields) or in
/// the decompressed body (body fields), as each variant says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CellError {
    #[error("a day cell holds at most {MAX_BARS} one-minute bars, this one {bars}")]
    TooManyBars { bars: usize },
    #[error("column {column} has {len} values but there are {times} times")]
    ColumnLengths {
        column: &'static str,
        len: usize,
        times: usize,
    },
    #[error("times must be strictly increasing: bar {index} is at {time} ms, bar {} at {previous} ms", index - 1)]
    TimesNotIncreasing {
        index: usize,
        previous: i64,
        time: i64,
    },
    #[error("day cell truncated: {len} bytes, the header alone needs {needed}")]
    Truncated { needed: usize, len: usize },
    #[error(
        "day cell format version {found} is unknown (this build reads version {FORMAT_VERSION})"
    )]
    UnknownVersion { found: u8 },
    #[error("day cell compression code {code} is unknown (0 stored, 1 zstd)")]
    UnknownCompression { code: u8 },
    #[error(
        "day cell header: {column} column has encoding code {code} with scale {scale}, which is not defined"
    )]
    BadEncoding {
        column: &'static str,
        code: u8,
        scale: u8,
    },
    #[error("day cell header: {problem}")]
    BadHeader { problem: &'static str },
    #[error("day cell header: body of {declared} bytes for {bars} bars (at most {bound})")]
    BodyLength {
        declared: usize,
        bars: usize,
        bound: usize,
    },
    #[error(
        "day cell body: zstd frame does not decompress to the declared {declared} bytes: {detail}"
    )]
    Decompress { declared: usize, detail: String },
    #[error("day cell body: stored body is {found} bytes, the header says {declared}")]
    StoredLength { found: usize, declared: usize },
    #[error("day cell body: {column} column runs past the end of the body at byte {offset}")]
    BodyTruncated { column: &'static str, offset: usize },
    #[error("day cell body: {column} column has a varint longer than 64 bits at byte {offset}")]
    BadVarint { column: &'static str, offset: usize },
    #[error("day cell body: time difference before bar {index} is zero or overflows")]
    BadTimeStep { index: usize },
    #[error(
        "day cell body: times end at {decoded} ms but the header says the last is at {header} ms"
    )]
    LastInstant { decoded: i64, header: i64 },
    #[error("day cell body: {column} value {index} is a scaled integer beyond 2^53")]
    ScaledOutOfRange { column: &'static str, index: usize },
    #[error("day cell body: {extra} bytes left over after the last column")]
    TrailingBytes { extra: usize },
    #[error("compressing a day cell: {detail}")]
    Compress { detail: String },
}

/// Encodes one day with [`DEFAULT_COMPRESSION`].
pub fn encode(day: DayView<'_>) -> Result<Vec<u8>, CellError> {
    encode_with(day, DEFAULT_COMPRESSION)
}

/// Encodes one day, compressing the body as told (measurements compare the choices).
pub fn encode_with(day: DayView<'_>, compression: Compression) -> Result<Vec<u8>, CellError> {
    let bars = check_columns(&day)?;
    let mut header = [0u8; HEADER_BYTES];
    header[0] = FORMAT_VERSION;
    // Fits: bars <= MAX_BARS.
    header[2..4].copy_from_slice(&(bars as u16).to_le_bytes());
    let (Some(&first), Some(&last)) = (day.times.first(), day.times.last()) else {
        // An empty day: zero instants, zero descriptors, no body.
        return Ok(header.to_vec());
    };
    header[4..12].copy_from_slice(&first.to_le_bytes());
    header[12..20].copy_from_slice(&last.to_le_bytes());

    let mut body = Vec::with_capacity(bars * 12);
    let time_encoding = TimeEncoding::choose(day.times);
    header[20..22].copy_from_slice(&time_encoding.to_bytes());
    for w in day.times.windows(2) {
        // Strictly increasing, so the difference is positive and fits a u64.
        let step = w[1].wrapping_sub(w[0]) as u64;
        put_varint(
            &mut body,
            match time_encoding {
                TimeEncoding::Minutes => step / MINUTE_MILLIS,
                TimeEncoding::Millis => step,
            },
        );
    }
    let mut ints = Vec::with_capacity(bars);
    for (i, column) in day.values().into_iter().enumerate() {
        let encoding = encode_values(column, i == 4, &mut ints, &mut body);
        let at = 22 + 2 * i;
        header[at..at + 2].copy_from_slice(&encoding.to_bytes());
    }
    header[32..36].copy_from_slice(&(body.len() as u32).to_le_bytes());

    let mut cell = header.to_vec();
    if let Compression::Zstd { level } = compression {
        let frame = COMPRESSOR.with(|c| -> Result<Vec<u8>, CellError> {
            let mut c = c.borrow_mut();
            let compressor = match &mut *c {
                Some((l, z)) if *l == level => z,
                slot => {
                    let z = zstd::bulk::Compressor::new(level).map_err(compress_error)?;
                    &mut slot.insert((level, z)).1
                }
            };
            compressor.compress(&body).map_err(compress_error)
        })?;
        if frame.len() < body.len() {
            cell[1] = 1;
            cell.extend_from_slice(&frame);
            return Ok(cell);
        }
    }
    cell.extend_from_slice(&body);
    Ok(cell)
}

fn compress_error(e: std::io::Error) -> CellError {
    CellError::Compress {
        detail: e.to_string(),
    }
}

/// Equal lengths, at most [`MAX_BARS`], times strictly increasing; the bar count.
fn check_columns(day: &DayView<'_>) -> Result<usize, CellError> {
    let bars = day.times.len();
    if bars > MAX_BARS {
        return Err(CellError::TooManyBars { bars });
    }
    for (column, values) in VALUE_COLUMNS.into_iter().zip(day.values()) {
        if values.len() != bars {
            return Err(CellError::ColumnLengths {
                column,
                len: values.len(),
                times: bars,
            });
        }
    }
    if let Some(i) = day.times.windows(2).position(|w| w[1] <= w[0]) {
        return Err(CellError::TimesNotIncreasing {
            index: i + 1,
            previous: day.times[i],
            time: day.times[i + 1],
        });
    }
    Ok(bars)
}

/// Appends one value column to the body; prices (`volume == false`) as deltas.
fn encode_values(
    values: &[f64],
    volume: bool,
    ints: &mut Vec<i64>,
    body: &mut Vec<u8>,
) -> ValueEncoding {
    match decimal_scale(values, ints) {
        Some(scale) if volume => {
            for &n in ints.iter() {
                put_varint(body, zigzag(n));
            }
            ValueEncoding::Decimal { scale }
        }
        Some(scale) => {
            let mut previous = 0i64;
            for &n in ints.iter() {
                // |n| <= 2^53, so the difference cannot overflow.
                put_varint(body, zigzag(n - previous));
                previous = n;
            }
            ValueEncoding::DecimalDelta { scale }
        }
        None => {
            for v in values {
                body.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            ValueEncoding::Raw
        }
    }
}

thread_local! {
    /// One zstd compression context per thread and level (creating one costs more than a day).
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// One zstd decompression context and body buffer per thread, reused for every cell.
    static DECOMPRESSOR: RefCell<(Option<zstd::bulk::Decompressor<'static>>, Vec<u8>)> =
        const { RefCell::new((None, Vec::new())) };
}

/// Reads the header's summary (first [`SUMMARY_BYTES`] bytes) without decoding the columns.
pub fn read_header(cell: &[u8]) -> Result<CellHeader, CellError> {
    let Some(h) = cell.get(..SUMMARY_BYTES) else {
        return Err(CellError::Truncated {
            needed: SUMMARY_BYTES,
            len: cell.len(),
        });
    };
    if h[0] != FORMAT_VERSION {
        return Err(CellError::UnknownVersion { found: h[0] });
    }
    let bars = usize::from(u16::from_le_bytes([h[2], h[3]]));
    if bars > MAX_BARS {
        return Err(CellError::TooManyBars { bars });
    }
    let first_millis = i64::from_le_bytes(le8(&h[4..12]));
    let last_millis = i64::from_le_bytes(le8(&h[12..20]));
    let consistent = match bars {
        0 => first_millis == 0 && last_millis == 0,
        1 => first_millis == last_millis,
        _ => first_millis < last_millis,
    };
    if !consistent {
        return Err(CellError::BadHeader {
            problem: "first and last instants do not fit the bar count (0 bars: both 0; 1 bar: equal; more: first < last)",
        });
    }
    Ok(CellHeader {
        version: h[0],
        bars,
        first_millis,
        last_millis,
    })
}

/// Eight bytes of a slice known to be eight long.
fn le8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(b);
    out
}

/// Decodes a cell and appends its bars to `out`; returns how many were appended. On error `out`
/// is left as it was.
pub fn decode_into(cell: &[u8], out: &mut DayColumns) -> Result<usize, CellError> {
    let before = out.len();
    let result = decode_appending(cell, out);
    if result.is_err() {
        out.truncate(before);
    }
    result
}

fn decode_appending(cell: &[u8], out: &mut DayColumns) -> Result<usize, CellError> {
    let header = read_header(cell)?;
    let Some(h) = cell.get(..HEADER_BYTES) else {
        return Err(CellError::Truncated {
            needed: HEADER_BYTES,
            len: cell.len(),
        });
    };
    let bars = header.bars;
    let time_encoding = TimeEncoding::from_bytes(h[20], h[21])?;
    let mut encodings = [ValueEncoding::Raw; 5];
    for (i, (slot, column)) in encodings.iter_mut().zip(VALUE_COLUMNS).enumerate() {
        *slot = ValueEncoding::from_bytes(column, h[22 + 2 * i], h[23 + 2 * i])?;
    }
    let declared = u32::from_le_bytes([h[32], h[33], h[34], h[35]]) as usize;
    let bound = bars * MAX_BODY_BYTES_PER_BAR;
    if declared > bound {
        return Err(CellError::BodyLength {
            declared,
            bars,
            bound,
        });
    }
    let payload = &cell[HEADER_BYTES..];
    if bars == 0 {
        return if h[1] != 0 || h[20..].iter().any(|&b| b != 0) || !payload.is_empty() {
            Err(CellError::BadHeader {
                problem: "an empty cell has compression 0, zero descriptors, no body",
            })
        } else {
            Ok(0)
        };
    }
    match h[1] {
        0 => {
            if payload.len() != declared {
                return Err(CellError::StoredLength {
                    found: payload.len(),
                    declared,
                });
            }
            decode_body(payload, &header, time_encoding, &encodings, out)
        }
        1 => DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            let (context, body) = &mut *d;
            let decompressor = match context {
                Some(z) => z,
                slot => &mut *slot.insert(zstd::bulk::Decompressor::new().map_err(|e| {
                    CellError::Decompress {
                        declared,
                        detail: e.to_string(),
                    }
                })?),
            };
            body.clear();
            // Bounded above by MAX_BARS * MAX_BODY_BYTES_PER_BAR.
            body.reserve(declared);
            let got = decompressor
                .decompress_to_buffer(payload, body)
                .map_err(|e| CellError::Decompress {
                    declared,
                    detail: e.to_string(),
                })?;
            if got != declared {
                return Err(CellError::Decompress {
                    declared,
                    detail: format!("it holds {got} bytes"),
                });
            }
            decode_body(body, &header, time_encoding, &encodings, out)
        }),
        code => Err(CellError::UnknownCompression { code }),
    }
}

/// The columns of a (decompressed) body, appended to `out`.
fn decode_body(
    body: &[u8],
    header: &CellHeader,
    time_encoding: TimeEncoding,
    encodings: &[ValueEncoding; 5],
    out: &mut DayColumns,
) -> Result<usize, CellError> {
    let bars = header.bars;
    let mut r = BodyReader::new(body);
    decode_time_column(&mut r, header, time_encoding, &mut out.times)?;
    let columns = [
        &mut out.open,
        &mut out.high,
        &mut out.low,
        &mut out.close,
        &mut out.volume,
    ];
    for ((column, encoding), name) in columns.into_iter().zip(encodings).zip(VALUE_COLUMNS) {
        decode_values(&mut r, bars, *encoding, name, column)?;
    }
    match r.remaining() {
        0 => Ok(bars),
        extra => Err(CellError::TrailingBytes { extra }),
    }
}

/// The time column (the header's first instant, then the body's steps), appended to `out`.
fn decode_time_column(
    r: &mut BodyReader<'_>,
    header: &CellHeader,
    time_encoding: TimeEncoding,
    out: &mut Vec<i64>,
) -> Result<(), CellError> {
    out.reserve(header.bars);
    let mut t = header.first_millis;
    out.push(t);
    for index in 1..header.bars {
        let step = r.varint("time")?;
        let step = match time_encoding {
            TimeEncoding::Minutes => step.checked_mul(MINUTE_MILLIS),
            TimeEncoding::Millis => Some(step),
        };
        t = step
            .filter(|&s| s > 0)
            .and_then(|s| t.checked_add_unsigned(s))
            .ok_or(CellError::BadTimeStep { index })?;
        out.push(t);
    }
    if t != header.last_millis {
        return Err(CellError::LastInstant {
            decoded: t,
            header: header.last_millis,
        });
    }
    Ok(())
}

/// Decodes only a cell's bar times and appends them to `times`; returns how many. A stored
/// body is read up to the end of the time column and no further (the value columns are not
/// checked); a zstd body is decompressed whole first. On error `times` is left as it was.
pub fn decode_times(cell: &[u8], times: &mut Vec<i64>) -> Result<usize, CellError> {
    let before = times.len();
    let result = decode_times_appending(cell, times);
    if result.is_err() {
        times.truncate(before);
    }
    result
}

fn decode_times_appending(cell: &[u8], times: &mut Vec<i64>) -> Result<usize, CellError> {
    let header = read_header(cell)?;
    let Some(h) = cell.get(..HEADER_BYTES) else {
        return Err(CellError::Truncated {
            needed: HEADER_BYTES,
            len: cell.len(),
        });
    };
    if header.bars == 0 {
        return Ok(0);
    }
    if h[1] != 0 {
        let mut full = DayColumns::with_capacity(header.bars);
        decode_appending(cell, &mut full)?;
        times.extend_from_slice(&full.times);
        return Ok(header.bars);
    }
    let time_encoding = TimeEncoding::from_bytes(h[20], h[21])?;
    let declared = u32::from_le_bytes([h[32], h[33], h[34], h[35]]) as usize;
    let payload = &cell[HEADER_BYTES..];
    if payload.len() != declared {
        return Err(CellError::StoredLength {
            found: payload.len(),
            declared,
        });
    }
    let mut r = BodyReader::new(payload);
    decode_time_column(&mut r, &header, time_encoding, times)?;
    Ok(header.bars)
}

/// One value column of `bars` values, appended to `out`.
fn decode_values(
    r: &mut BodyReader<'_>,
    bars: usize,
    encoding: ValueEncoding,
    name: &'static str,
    out: &mut Vec<f64>,
) -> Result<(), CellError> {
    out.reserve(bars);
    match encoding {
        ValueEncoding::Raw => {
            for _ in 0..bars {
                out.push(f64::from_bits(r.u64_le(name)?));
            }
        }
        ValueEncoding::Decimal { scale } => {
            for index in 0..bars {
                let n = unzigzag(r.varint(name)?);
                if n.unsigned_abs() > MAX_SCALED_MAGNITUDE as u64 {
                    return Err(CellError::ScaledOutOfRange {
                        column: name,
                        index,
                    });
                }
                out.push(unscaled(n, scale));
            }
        }
        ValueEncoding::DecimalDelta { scale } => {
            let mut n = 0i64;
            for index in 0..bars {
                n = n.wrapping_add(unzigzag(r.varint(name)?));
                if n.unsigned_abs() > MAX_SCALED_MAGNITUDE as u64 {
                    return Err(CellError::ScaledOutOfRange {
                        column: name,
                        index,
                    });
                }
                out.push(unscaled(n, scale));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
