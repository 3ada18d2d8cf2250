//! Fetched bars as Arrow record batches with real types, and writers of them as Parquet or as an
//! Arrow IPC stream.
//!
//! The schema: `symbol` (`Utf8`, only when asked for: several symbols in one result),
//! `timestamp` (`Timestamp(Nanosecond, zone)`: the bar's open as an instant, annotated with UTC or
//! the exchange's zone), `open`, `high`, `low`, `close` and `volume` (`Float64`; volumes as
//! delivered, fractional ones included, whatever the table's volume column type); no column is
//! nullable. Batches are built as chunks arrive, so memory stays bounded by one batch
//! (and, for Parquet, one row group) whatever the range.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono_tz::Tz;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::{BarChunk, ChunkStream, FetchError};
use crate::cell::DayColumns;
use crate::model::Symbol;

/// Rows per record batch (about 3 MB of columns): large enough that per-batch costs vanish,
/// small enough to keep memory flat.
pub const BATCH_ROWS: usize = 64 * 1024;
/// Rows per Parquet row group: the Parquet writer buffers one row group before writing it.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;
/// zstd level of Parquet pages: level 1 compresses bars about 3:1 at several hundred MB/s.
const PARQUET_ZSTD_LEVEL: i32 = 1;

/// Nanoseconds per millisecond (stored timestamps are milliseconds).
const NANOS_PER_MILLI: i64 = 1_000_000;

/// Which columns a result has and how its timestamps are annotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// The zone the `timestamp` column is annotated with: `None` for UTC, else the exchange's
    /// (the instants are the same; readers show them in that zone).
    pub zone: Option<Tz>,
    /// Whether the first column is `symbol` (for results of several symbols).
    pub symbol: bool,
}

impl Columns {
    /// The zone of the `timestamp` column, as Arrow names it: `UTC` or an IANA name.
    pub fn zone_name(&self) -> &'static str {
        self.zone.map_or("UTC", |tz| tz.name())
    }

    /// The Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        let zone: Arc<str> = self.zone_name().into();
        let mut fields = Vec::with_capacity(7);
        if self.symbol {
            fields.push(Field::new("symbol", DataType::Utf8, false));
        }
        fields.push(Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Nanosecond, Some(zone)),
            false,
        ));
        for name in ["open", "high", "low", "close"] {
            fields.push(Field::new(name, DataType::Float64, false));
        }
        fields.push(Field::new("volume", DataType::Float64, false));
        Arc::new(Schema::new(fields))
    }
}

/// Accumulates bars column by column until a batch is full.
#[derive(Debug)]
pub struct BatchBuilder {
    columns: Columns,
    schema: SchemaRef,
    /// `symbol` values (empty unless `columns.symbol`): one buffer, no allocation per row.
    symbols: StringBuilder,
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
}

impl BatchBuilder {
    /// An empty builder with room for `capacity` rows.
    pub fn new(columns: Columns, capacity: usize) -> Self {
        Self {
            schema: columns.schema(),
            columns,
            symbols: StringBuilder::new(),
            ts: Vec::with_capacity(capacity),
            open: Vec::with_capacity(capacity),
            high: Vec::with_capacity(capacity),
            low: Vec::with_capacity(capacity),
            close: Vec::with_capacity(capacity),
            volume: Vec::with_capacity(capacity),
        }
    }

    /// The schema of the batches this builds.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows not yet taken by [`BatchBuilder::take`].
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when no row is waiting.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Appends the bars of `chunk[from..]`, at most `limit` of them; returns how many it took.
    /// Fails on a timestamp that nanoseconds cannot hold (before 1677 or after 2262).
    fn append(&mut self, chunk: &BarChunk, from: usize, limit: usize) -> Result<usize, FetchError> {
        let bars = &chunk.bars[from..chunk.bars.len().min(from + limit)];
        for bar in bars {
            let ns = bar.ts_millis.checked_mul(NANOS_PER_MILLI).ok_or_else(|| {
                FetchError::TimestampRange {
                    symbol: chunk.symbol.to_string(),
                    ts_millis: bar.ts_millis,
                }
            })?;
            self.ts.push(ns);
            self.open.push(bar.open);
            self.high.push(bar.high);
            self.low.push(bar.low);
            self.close.push(bar.close);
            self.volume.push(bar.volume);
        }
        if self.columns.symbol {
            let name = chunk.symbol.as_str();
            for _ in 0..bars.len() {
                self.symbols.append_value(name);
            }
        }
        Ok(bars.len())
    }

