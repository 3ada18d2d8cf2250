//! Limit: how many batches may be in flight, adjusted from what the writes report (AIMD, as TCP
//! does with its window): one more per round trip while the limit is used and latency holds;
//! times [`BACKOFF`] on a timeout, an `Overloaded` answer, or a round trip whose median latency
//! rose past [`LATENCY_RISE`] times the baseline; never outside the configured bounds.
//!
//! Pure logic: no clock, no tokio. The caller measures each attempt and reports it with the
//! [`Ticket`] taken when the attempt was sent; the async gate around it is the write stage's
//! slots.
//!
//! - **Round trip.** A window closes after as many completions as the limit (at least
//!   [`MIN_WINDOW`]): about one round trip of every slot.
//! - **One decrease per round trip.** Each decrease starts a new epoch; news from an attempt
//!   sent before it (a burst of timeouts from the same crowded moment) was already acted on and
//!   is ignored, so one bad moment costs one decrease, not a fall to the floor.
//! - **Baseline.** The latency the cluster gives when it is not in trouble: a smoothed
//!   round-trip median, moving down by 1/[`BASELINE_DROP`] and up by 1/[`BASELINE_CREEP`] of the
//!   gap per window, so a slowly growing latency (more in flight, a bigger cluster load) becomes
//!   the new normal, while one unusually fast round trip (noise) does not make the next ordinary
//!   one look like a rise.
//! - **A rise is sustained.** Latency counts as risen only after [`RISE_WINDOWS`] round trips in
//!   a row above [`LATENCY_RISE`] times the baseline: one slow round trip (a garbage-collection
//!   pause on one node) holds the limit where it is, a compaction storm or another loader lowers
//!   it.
//! - **Used.** The limit grows only in a window where the in-flight count reached it: a loader
//!   held back by its reader (or by the pace limit) does not inflate a limit it never tests.

use std::time::Duration;

/// Factor applied to the limit on a decrease.
pub(crate) const BACKOFF: f64 = 0.7;
/// A round trip's median latency above this many times the baseline triggers a decrease.
pub(crate) const LATENCY_RISE: f64 = 1.5;
/// Fewest completions in a window, so that small limits do not judge by two or three samples.
pub(crate) const MIN_WINDOW: usize = 16;
/// The baseline moves up by 1/this of the gap to a higher round-trip median, per window.
pub(crate) const BASELINE_CREEP: u32 = 8;
/// The baseline moves down by 1/this of the gap to a lower round-trip median, per window.
pub(crate) const BASELINE_DROP: u32 = 4;
/// Round trips in a row above the latency threshold that make a rise (and a decrease).
pub(crate) const RISE_WINDOWS: u32 = 2;

/// The bounds of the limit (both at least 1, `min <= max`: the configuration checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub min: usize,
    pub max: usize,
}

impl Bounds {
    fn clamp(self, n: usize) -> usize {
        n.clamp(self.min.max(1), self.max.max(self.min).max(1))
    }
}

/// What one attempt came to, as far as the limit cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Taken by the database after this long.
    Taken(Duration),
    /// Not taken because the cluster is too busy (a timeout, `Overloaded`, rate limited).
    Congested,
}

/// Why the limit went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Congested,
    LatencyRose,
}

/// A change of the limit, for the log and the gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Increased(usize),
    Decreased(usize, Why),
}

/// Taken when an attempt is sent; reported with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    epoch: u64,
}

/// The adaptive limit on attempts in flight.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// Where the limit may go (a reload may change them).
    bounds: Bounds,
    /// Slots that may be taken at once.
    limit: usize,
    /// Slots taken now (the gate takes and gives them back).
    in_flight: usize,
    /// Counts decreases: tickets of an older epoch are ignored.
    epoch: u64,
    /// Latencies of the current window's completions.
    window: Vec<Duration>,
    /// The most slots taken at once during the current window.
    peak: usize,
    /// None until the first window closes.
    baseline: Option<Duration>,
    /// Round trips in a row whose median was above the threshold.
    slow_windows: u32,
}

