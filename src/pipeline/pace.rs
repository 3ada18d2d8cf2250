//! Pace: token buckets that hold the rows and bytes sent per second under the configured caps
//! (`ingest.max_rows_per_second`, `ingest.max_bytes_per_second`), for the cluster's sake.
//!
//! Pure logic: the caller passes the time. A batch reserves its rows and bytes before it is
//! sent and waits for what [`Pace::reserve`] returns; the buckets may go into debt, so a batch
//! bigger than a bucket's burst still goes through, at the configured rate, and callers that
//! reserve one after another are spaced in the order they asked. Tokens build up for at most
//! [`BURST`] while nothing is sent, so an idle loader does not send a burst of seconds later.

use std::time::{Duration, Instant};

/// The most a bucket holds: this long at its rate.
pub(crate) const BURST: Duration = Duration::from_millis(100);

/// One quantity (rows or bytes) under a rate (0: no limit).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Per second; 0 means no limit.
    rate: u64,
    /// Tokens available now (negative: reserved ahead, the debt of waiting callers).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `rate` per second (0: no limit).
    pub fn new(rate: u64, now: Instant) -> Self {
        let mut bucket = Self {
            rate,
            tokens: 0.0,
            at: now,
        };
        bucket.tokens = bucket.burst();
        bucket
    }

    fn burst(&self) -> f64 {
        self.rate as f64 * BURST.as_secs_f64()
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst());
        self.at = self.at.max(now);
    }

    /// Takes `n` tokens; returns how long the caller waits before sending (zero: at once).
    pub fn reserve(&mut self, n: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }

    /// A new rate from now on (a reload). Debt already reserved stays; from no limit to a
    /// limit, the bucket starts full.
    pub fn set_rate(&mut self, rate: u64, now: Instant) {
        if rate == self.rate {
            return;
        }
        if self.rate == 0 {
            *self = Self::new(rate, now);
            return;
        }
        self.refill(now);
        self.rate = rate;
        self.tokens = self.tokens.min(self.burst());
    }
}

/// The two caps of a batch: its rows and its estimated bytes.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    /// `ingest.max_rows_per_second`.
    rows: TokenBucket,
    /// `ingest.max_bytes_per_second`, of the batches' estimated size.
    bytes: TokenBucket,
}

impl Pace {
    /// Caps of `rows_per_second` and `bytes_per_second` (0: no limit).
    pub fn new(rows_per_second: u64, bytes_per_second: u64, now: Instant) -> Self {
        Self {
            rows: TokenBucket::new(rows_per_second, now),
            bytes: TokenBucket::new(bytes_per_second, now),
        }
    }

    /// Reserves a batch of `rows` rows and `bytes` bytes; the wait before it may be sent.
    pub fn reserve(&mut self, rows: u64, bytes: u64, now: Instant) -> Duration {
        let rows = self.rows.reserve(rows, now);
        rows.max(self.bytes.reserve(bytes, now))
    }

    /// New caps from now on.
    pub fn set_rates(&mut self, rows_per_second: u64, bytes_per_second: u64, now: Instant) {
        self.rows.set_rate(rows_per_second, now);
        self.bytes.set_rate(bytes_per_second, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Equal to a microsecond (the arithmetic is in floating point).
    fn assert_near(got: Duration, want: Duration) {
        let off = got.abs_diff(want);
        assert!(off < Duration::from_micros(1), "{got:?} is not {want:?}");
    }

    fn assert_all_near(got: &[Duration], want: &[Duration]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_near(*g, *w);
        }
    }

    #[test]
    fn no_limit_never_waits() {
        let t0 = Instant::now();
        let mut pace = Pace::new(0, 0, t0);
        for _ in 0..1000 {
            assert_eq!(pace.reserve(1_000_000, 1 << 30, t0), Duration::ZERO);
        }
    }

    /// 1000 rows/s, batches of 100 rows each sent as soon as allowed: the burst (100 rows)
    /// goes at once, then one batch every 100 ms: 100 more batches take 10 s.
    #[test]
    fn batches_are_spaced_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        assert_eq!(bucket.reserve(100, t0), Duration::ZERO);
        let mut now = t0;
        for _ in 0..100 {
            let wait = bucket.reserve(100, now);
            assert_near(wait, ms(100));
            now += wait;
        }
        assert_near(now - t0, 10 * SECOND);
    }

    #[test]
    fn waiting_callers_are_spaced_in_turn() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        // Three reservations at the same instant: the burst, then 100 ms, then 200 ms.
        let waits: Vec<Duration> = (0..3).map(|_| bucket.reserve(100, t0)).collect();
        assert_all_near(&waits, &[Duration::ZERO, ms(100), ms(200)]);
    }

    #[test]
    fn idle_time_builds_at_most_one_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        assert_eq!(bucket.reserve(100, t0), Duration::ZERO);
        let later = t0 + 3600 * SECOND;
        assert_eq!(bucket.reserve(100, later), Duration::ZERO);
        assert_near(bucket.reserve(100, later), ms(100));
    }

    #[test]
    fn a_batch_bigger_than_the_burst_waits_its_share() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100, t0);
        // Burst 10 rows; 110 rows: 100 in debt, one second.
        assert_near(bucket.reserve(110, t0), SECOND);
    }

    #[test]
    fn the_slower_cap_decides() {
        let t0 = Instant::now();
        // 1000 rows/s and 10 000 bytes/s; batches of 100 rows and 5000 bytes.
        let mut pace = Pace::new(1000, 10_000, t0);
        assert_near(pace.reserve(100, 5000, t0), ms(400));
        assert_near(pace.reserve(100, 5000, t0), ms(900));
    }

    #[test]
    fn a_new_rate_applies_from_now() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        assert_eq!(bucket.reserve(100, t0), Duration::ZERO);
        assert_near(bucket.reserve(100, t0), ms(100));
        // Doubled at t0 + 100 ms, when the debt is paid: the next batch waits 50 ms.
        let t1 = t0 + ms(100);
        bucket.set_rate(2000, t1);
        assert_near(bucket.reserve(100, t1), ms(50));
        // Lifted: no wait at all; set again: starts with a full burst (200 rows at 2000/s).
        bucket.set_rate(0, t1);
        assert_eq!(bucket.reserve(1_000_000, t1), Duration::ZERO);
        bucket.set_rate(2000, t1);
        assert_eq!(bucket.reserve(200, t1), Duration::ZERO);
        assert_near(bucket.reserve(200, t1), ms(100));
    }
}
