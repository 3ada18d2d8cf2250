//! The gate's numbers: the per-minute histograms, and how well a candidate shift fits them to
//! the NYSE session (edge contrast at the open and the close, share inside extended hours).

pub(crate) const MINUTES_PER_DAY: usize = 1440;
const MINUTES_PER_HOUR: i64 = 60;

/// Extended hours, [04:00, 20:00) exchange time, in minutes of the day.
pub(super) const EXTENDED_OPEN: i64 = 4 * 60;
pub(super) const EXTENDED_CLOSE: i64 = 20 * 60;
/// The regular session, [09:30, 16:00).
pub(super) const REGULAR_OPEN: i64 = 9 * 60 + 30;
pub(super) const REGULAR_CLOSE: i64 = 16 * 60;
/// Minutes either side of the open and the close compared for the edge contrast: long enough to
/// average out single prints, short enough that a whole-hour shift moves the edge out of it.
const EDGE_WINDOW: i64 = 30;

/// Bars and volume by exchange-local minute of day, per clock (0 standard, 1 daylight-saving).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histograms {
    count: [[u64; MINUTES_PER_DAY]; 2],
    /// Volumes as stored (fractional ones included).
    volume: [[f64; MINUTES_PER_DAY]; 2],
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            count: [[0; MINUTES_PER_DAY]; 2],
            volume: [[0.0; MINUTES_PER_DAY]; 2],
        }
    }
}

impl Histograms {
    /// One bar at `minute` (< 1440) on `clock` (0 or 1). A negative or NaN volume (validation
    /// lets none through) counts as 0.
    #[inline]
    pub(crate) fn add(&mut self, clock: usize, minute: usize, volume: f64) {
        self.count[clock][minute] += 1;
        self.volume[clock][minute] += volume.max(0.0);
    }

    pub(crate) fn total_bars(&self) -> u64 {
        self.count.iter().flatten().sum()
    }
}

/// Hours the observed times are late, per clock: `[standard, daylight-saving]`. Observed minute =
/// true minute + 60 × hours (modulo the day).
pub(super) type Shift = [i32; 2];

/// What a histogram is weighed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Weight {
    Count,
    Volume,
}

/// Circular prefix sums of one histogram: any window's sum in O(1). In `f64`, as volumes may
/// be fractional (bar counts stay exact: far below 2^53); a window's sum is at least 0.
#[derive(Debug)]
struct Prefix(Vec<f64>);

impl Prefix {
    fn new(values: impl IntoIterator<Item = f64>) -> Self {
        let mut sums = Vec::with_capacity(MINUTES_PER_DAY + 1);
        let mut acc = 0.0;
        sums.push(acc);
        for v in values {
            acc += v;
            sums.push(acc);
        }
        Self(sums)
    }

    /// Sum over minutes [from, from + len), wrapping around midnight; `len` ≤ 1440.
    fn window(&self, from: i64, len: i64) -> f64 {
        let day = MINUTES_PER_DAY as i64;
        let start = from.rem_euclid(day) as usize;
        let len = len.clamp(0, day) as usize;
        let p = &self.0;
        let sum = if start + len <= MINUTES_PER_DAY {
            p[start + len] - p[start]
        } else {
            (p[MINUTES_PER_DAY] - p[start]) + p[start + len - MINUTES_PER_DAY]
        };
        // Rounding in a long sum must not make a window negative.
        sum.max(0.0)
    }
}

/// How well one shift explains the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fit {
    /// Contrast of the session's edges once the shift is undone, −1..1: the lesser of the
    /// open's and the close's, by volume or by bar count, whichever is clearer.
    pub(super) edges: f64,
    /// Share of bars inside extended hours once the shift is undone.
    pub(super) inside: f64,
}

impl Fit {
    pub(super) fn score(&self) -> f64 {
        self.edges + self.inside
    }
}

/// The histograms, summed for scoring.
#[derive(Debug)]
pub(super) struct Profile {
    count: [Prefix; 2],
    volume: [Prefix; 2],
}

impl Profile {
    pub(super) fn new(h: &Histograms) -> Self {
        let counts = |clock: usize| Prefix::new(h.count[clock].iter().map(|&n| n as f64));
        let volumes = |clock: usize| Prefix::new(h.volume[clock].iter().copied());
        Self {
            count: [counts(0), counts(1)],
            volume: [volumes(0), volumes(1)],
        }
    }

    fn prefix(&self, weight: Weight, clock: usize) -> &Prefix {
        match weight {
            Weight::Count => &self.count[clock],
            Weight::Volume => &self.volume[clock],
        }
    }

    /// Bars (or volume) on `clock`.
    pub(super) fn total(&self, weight: Weight, clock: usize) -> f64 {
        self.prefix(weight, clock).window(0, MINUTES_PER_DAY as i64)
    }

    /// Weight at one minute of the day as observed (no shift undone), over both clocks.
    pub(super) fn at(&self, weight: Weight, minute: i64) -> f64 {
        self.window(weight, [0, 0], minute, minute + 1)
    }