impl Limiter {
    /// A limiter starting at `initial`, kept within `bounds`.
    pub fn new(bounds: Bounds, initial: usize) -> Self {
        Self {
            bounds,
            limit: bounds.clamp(initial),
            in_flight: 0,
            epoch: 0,
            window: Vec::with_capacity(MIN_WINDOW),
            peak: 0,
            baseline: None,
            slow_windows: 0,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes a slot if fewer than the limit are taken.
    pub fn try_acquire(&mut self) -> bool {
        if self.in_flight >= self.limit {
            return false;
        }
        self.in_flight += 1;
        self.peak = self.peak.max(self.in_flight);
        true
    }

    /// Gives a slot back.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The ticket of an attempt sent now.
    pub fn ticket(&self) -> Ticket {
        Ticket { epoch: self.epoch }
    }

    /// New bounds (a reload): the limit is moved into them if it is outside.
    pub fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = bounds;
        self.limit = bounds.clamp(self.limit);
    }

    /// Learns from one attempt sent with `ticket`.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome) -> Option<Change> {
        if ticket.epoch != self.epoch {
            return None;
        }
        match outcome {
            Outcome::Congested => Some(self.decrease(Why::Congested)),
            Outcome::Taken(latency) => {
                self.window.push(latency);
                if self.window.len() >= self.limit.max(MIN_WINDOW) {
                    self.close_window()
                } else {
                    None
                }
            }
        }
    }

    /// The end of a round trip: judge its median latency against the baseline.
    fn close_window(&mut self) -> Option<Change> {
        let median = median(&mut self.window);
        let baseline = *self.baseline.get_or_insert(median);
        self.baseline = Some(smooth(baseline, median));
        if median.as_secs_f64() > baseline.as_secs_f64() * LATENCY_RISE {
            self.slow_windows += 1;
            if self.slow_windows >= RISE_WINDOWS {
                return Some(self.decrease(Why::LatencyRose));
            }
            // Slow once: neither up nor down until the next round trip says which it was.
            self.start_window();
            return None;
        }
        self.slow_windows = 0;
        let used = self.peak >= self.limit;
        self.start_window();
        if used && self.limit < self.bounds.max {
            self.limit += 1;
            return Some(Change::Increased(self.limit));
        }
        None
    }

    fn decrease(&mut self, why: Why) -> Change {
        let lower = (self.limit as f64 * BACKOFF).floor() as usize;
        self.limit = self.bounds.clamp(lower);
        self.epoch += 1;
        self.slow_windows = 0;
        self.start_window();
        Change::Decreased(self.limit, why)
    }

    fn start_window(&mut self) {
        self.window.clear();
        self.peak = self.in_flight;
    }
}