    /// The rows appended so far as one batch; the builder starts again empty.
    pub fn take(&mut self) -> Result<RecordBatch, FetchError> {
        let capacity = self.ts.capacity();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        if self.columns.symbol {
            arrays.push(Arc::new(self.symbols.finish()));
        }
        let ts = std::mem::replace(&mut self.ts, Vec::with_capacity(capacity));
        arrays.push(Arc::new(
            TimestampNanosecondArray::from(ts).with_timezone(self.columns.zone_name()),
        ));
        for column in [
            &mut self.open,
            &mut self.high,
            &mut self.low,
            &mut self.close,
        ] {
            let values = std::mem::replace(column, Vec::with_capacity(capacity));
            arrays.push(Arc::new(Float64Array::from(values)));
        }
        let volume = std::mem::replace(&mut self.volume, Vec::with_capacity(capacity));
        arrays.push(Arc::new(Float64Array::from(volume)));
        RecordBatch::try_new(Arc::clone(&self.schema), arrays).map_err(FetchError::Arrow)
    }
}

/// One symbol's bars, decoded as columns, as one record batch: the columns become the batch's
/// buffers without a copy (times are turned into nanoseconds in place). Fails on a timestamp
/// that nanoseconds cannot hold.
pub fn columns_batch(
    columns: Columns,
    symbol: &Symbol,
    bars: DayColumns,
) -> Result<RecordBatch, FetchError> {
    let DayColumns {
        mut times,
        open,
        high,
        low,
        close,
        volume,
    } = bars;
    for t in &mut times {
        *t = t
            .checked_mul(NANOS_PER_MILLI)
            .ok_or_else(|| FetchError::TimestampRange {
                symbol: symbol.to_string(),
                ts_millis: *t,
            })?;
    }
    let rows = times.len();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(7);
    if columns.symbol {
        let names = StringArray::from_iter_values(std::iter::repeat_n(symbol.as_str(), rows));
        arrays.push(Arc::new(names));
    }
    arrays.push(Arc::new(
        TimestampNanosecondArray::from(times).with_timezone(columns.zone_name()),
    ));
    for values in [open, high, low, close, volume] {
        arrays.push(Arc::new(Float64Array::from(values)));
    }
    RecordBatch::try_new(columns.schema(), arrays).map_err(FetchError::Arrow)
}

/// The chunks of a fetch as record batches of `batch_rows` rows (the last one shorter; none for
/// an empty result), in the chunks' order. An error ends the stream.
pub fn record_batches(
    chunks: ChunkStream,
    columns: Columns,
    batch_rows: usize,
) -> BoxStream<'static, Result<RecordBatch, FetchError>> {
    let batch_rows = batch_rows.max(1);
    let state = Batching {
        chunks,
        builder: BatchBuilder::new(columns, batch_rows),
        pending: None,
        batch_rows,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    })
    .boxed()
}

/// The state of [`record_batches`].
struct Batching {
    chunks: ChunkStream,
    builder: BatchBuilder,
    /// A chunk partly appended: the chunk and how many of its bars are in earlier batches.
    pending: Option<(BarChunk, usize)>,
    batch_rows: usize,
    done: bool,
}

impl Batching {
    async fn next(&mut self) -> Option<Result<RecordBatch, FetchError>> {
        while !self.done {
            let (chunk, from) = match self.pending.take() {
                Some(p) => p,
                None => match self.chunks.next().await {
                    Some(Ok(chunk)) => (chunk, 0),
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    None => {
                        self.done = true;
                        break;
                    }
                },
            };
            let room = self.batch_rows - self.builder.len();
            let taken = match self.builder.append(&chunk, from, room) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if from + taken < chunk.bars.len() {
                self.pending = Some((chunk, from + taken));
            }
            if self.builder.len() == self.batch_rows {
                return Some(self.builder.take());
            }
        }
        (!self.builder.is_empty()).then(|| self.builder.take())
    }
}

