//! Batch: groups consecutive bars of one partition (symbol, month) into batches bounded by rows
//! and estimated bytes.

use crate::model::{Bar, Bucket};

/// Estimated bytes of one row in a batch besides the symbol: statement kind and id (~20), the
/// bucket (7 + 4), the timestamp (8 + 4), four doubles and a bigint (5 × (8 + 4)).
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
    pub bucket: Bucket,
    pub bars: Vec<Bar>,
}

/// Accumulates bars; hands out a batch when the partition changes or a limit is reached.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// Rows per batch, from the row limit and the byte limit together.
    rows_per_batch: usize,
    /// The batch being filled.
    current: Option<PartitionBatch>,
}

impl BatchLimits {
    /// Rows one batch holds at most for a symbol of `symbol_len` bytes: the row limit and the
    /// byte limit together.
    pub fn rows_per_batch(&self, symbol_len: usize) -> usize {
        let row_bytes = ROW_OVERHEAD_BYTES + symbol_len + 4;
        self.max_rows.min(self.max_bytes / row_bytes).max(1)
    }
}

impl Batcher {
    /// A batcher for rows of a symbol of `symbol_len` bytes.
    pub fn new(limits: BatchLimits, symbol_len: usize) -> Self {
        Self {
            rows_per_batch: limits.rows_per_batch(symbol_len),
            current: None,
        }
    }

    /// Adds a bar; returns the batch that is complete, if any.
    pub fn push(&mut self, bucket: Bucket, bar: Bar) -> Option<PartitionBatch> {
        let done = match &self.current {
            Some(b) if b.bucket != bucket || b.bars.len() >= self.rows_per_batch => {
                self.current.take()
            }
            _ => None,
        };
        let cur = self.current.get_or_insert_with(|| PartitionBatch {
            bucket,
            bars: Vec::with_capacity(self.rows_per_batch),
        });
        cur.bars.push(bar);
        done
    }

    /// The last, partly filled batch.
    pub fn finish(&mut self) -> Option<PartitionBatch> {
        self.current.take()
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
            volume: 1,
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
        let mut out = Vec::new();
        for (i, bucket) in [jan, jan, jan, jan, feb, feb].into_iter().enumerate() {
            out.extend(b.push(bucket, bar(i as i64)));
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
