//! Batch: groups consecutive bars of one partition (symbol, month) into batches bounded by rows
//! and estimated bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{Bar, Bucket, Symbol};

/// Estimated bytes of one row in a batch besides the symbol: statement kind and id (~20), the
/// bucket (7 + 4), the timestamp (8 + 4), the prices and the volume (5 × (8 + 4): doubles, or a
/// bigint volume in an older table, eight bytes either way).
const ROW_OVERHEAD_BYTES: usize = 20 + 11 + 12 + 60;

/// How big one batch may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    /// Most rows in one batch.
    pub max_rows: usize,
    /// Most estimated bytes in one batch (kept far under ScyllaDB's 128 KiB warning).
    pub max_bytes: usize,
}

/// Rows of one partition, in file order, ready to be written as one unlogged batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartitionBatch {
    pub symbol: Arc<Symbol>,
    pub bucket: Bucket,
    pub bars: Vec<Bar>,
}

/// Most rows held in partly filled batches at once (a bar is 48 bytes: about 25 MB, twice that
/// with the vectors' spare room). A file sorted by partition (one symbol's months in order, or
/// a day file sorted by ticker) holds few; a file whose rows interleave symbols (sorted by
/// time) holds a batch per symbol, and past this bound the least recently used open batch is
/// sent as it is: a time-sorted day file of 10,000 tickers still gets batches of about 50 rows.
const MAX_OPEN_ROWS: usize = 1 << 19;

/// Most partly filled batches kept open at once (each costs its map entries besides its rows).
const MAX_OPEN_BATCHES: usize = 1 << 16;

/// Accumulates bars; hands out a batch when it is full, when too many are open, or at the end.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// Rows per batch, from the row limit and the byte limit together.
    rows_per_batch: usize,
    /// The batch being filled (the partition of the last bar: the fast path).
    current: Option<PartitionBatch>,
    /// Other partly filled batches, by partition, with the sequence number they were parked
    /// under.
    open: HashMap<(Arc<Symbol>, Bucket), (u64, PartitionBatch)>,
    /// The open batches' partitions by sequence number: the first is the least recently used.
    by_age: BTreeMap<u64, (Arc<Symbol>, Bucket)>,
    /// Rows in `open` and `current`.
    held: usize,
    opened: u64,
}

impl BatchLimits {
    /// Rows one batch holds at most for a symbol of `symbol_len` bytes: the row limit and the
    /// byte limit together.
    pub fn rows_per_batch(&self, symbol_len: usize) -> usize {
        self.max_rows
            .min(self.max_bytes / row_bytes(symbol_len))
            .max(1)
    }
}

/// Estimated bytes of one row of a symbol of `symbol_len` bytes in a batch.
fn row_bytes(symbol_len: usize) -> usize {
    ROW_OVERHEAD_BYTES + symbol_len + 4
}

impl PartitionBatch {
    /// The batch's estimated size on the wire (the estimate `batch_max_bytes` bounds).
    pub fn estimated_bytes(&self) -> usize {
        self.bars.len() * row_bytes(self.symbol.as_str().len())
    }
}

impl Batcher {
    /// A batcher for rows of symbols of at most `symbol_len` bytes.
    pub fn new(limits: BatchLimits, symbol_len: usize) -> Self {
        Self {
            rows_per_batch: limits.rows_per_batch(symbol_len),
            current: None,
            open: HashMap::new(),
            by_age: BTreeMap::new(),
            held: 0,
            opened: 0,
        }
    }

    /// Rows held in partly filled batches.
    #[cfg(test)]
    pub fn rows_held(&self) -> usize {
        self.held
    }