/// A binary output format of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// A Parquet file: zstd-compressed pages, row groups of [`ROW_GROUP_ROWS`] rows, the Arrow
    /// schema (with the time zone) kept in its metadata.
    Parquet,
    /// An Arrow IPC stream (`.arrows`): the schema, then one message per batch.
    ArrowIpc,
}

/// Why writing batches failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchWriteError {
    #[error("writing Parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("writing Arrow IPC: {0}")]
    Arrow(#[from] ArrowError),
}

impl BatchWriteError {
    /// True when the reader of the output went away (`| head`): not a failure of ours.
    pub fn is_broken_pipe(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return io.kind() == std::io::ErrorKind::BrokenPipe;
            }
            if let Some(ArrowError::IoError(_, io)) = e.downcast_ref::<ArrowError>() {
                return io.kind() == std::io::ErrorKind::BrokenPipe;
            }
            source = e.source();
        }
        false
    }
}

/// Writes record batches to `W` in one [`BatchFormat`]: [`BatchWriter::write`] each batch, then
/// [`BatchWriter::finish`] (which writes the Parquet footer or the IPC end marker).
pub struct BatchWriter<W: Write + Send> {
    inner: Inner<W>,
}

enum Inner<W: Write + Send> {
    Parquet(ArrowWriter<W>),
    Ipc(StreamWriter<W>),
}

