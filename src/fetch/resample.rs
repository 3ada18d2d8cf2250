//! OHLCV aggregation of one-minute bars into longer bars aligned to the trading session.
//!
//! Alignment rule (every interval below a day):
//! - each exchange-local day is cut into segments: before the open (pre-market), the regular
//!   session `[09:30, close)`, and from the close on (post-market); a day that does not trade is
//!   one segment;
//! - bins are `n` minutes long on a grid anchored at 09:30 exchange time; after the close the
//!   grid is anchored at the close (16:00, or 13:00 on a half day);
//! - a bin never spans a segment edge: it is cut there, and its label (timestamp) is the start of
//!   its grid cell, or the segment start when that is later. So `1h` bars of the regular session
//!   open at 09:30, 10:30, ..., 15:30 (a 30-minute bar), post-market ones at 16:00, 17:00, ...,
//!   pre-market ones at ..., 07:30, 08:30.
//!
//! Daily bars (`1d`) aggregate the regular session only and are labelled with the day's open
//! (09:30 exchange time). An aggregated bar is: first open, highest high, lowest low, last close,
//! summed volume (as the decimal sum, see [`VolumeSum`]). Bins are computed on real instants, so bars stay n real minutes long and
//! strictly increasing across daylight-saving changes.

use super::day::{Day, Segment};
use crate::model::Bar;

/// The bar length of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interval {
    /// One minute: the stored bars as they are.
    #[default]
    Minute1,
    Minutes5,
    Minutes15,
    Minutes30,
    Hour1,
    /// One bar per trading day, from the regular session only.
    Day1,
}

impl Interval {
    /// The interval's length in minutes, None for daily bars.
    pub fn minutes(self) -> Option<i64> {
        match self {
            Self::Minute1 => Some(1),
            Self::Minutes5 => Some(5),
            Self::Minutes15 => Some(15),
            Self::Minutes30 => Some(30),
            Self::Hour1 => Some(60),
            Self::Day1 => None,
        }
    }

    /// Every interval, shortest first.
    pub const ALL: [Self; 6] = [
        Self::Minute1,
        Self::Minutes5,
        Self::Minutes15,
        Self::Minutes30,
        Self::Hour1,
        Self::Day1,
    ];

    /// The interval of a command-line name (`1m`, `5m`, `15m`, `30m`, `1h`, `1d`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The name used on the command line (`1m`, `5m`, ..., `1d`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Minute1 => "1m",
            Self::Minutes5 => "5m",
            Self::Minutes15 => "15m",
            Self::Minutes30 => "30m",
            Self::Hour1 => "1h",
            Self::Day1 => "1d",
        }
    }
}

const MILLIS_PER_MINUTE: i64 = 60_000;

/// Which bin a bar falls in: the day, the segment and the grid cell. Bars arrive in time order,
/// so a change of key closes the current bin.
type BinKey = (i64, Segment, i64);

/// Aggregates bars, in time order, into bins of one interval.
#[derive(Debug, Clone)]
pub(crate) struct Resampler {
    /// Bin length in milliseconds; None for daily bars.
    step_ms: Option<i64>,
    /// The bin being built, and its volume so far.
    current: Option<(BinKey, Bar, VolumeSum)>,
}

/// Volume units per share in which volumes of at most six decimals (Polygon's) sum exactly.
const MICROS_PER_SHARE: f64 = 1e6;
/// Below this (2^53 / 10^6), `v * 10^6` of a six-decimal volume is exact to the unit.
const MICRO_EXACT_BELOW: f64 = 9_007_199_254.0;

/// A bin's volume: the sum of its bars' volumes as decimals, so that five bars of `0.1` shares
/// sum to `0.5`, not `0.5000000000000001`. While every volume is a whole number of millionths
/// (whole volumes, Polygon's six decimals), they are summed as integer millionths and the sum
/// is the `f64` nearest the decimal sum; else as plain `f64`.
#[derive(Debug, Clone, Copy)]
struct VolumeSum {
    /// The sum in millionths, while every volume was one.
    micros: Option<i128>,
    /// The plain sum.
    float: f64,
}

impl VolumeSum {
    fn of(volume: f64) -> Self {
        Self {
            micros: Some(0),
            float: 0.0,
        }
        .plus(volume)
    }