    /// Adds a bar; returns the batches that are ready: a full one, and one sent early because
    /// too many were open (iterate with `.into_iter().flatten()`).
    pub fn push(
        &mut self,
        symbol: &Arc<Symbol>,
        bucket: Bucket,
        bar: Bar,
    ) -> [Option<PartitionBatch>; 2] {
        let mut evicted = None;
        let same = self
            .current
            .as_ref()
            .is_some_and(|c| c.bucket == bucket && c.symbol == *symbol);
        if !same {
            if let Some(cur) = self.current.take() {
                evicted = self.park(cur);
            }
            let reopened = self.open.remove(&(Arc::clone(symbol), bucket));
            self.current = Some(match reopened {
                Some((n, b)) => {
                    self.by_age.remove(&n);
                    b
                }
                None => PartitionBatch {
                    symbol: Arc::clone(symbol),
                    bucket,
                    // Grown as needed: thousands of open batches hold few rows each.
                    bars: Vec::new(),
                },
            });
        }
        let cur = self.current.as_mut().expect("set above");
        cur.bars.push(bar);
        self.held += 1;
        let full = if cur.bars.len() >= self.rows_per_batch {
            self.current.take()
        } else {
            None
        };
        if let Some(f) = &full {
            self.held -= f.bars.len();
        }
        // One row came in: sending one open batch (at least one row) restores the bound.
        if evicted.is_none() && self.held > MAX_OPEN_ROWS {
            evicted = self.evict_oldest();
        }
        [full, evicted]
    }

    /// Keeps a partly filled batch open; sends the least recently used one when too many are.
    fn park(&mut self, batch: PartitionBatch) -> Option<PartitionBatch> {
        self.opened += 1;
        let key = (Arc::clone(&batch.symbol), batch.bucket);
        self.by_age.insert(self.opened, key.clone());
        self.open.insert(key, (self.opened, batch));
        if self.open.len() <= MAX_OPEN_BATCHES {
            return None;
        }
        self.evict_oldest()
    }

    /// Takes the least recently used open batch out, to be sent as it is.
    fn evict_oldest(&mut self) -> Option<PartitionBatch> {
        let (_, key) = self.by_age.pop_first()?;
        let (_, batch) = self.open.remove(&key)?;
        self.held -= batch.bars.len();
        Some(batch)
    }