impl<W: Write + Send> BatchWriter<W> {
    /// A writer of batches of `schema` (the IPC stream's schema message is written at once).
    pub fn new(out: W, format: BatchFormat, schema: &SchemaRef) -> Result<Self, BatchWriteError> {
        let inner = match format {
            BatchFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(PARQUET_ZSTD_LEVEL)?))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .set_created_by(concat!("bar-ingest ", env!("CARGO_PKG_VERSION")).into())
                    .build();
                Inner::Parquet(ArrowWriter::try_new(out, Arc::clone(schema), Some(props))?)
            }
            BatchFormat::ArrowIpc => Inner::Ipc(StreamWriter::try_new(out, schema)?),
        };
        Ok(Self { inner })
    }

    /// Writes one batch (Parquet: buffered until a row group is full).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), BatchWriteError> {
        match &mut self.inner {
            Inner::Parquet(w) => w.write(batch)?,
            Inner::Ipc(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Writes what is buffered and the format's end, and hands back the output (not flushed to
    /// disk: sync it if it is a file).
    pub fn finish(self) -> Result<W, BatchWriteError> {
        match self.inner {
            Inner::Parquet(w) => Ok(w.into_inner()?),
            Inner::Ipc(mut w) => {
                w.finish()?;
                Ok(w.into_inner()?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bar, Symbol};
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, TimestampNanosecondType};

    fn chunk(symbol: &str, first_ms: i64, n: usize) -> BarChunk {
        let bars = (0..n)
            .map(|i| {
                let x = i as f64;
                Bar {
                    ts_millis: first_ms + 60_000 * i as i64,
                    open: 1.0 + x,
                    high: 2.0 + x,
                    low: 0.5 + x,
                    close: 1.5 + x,
                    // Whole and fractional volumes.
                    volume: 100.0 + x * 0.125,
                }
            })
            .collect();
        BarChunk {
            symbol: Symbol::new(symbol).unwrap(),
            bars,
        }
    }

    fn batches(chunks: Vec<BarChunk>, columns: Columns, rows: usize) -> Vec<RecordBatch> {
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed();
        collect(record_batches(stream, columns, rows))
    }

    /// Every batch of a stream whose chunks are ready at once.
    fn collect(mut s: BoxStream<'static, Result<RecordBatch, FetchError>>) -> Vec<RecordBatch> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut out = Vec::new();
            while let Some(b) = s.next().await {
                out.push(b.unwrap());
            }
            out
        })
    }

    #[test]
    fn schema_has_typed_columns_and_the_zone() {
        let utc = Columns {
            zone: None,
            symbol: false,
        }
        .schema();
        let names: Vec<&str> = utc.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["timestamp", "open", "high", "low", "close", "volume"]
        );
        assert_eq!(
            utc.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        assert_eq!(utc.field(5).data_type(), &DataType::Float64);
        let ny = Columns {
            zone: Some(chrono_tz::America::New_York),
            symbol: true,
        }
        .schema();
        assert_eq!(ny.field(0).name(), "symbol");
        assert_eq!(
            ny.field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("America/New_York".into()))
        );
    }

    #[test]
    fn chunks_become_batches_of_the_requested_size_with_every_value() {
        let columns = Columns {
            zone: None,
            symbol: true,
        };
        let input = vec![
            chunk("AAA", 0, 5),
            chunk("AAA", 300_000, 2),
            chunk("BBB", 0, 4),
        ];
        let out = batches(input.clone(), columns, 3);
        let sizes: Vec<usize> = out.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [3, 3, 3, 2]);
        let mut rows = Vec::new();
        for b in &out {
            let sym = b.column(0).as_string::<i32>();
            let ts = b.column(1).as_primitive::<TimestampNanosecondType>();
            let open = b.column(2).as_primitive::<Float64Type>();
            let close = b.column(5).as_primitive::<Float64Type>();
            let vol = b.column(6).as_primitive::<Float64Type>();
            assert_eq!(b.column(3).null_count(), 0);
            for i in 0..b.num_rows() {
                rows.push((
                    sym.value(i).to_owned(),
                    ts.value(i),
                    open.value(i),
                    close.value(i),
                    vol.value(i),
                ));
            }
        }
        let want: Vec<_> = input
            .iter()
            .flat_map(|c| {
                c.bars.iter().map(|b| {
                    (
                        c.symbol.to_string(),
                        b.ts_millis * 1_000_000,
                        b.open,
                        b.close,
                        b.volume,
                    )
                })
            })
            .collect();
        assert_eq!(rows, want);
    }

    #[test]
    fn an_empty_result_has_no_batch_and_a_timestamp_beyond_nanoseconds_is_an_error() {
        let columns = Columns {
            zone: None,
            symbol: false,
        };
        assert!(batches(Vec::new(), columns, 10).is_empty());
        let far = chunk("X", i64::MAX / 1000, 1);
        let stream = futures_util::stream::iter(vec![Ok(far)]).boxed();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let first = rt.block_on(async { record_batches(stream, columns, 10).next().await });
        let err = first.unwrap().unwrap_err();
        assert!(
            matches!(err, FetchError::TimestampRange { ref symbol, .. } if symbol == "X"),
            "{err}"
        );
    }

    #[test]
    fn parquet_and_ipc_outputs_read_back_to_the_same_batches() {
        let columns = Columns {
            zone: Some(chrono_tz::America::New_York),
            symbol: false,
        };
        let input = batches(vec![chunk("AAA", 1_700_000_000_000, 1000)], columns, 300);
        for format in [BatchFormat::Parquet, BatchFormat::ArrowIpc] {
            let mut w = BatchWriter::new(Vec::new(), format, &columns.schema()).unwrap();
            for b in &input {
                w.write(b).unwrap();
            }
            let bytes = bytes::Bytes::from(w.finish().unwrap());
            let back: Vec<RecordBatch> = match format {
                BatchFormat::Parquet => {
                    parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes, 1000)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                }
                BatchFormat::ArrowIpc => {
                    arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                }
            };
            let back = arrow_select_concat(&back);
            let want = arrow_select_concat(&input);
            assert_eq!(back.schema(), columns.schema(), "{format:?}");
            assert_eq!(back, want, "{format:?}");
        }
    }

    /// The batches as one (test helper: concatenation column by column).
    fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
        let schema = batches[0].schema();
        arrow_select::concat::concat_batches(&schema, batches).unwrap()
    }
}