    fn plus(self, volume: f64) -> Self {
        let scaled = (volume * MICROS_PER_SHARE).round();
        let exact = volume.abs() < MICRO_EXACT_BELOW && scaled / MICROS_PER_SHARE == volume;
        Self {
            micros: self.micros.filter(|_| exact).map(|m| m + scaled as i128),
            float: self.float + volume,
        }
    }

    fn value(self) -> f64 {
        match self.micros {
            Some(m) => m as f64 / MICROS_PER_SHARE,
            None => self.float,
        }
    }
}

impl Resampler {
    /// A resampler for `interval`, or None for `1m` (bars pass through unchanged).
    pub fn new(interval: Interval) -> Option<Self> {
        match interval {
            Interval::Minute1 => None,
            other => Some(Self {
                step_ms: other.minutes().map(|m| m * MILLIS_PER_MINUTE),
                current: None,
            }),
        }
    }

    /// Adds a bar of `day`/`segment`; returns the previous bin when this bar starts a new one.
    /// Daily bins take regular-session bars only; others are ignored.
    pub fn push(&mut self, day: &Day, segment: Segment, bar: &Bar) -> Option<Bar> {
        let (key, label) = match self.step_ms {
            None if segment != Segment::Regular => return None,
            None => ((day.start_ms, segment, 0), day.open_ms),
            Some(step) => {
                let (anchor, segment_start) = match segment {
                    Segment::Pre | Segment::Closed => (day.open_ms, day.start_ms),
                    Segment::Regular => (day.open_ms, day.open_ms),
                    Segment::Post => {
                        let close = day.close_ms.unwrap_or(day.open_ms);
                        (close, close)
                    }
                };
                let cell = (bar.ts_millis - anchor).div_euclid(step);
                let label = (anchor + cell * step).max(segment_start);
                ((day.start_ms, segment, cell), label)
            }
        };
        match &mut self.current {
            Some((current_key, agg, volume)) if *current_key == key => {
                agg.high = agg.high.max(bar.high);
                agg.low = agg.low.min(bar.low);
                agg.close = bar.close;
                *volume = volume.plus(bar.volume);
                None
            }
            _ => {
                let bin = Bar {
                    ts_millis: label,
                    ..*bar
                };
                let started = (key, bin, VolumeSum::of(bar.volume));
                self.current.replace(started).map(done)
            }
        }
    }

    /// The last bin, if any (call once the input ends).
    pub fn finish(&mut self) -> Option<Bar> {
        self.current.take().map(done)
    }
}