    /// The remaining, partly filled batches, least recently used first.
    pub fn finish(&mut self) -> Vec<PartitionBatch> {
        let mut out: Vec<PartitionBatch> = std::mem::take(&mut self.by_age)
            .into_values()
            .filter_map(|key| self.open.remove(&key).map(|(_, b)| b))
            .collect();
        out.extend(self.current.take());
        self.held = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(ts: i64) -> Bar {
        Bar {
            ts_millis: ts,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
        }
    }

    #[test]
    fn batches_never_mix_partitions_and_respect_limits() {
        let jan = Bucket::parse("2020-01").unwrap();
        let feb = Bucket::parse("2020-02").unwrap();
        let limits = BatchLimits {
            max_rows: 3,
            max_bytes: 1 << 20,
        };
        let mut b = Batcher::new(limits, 4);
        let sym = Arc::new(Symbol::new("ABCD").unwrap());
        let mut out = Vec::new();
        for (i, bucket) in [jan, jan, jan, jan, feb, feb].into_iter().enumerate() {
            out.extend(b.push(&sym, bucket, bar(i as i64)).into_iter().flatten());
        }
        out.extend(b.finish());
        let shape: Vec<(String, Vec<i64>)> = out
            .iter()
            .map(|p| {
                (
                    p.bucket.to_string(),
                    p.bars.iter().map(|x| x.ts_millis).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("2020-01".into(), vec![0, 1, 2]),
                ("2020-01".into(), vec![3]),
                ("2020-02".into(), vec![4, 5]),
            ]
        );
    }

    /// Rows of many symbols interleaved (a file sorted by time): every row lands in a batch of
    /// its own partition, batches are full except the last of each partition, nothing is lost,
    /// and no more than the bound are ever open.
    #[test]
    fn interleaved_symbols_fill_their_own_batches() {
        let limits = BatchLimits {
            max_rows: 4,
            max_bytes: 1 << 20,
        };
        let jan = Bucket::parse("2020-01").unwrap();
        let symbols: Vec<Arc<Symbol>> = (0..3)
            .map(|i| Arc::new(Symbol::new(&format!("S{i}")).unwrap()))
            .collect();
        let mut b = Batcher::new(limits, 4);
        let mut out = Vec::new();
        for t in 0..10 {
            for s in &symbols {
                out.extend(b.push(s, jan, bar(t)).into_iter().flatten());
            }
        }
        out.extend(b.finish());
        for s in &symbols {
            let sizes: Vec<usize> = out
                .iter()
                .filter(|p| p.symbol == *s)
                .map(|p| p.bars.len())
                .collect();
            assert_eq!(sizes, vec![4, 4, 2], "{s}");
            let times: Vec<i64> = out
                .iter()
                .filter(|p| p.symbol == *s)
                .flat_map(|p| p.bars.iter().map(|x| x.ts_millis))
                .collect();
            assert_eq!(
                times,
                (0..10).collect::<Vec<_>>(),
                "{s}: in order, none lost"
            );
        }
    }

    #[test]
    fn too_many_open_batches_send_the_oldest_early() {
        let limits = BatchLimits {
            max_rows: 100,
            max_bytes: 1 << 20,
        };
        let jan = Bucket::parse("2020-01").unwrap();
        let mut b = Batcher::new(limits, 8);
        let mut early = Vec::new();
        let n = MAX_OPEN_BATCHES + 5;
        let symbols: Vec<Arc<Symbol>> = (0..n)
            .map(|i| Arc::new(Symbol::new(&format!("S{i}")).unwrap()))
            .collect();
        for s in &symbols {
            early.extend(b.push(s, jan, bar(1)).into_iter().flatten());
        }
        assert!(b.open.len() <= MAX_OPEN_BATCHES);
        // The oldest went first, each with its one row.
        let first: Vec<&str> = early.iter().map(|p| p.symbol.as_str()).collect();
        assert_eq!(first, ["S0", "S1", "S2", "S3"]);
        let rest = b.finish();
        assert_eq!(early.len() + rest.len(), n);
    }

    /// A day file of 10,000 tickers sorted by time (each minute cycles through every ticker):
    /// a ticker's batch was sent after 1024 others had opened, with one row, after a scan of
    /// the 1024 open ones. Now batches stay big and the rows held open stay under the bound.
    #[test]
    fn a_time_sorted_file_of_10000_tickers_sent_one_row_batches() {
        let limits = BatchLimits {
            max_rows: 100,
            max_bytes: 1 << 20,
        };
        let jan = Bucket::parse("2020-01").unwrap();
        let symbols: Vec<Arc<Symbol>> = (0..10_000)
            .map(|i| Arc::new(Symbol::new(&format!("T{i}")).unwrap()))
            .collect();
        let mut b = Batcher::new(limits, 8);
        let (mut batches, mut rows, mut most_held) = (0usize, 0usize, 0usize);
        let minutes = 120;
        for t in 0..minutes {
            for s in &symbols {
                for out in b.push(s, jan, bar(t)).into_iter().flatten() {
                    batches += 1;
                    rows += out.bars.len();
                }
                most_held = most_held.max(b.rows_held());
            }
        }
        for out in b.finish() {
            batches += 1;
            rows += out.bars.len();
        }
        assert_eq!(rows, 10_000 * minutes as usize, "every row in a batch");
        assert!(most_held <= MAX_OPEN_ROWS, "{most_held} rows held open");
        let average = rows / batches;
        assert!(
            average >= 40,
            "{batches} batches for {rows} rows: {average} rows a batch"
        );
    }

    #[test]
    fn byte_limit_caps_rows() {
        let b = Batcher::new(
            BatchLimits {
                max_rows: 1000,
                max_bytes: 1000,
            },
            5,
        );
        assert!(b.rows_per_batch < 10, "{}", b.rows_per_batch);
        let big = Batcher::new(
            BatchLimits {
                max_rows: 100,
                max_bytes: 32 * 1024,
            },
            5,
        );
        assert_eq!(big.rows_per_batch, 100);
    }
}