    /// Mean weight per minute over minutes [from, to) as observed, over both clocks.
    pub(super) fn mean(&self, weight: Weight, from: i64, to: i64) -> f64 {
        self.window(weight, [0, 0], from, to) / (to - from).max(1) as f64
    }

    /// Weight in true minutes [from, to) once `shift` is undone, over both clocks.
    fn window(&self, weight: Weight, shift: Shift, from: i64, to: i64) -> f64 {
        (0..2)
            .map(|clock| {
                let late = i64::from(shift[clock]) * MINUTES_PER_HOUR;
                self.prefix(weight, clock).window(from + late, to - from)
            })
            .sum()
    }

    pub(super) fn fit(&self, shift: Shift) -> Fit {
        let bars = self.total(Weight::Count, 0) + self.total(Weight::Count, 1);
        let inside = self.window(Weight::Count, shift, EXTENDED_OPEN, EXTENDED_CLOSE);
        Fit {
            edges: self
                .edges(Weight::Count, shift)
                .max(self.edges(Weight::Volume, shift)),
            inside: ratio(inside, bars),
        }
    }

    /// The lesser of the open's contrast (the half hour from 09:30 against the half hour
    /// before) and the close's (the half hour before 16:00 against the half hour after it):
    /// a session has both edges. The 16:00 bar itself is left out, as some vendors stamp the
    /// closing auction there.
    fn edges(&self, weight: Weight, shift: Shift) -> f64 {
        let w = |from: i64| self.window(weight, shift, from, from + EDGE_WINDOW);
        let open = contrast(w(REGULAR_OPEN), w(REGULAR_OPEN - EDGE_WINDOW));
        let close = contrast(w(REGULAR_CLOSE - EDGE_WINDOW), w(REGULAR_CLOSE + 1));
        open.min(close)
    }

    /// Where the session seems to open and close on `clock`, as observed (no shift undone):
    /// the minute after the steepest rise and the minute before the steepest fall, by volume
    /// (by bar count when the file has no volume). None when the clock has no bars.
    pub(super) fn edges_seen(&self, clock: usize) -> Option<(i64, i64)> {
        if self.total(Weight::Count, clock) == 0.0 {
            return None;
        }
        let weight = if self.total(Weight::Volume, clock) > 0.0 {
            Weight::Volume
        } else {
            Weight::Count
        };
        let p = self.prefix(weight, clock);
        // Rise at m: the half hour from m minus the half hour before it.
        let rise = |m: i64| p.window(m, EDGE_WINDOW) - p.window(m - EDGE_WINDOW, EDGE_WINDOW);
        // The steepest rise (fall), the earliest minute on a tie.
        let steepest = |sign: f64| {
            (0..MINUTES_PER_DAY as i64)
                .map(|m| (m, sign * rise(m)))
                .fold(None, |best: Option<(i64, f64)>, (m, r)| match best {
                    Some((_, b)) if b >= r => best,
                    _ => Some((m, r)),
                })
                .map(|(m, _)| m)
        };
        let open = steepest(1.0)?;
        let close = steepest(-1.0)?;
        Some((open, (close - 1).rem_euclid(MINUTES_PER_DAY as i64)))
    }
}

/// (a − b) / (a + b), 0 when both are 0.
pub(super) fn contrast(a: f64, b: f64) -> f64 {
    let total = a + b;
    if total <= 0.0 { 0.0 } else { (a - b) / total }
}

/// a / b, 0 when b is 0.
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b <= 0.0 { 0.0 } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_windows_wrap_midnight() {
        let mut values = [0.0; MINUTES_PER_DAY];
        values[0] = 1.0;
        values[1439] = 2.0;
        values[600] = 4.0;
        let p = Prefix::new(values);
        assert_eq!(p.window(1439, 2), 3.0);
        assert_eq!(p.window(-1, 2), 3.0);
        assert_eq!(p.window(600, 1), 4.0);
        assert_eq!(p.window(0, 1440), 7.0);
        assert_eq!(p.window(601, 1440 - 1), 3.0);
    }

    #[test]
    fn edges_seen_and_fit_follow_a_shifted_session() {
        let mut h = Histograms::default();
        // A regular session on standard time, 3 hours late: 12:30 to 18:59.
        for m in (REGULAR_OPEN + 180)..(REGULAR_CLOSE + 180) {
            h.add(0, m as usize, 100.0);
        }
        let p = Profile::new(&h);
        assert_eq!(p.edges_seen(0), Some((12 * 60 + 30, 18 * 60 + 59)));
        assert_eq!(p.edges_seen(1), None);
        let right = p.fit([3, 0]);
        assert_eq!(right.edges, 1.0);
        assert_eq!(right.inside, 1.0);
        assert!(p.fit([0, 0]).edges < 0.1);
        assert!(p.fit([2, 0]).score() < right.score() - 0.5);
    }
}