/// A finished bin with its summed volume.
fn done((_, bar, volume): (BinKey, Bar, VolumeSum)) -> Bar {
    Bar {
        volume: volume.value(),
        ..bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::day::DayCache;
    use chrono::Timelike;
    use chrono_tz::America::New_York;

    use crate::fetch::ny;

    fn bar(ts: i64, v: f64, volume: f64) -> Bar {
        Bar {
            ts_millis: ts,
            open: v,
            high: v + 1.0,
            low: v - 1.0,
            close: v + 0.5,
            volume,
        }
    }

    fn run(interval: Interval, bars: &[Bar]) -> Vec<Bar> {
        let mut r = Resampler::new(interval).unwrap();
        let mut days = DayCache::new(New_York);
        let mut out = Vec::new();
        for b in bars {
            let day = days.day_of(b.ts_millis);
            out.extend(r.push(&day, day.segment(b.ts_millis), b));
        }
        out.extend(r.finish());
        out
    }

    fn local_hm(ms: i64) -> (u32, u32) {
        let t = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .with_timezone(&New_York);
        (t.hour(), t.minute())
    }

    #[test]
    fn five_minute_bins_aggregate_ohlcv() {
        let bars: Vec<Bar> = (0..10)
            .map(|i| bar(ny(2024, 1, 2, 9, 30 + i), f64::from(i), 10.0))
            .collect();
        let out = run(Interval::Minutes5, &bars);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            Bar {
                ts_millis: ny(2024, 1, 2, 9, 30),
                open: 0.0,
                high: 5.0,
                low: -1.0,
                close: 4.5,
                volume: 50.0
            }
        );
        assert_eq!(out[1].ts_millis, ny(2024, 1, 2, 9, 35));
        assert_eq!(out[1].open, 5.0);
    }

    #[test]
    fn hour_bins_are_cut_at_the_open_and_the_close() {
        let minutes = [
            (8, 10),
            (8, 45),
            (9, 29),
            (9, 30),
            (10, 29),
            (10, 30),
            (15, 59),
            (16, 0),
            (16, 59),
            (17, 0),
        ];
        let bars: Vec<Bar> = minutes
            .iter()
            .map(|&(h, m)| bar(ny(2024, 1, 2, h, m), 1.0, 1.0))
            .collect();
        let out = run(Interval::Hour1, &bars);
        let labels: Vec<(u32, u32)> = out.iter().map(|b| local_hm(b.ts_millis)).collect();
        assert_eq!(
            labels,
            [
                (7, 30),
                (8, 30),
                (9, 30),
                (10, 30),
                (15, 30),
                (16, 0),
                (17, 0)
            ]
        );
        let volumes: Vec<f64> = out.iter().map(|b| b.volume).collect();
        assert_eq!(volumes, [1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 1.0]);
    }

    #[test]
    fn half_day_post_market_starts_at_13() {
        let bars = [
            bar(ny(2024, 11, 29, 12, 45), 1.0, 1.0),
            bar(ny(2024, 11, 29, 13, 0), 1.0, 1.0),
            bar(ny(2024, 11, 29, 13, 20), 1.0, 1.0),
        ];
        let out = run(Interval::Minutes30, &bars);
        let labels: Vec<(u32, u32)> = out.iter().map(|b| local_hm(b.ts_millis)).collect();
        assert_eq!(labels, [(12, 30), (13, 0)]);
    }

    #[test]
    fn daily_bars_take_the_regular_session_only() {
        let bars = [
            bar(ny(2024, 11, 29, 9, 0), 100.0, 1000.0),
            bar(ny(2024, 11, 29, 9, 30), 1.0, 1.0),
            bar(ny(2024, 11, 29, 12, 59), 2.0, 2.0),
            bar(ny(2024, 11, 29, 13, 0), 100.0, 1000.0),
            bar(ny(2024, 12, 2, 9, 30), 3.0, 3.0),
        ];
        let out = run(Interval::Day1, &bars);
        assert_eq!(
            out,
            [
                Bar {
                    ts_millis: ny(2024, 11, 29, 9, 30),
                    open: 1.0,
                    high: 3.0,
                    low: 0.0,
                    close: 2.5,
                    volume: 3.0
                },
                Bar {
                    ts_millis: ny(2024, 12, 2, 9, 30),
                    open: 3.0,
                    high: 4.0,
                    low: 2.0,
                    close: 3.5,
                    volume: 3.0
                },
            ]
        );
    }

    #[test]
    fn labels_stay_increasing_across_the_fall_back_night() {
        // Sunday 2024-11-03 (no trading): 01:00-01:59 happens twice. Hourly bins on real time.
        let start = ny(2024, 11, 3, 0, 0);
        let bars: Vec<Bar> = (0..(4 * 60))
            .map(|i| bar(start + i * 60_000, 1.0, 1.0))
            .collect();
        let out = run(Interval::Hour1, &bars);
        assert!(out.windows(2).all(|w| w[0].ts_millis < w[1].ts_millis));
        assert_eq!(out.iter().map(|b| b.volume).sum::<f64>(), 240.0);
        // Cut at midnight: 00:00-00:30 is the first (short) bin.
        assert_eq!(out[0].ts_millis, start);
        assert_eq!(out[0].volume, 30.0);
    }

    #[test]
    fn fractional_volumes_sum_as_decimals() {
        // Polygon's six decimals: the sum is the decimal sum, not the f64 one.
        let five = |volumes: [f64; 5]| {
            let bars: Vec<Bar> = (0..5)
                .map(|i| bar(ny(2024, 1, 2, 9, 30 + i), 1.0, volumes[i as usize]))
                .collect();
            run(Interval::Minutes5, &bars)[0].volume
        };
        assert_ne!(0.1 + 0.2, 0.3);
        assert_eq!(five([0.1, 0.2, 0.0, 0.0, 0.0]), 0.3);
        assert_eq!(
            five([1234.567891, 0.000001, 99.5, 1e9, 0.1]),
            1_000_001_334.167892
        );
        // A volume finer than millionths falls back to the plain sum.
        assert_eq!(five([0.1, 0.2, 1e-9, 0.0, 0.0]), 0.1 + 0.2 + 1e-9);
    }
}