/// The median of a window (not empty: a window closes after at least one sample).
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The baseline after a window with `median`: a fraction of the gap, down or up.
fn smooth(baseline: Duration, median: Duration) -> Duration {
    if median <= baseline {
        baseline - (baseline - median) / BASELINE_DROP
    } else {
        baseline + (median - baseline) / BASELINE_CREEP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(min: usize, initial: usize, max: usize) -> Limiter {
        Limiter::new(Bounds { min, max }, initial)
    }

    /// Fills every slot, then completes one window's worth of attempts at `latency`, keeping
    /// the slots full (a saturated loader). Returns the changes.
    fn saturated_window(l: &mut Limiter, latency: Duration) -> Vec<Change> {
        while l.try_acquire() {}
        let n = l.limit().max(MIN_WINDOW);
        let mut changes = Vec::new();
        for _ in 0..n {
            let ticket = l.ticket();
            changes.extend(l.record(ticket, Outcome::Taken(latency)));
            l.release();
            l.try_acquire();
        }
        changes
    }

    #[test]
    fn grows_by_one_per_round_trip_while_used_and_latency_holds() {
        let mut l = limiter(4, 32, 40);
        for expected in 33..=40 {
            assert_eq!(
                saturated_window(&mut l, 10 * MS),
                vec![Change::Increased(expected)]
            );
        }
        // At the upper bound it stays there.
        assert!(saturated_window(&mut l, 10 * MS).is_empty());
        assert_eq!(l.limit(), 40);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut l = limiter(4, 32, 256);
        for _ in 0..10 {
            // Two in flight at a time, never 32.
            for _ in 0..32 {
                assert!(l.try_acquire());
                let t = l.ticket();
                assert_eq!(l.record(t, Outcome::Taken(5 * MS)), None);
                l.release();
            }
        }
        assert_eq!(l.limit(), 32);
    }

    #[test]
    fn congestion_multiplies_the_limit_down_to_the_floor_and_not_below() {
        let mut l = limiter(4, 32, 256);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let t = l.ticket();
            if let Some(Change::Decreased(n, Why::Congested)) = l.record(t, Outcome::Congested) {
                seen.push(n);
            }
        }
        // 32 · 0.7 = 22.4 → 22, → 15, → 10, → 7, → 4 (4.9), then the floor.
        assert_eq!(seen, vec![22, 15, 10, 7, 4, 4, 4, 4]);
    }

    #[test]
    fn a_burst_of_timeouts_from_one_round_trip_is_one_decrease() {
        let mut l = limiter(4, 64, 256);
        while l.try_acquire() {}
        // Every slot was sent before the first timeout came back.
        let tickets: Vec<Ticket> = (0..64).map(|_| l.ticket()).collect();
        let changes: Vec<Change> = tickets
            .iter()
            .filter_map(|t| l.record(*t, Outcome::Congested))
            .collect();
        assert_eq!(changes, vec![Change::Decreased(44, Why::Congested)]);
        // An attempt sent after the decrease that times out decreases again.
        let later = l.ticket();
        assert_eq!(
            l.record(later, Outcome::Congested),
            Some(Change::Decreased(30, Why::Congested))
        );
    }

    #[test]
    fn a_sudden_latency_rise_decreases_once_per_round_trip() {
        let mut l = limiter(4, 32, 256);
        assert_eq!(
            saturated_window(&mut l, 10 * MS),
            vec![Change::Increased(33)]
        );
        // Three times the baseline: held for one round trip, down by 0.7 at the end of the
        // second.
        assert!(saturated_window(&mut l, 30 * MS).is_empty());
        assert_eq!(l.limit(), 33);
        assert_eq!(
            saturated_window(&mut l, 30 * MS),
            vec![Change::Decreased(23, Why::LatencyRose)]
        );
        // Still slow: the baseline creeps up, and the limit goes down at most every other
        // window (a decrease starts the count of slow round trips again)...
        let mut windows = 0;
        let mut previous_was_decrease = true;
        loop {
            let changes = saturated_window(&mut l, 30 * MS);
            windows += 1;
            assert!(windows < 40, "the baseline never caught up");
            match changes[..] {
                [Change::Increased(_)] => break,
                [Change::Decreased(..)] => {
                    assert!(!previous_was_decrease, "two decreases in a row");
                    previous_was_decrease = true;
                }
                [] => previous_was_decrease = false,
                _ => panic!("{changes:?}"),
            }
        }
        // ...until the baseline has caught up and the new latency is normal: it grows again.
        assert!(l.limit() >= 4 && l.limit() < 23, "{}", l.limit());
        assert!(matches!(
            saturated_window(&mut l, 30 * MS)[..],
            [Change::Increased(_)]
        ));
    }

    #[test]
    fn one_slow_round_trip_holds_the_limit_without_a_decrease() {
        let mut l = limiter(4, 32, 256);
        saturated_window(&mut l, 10 * MS);
        // A pause: one round trip at five times the baseline.
        assert!(saturated_window(&mut l, 50 * MS).is_empty());
        assert_eq!(l.limit(), 33);
        // Back to normal: growth goes on, and a later single slow round trip is forgiven too.
        assert_eq!(
            saturated_window(&mut l, 10 * MS),
            vec![Change::Increased(34)]
        );
        assert!(saturated_window(&mut l, 50 * MS).is_empty());
        assert_eq!(
            saturated_window(&mut l, 10 * MS),
            vec![Change::Increased(35)]
        );
    }

    #[test]
    fn noisy_round_trips_around_a_steady_latency_never_decrease() {
        // ±40% around 10 ms, a fast one always followed by a slow one: with a baseline that
        // dropped at once to the fast one, the slow one (2.3 times it) would be a rise.
        let mut l = limiter(4, 32, 256);
        for round in 0..40 {
            let latency = [6.0, 14.0, 10.0, 9.0][round % 4];
            let changes = saturated_window(&mut l, Duration::from_secs_f64(latency / 1000.0));
            assert!(
                changes.iter().all(|c| matches!(c, Change::Increased(_))),
                "{changes:?} in round {round}"
            );
        }
        assert!(l.limit() > 32 + 20, "it kept growing: {}", l.limit());
    }

    #[test]
    fn a_slow_latency_drift_is_followed_without_a_decrease() {
        let mut l = limiter(4, 32, 64);
        let mut latency = 10.0;
        for _ in 0..60 {
            // 3% more per round trip: after 60 windows, six times the start.
            latency *= 1.03;
            let changes = saturated_window(&mut l, Duration::from_secs_f64(latency / 1000.0));
            assert!(
                changes.iter().all(|c| matches!(c, Change::Increased(_))),
                "{changes:?} at {latency} ms"
            );
        }
        assert_eq!(l.limit(), 64);
    }

    #[test]
    fn news_from_before_a_decrease_does_not_count_in_the_next_window() {
        let mut l = limiter(4, 16, 256);
        while l.try_acquire() {}
        let old = l.ticket();
        assert!(l.record(old, Outcome::Congested).is_some());
        // A very slow answer to an attempt sent before the decrease: ignored.
        for _ in 0..MIN_WINDOW {
            assert_eq!(l.record(old, Outcome::Taken(Duration::from_secs(9))), None);
        }
        assert_eq!(l.limit(), 11);
    }

    #[test]
    fn bounds_hold_from_the_start_and_after_a_reload() {
        assert_eq!(limiter(4, 32, 16).limit(), 16);
        assert_eq!(limiter(8, 2, 16).limit(), 8);
        let mut l = limiter(4, 32, 256);
        l.set_bounds(Bounds { min: 4, max: 8 });
        assert_eq!(l.limit(), 8);
        assert!(saturated_window(&mut l, MS).is_empty(), "at the new max");
        l.set_bounds(Bounds { min: 12, max: 20 });
        assert_eq!(l.limit(), 12);
        l.set_bounds(Bounds { min: 1, max: 100 });
        assert_eq!(l.limit(), 12);
        for _ in 0..10 {
            let t = l.ticket();
            l.record(t, Outcome::Congested);
        }
        assert_eq!(l.limit(), 1);
    }

    #[test]
    fn slots_are_bounded_by_the_limit() {
        let mut l = limiter(2, 3, 3);
        assert!(l.try_acquire() && l.try_acquire() && l.try_acquire());
        assert!(!l.try_acquire());
        l.release();
        assert_eq!(l.in_flight(), 2);
        assert!(l.try_acquire());
        // A decrease below the count in flight: nothing new until enough came back.
        let t = l.ticket();
        l.record(t, Outcome::Congested);
        assert_eq!(l.limit(), 2);
        l.release();
        assert!(!l.try_acquire());
        l.release();
        assert!(l.try_acquire());
    }
}
