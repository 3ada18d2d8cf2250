//! Price anomalies of one day's bars: suspected unadjusted splits, price jumps beyond a bound,
//! long runs of identical bars.

use crate::cell::DayColumns;

/// Split factors looked for (and their inverses, for reverse splits).
pub const SPLIT_FACTORS: [f64; 5] = [2.0, 3.0, 4.0, 5.0, 10.0];

/// The bounds of the anomaly checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyBounds {
    /// A move from one bar's close to the next bar's open (or from the previous trading day's
    /// last close to the day's first open) larger than this fraction is a jump (default 0.10).
    pub jump: f64,
    /// A jump within this relative distance of a split factor, while the day's other moves stay
    /// small, is a suspected unadjusted split (default 0.03).
    pub split_tolerance: f64,
    /// This many identical consecutive bars (open, high, low, close and volume) or more are a run
    /// (default 30).
    pub identical_run: usize,
}

impl Default for AnomalyBounds {
    fn default() -> Self {
        Self {
            jump: 0.10,
            split_tolerance: 0.03,
            identical_run: 30,
        }
    }
}

/// What is wrong with a day.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyKind {
    /// A price ratio near a split factor (`ratio` as observed, `factor` the nearest of
    /// [`SPLIT_FACTORS`] or an inverse), outside the day's normal moves.
    SuspectedSplit {
        ratio: f64,
        factor: f64,
        overnight: bool,
        at_millis: i64,
    },
    /// A move beyond the jump bound that is not near a split factor.
    PriceJump {
        ratio: f64,
        overnight: bool,
        at_millis: i64,
    },
    /// `bars` identical consecutive bars starting at `at_millis`.
    IdenticalRun { bars: usize, at_millis: i64 },
    /// Bars of a half day between its early close and 16:00.
    AfterEarlyClose { bars: u32 },
}

impl AnomalyKind {
    /// A short stable name: `suspected_split`, `price_jump`, `identical_run`,
    /// `after_early_close`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SuspectedSplit { .. } => "suspected_split",
            Self::PriceJump { .. } => "price_jump",
            Self::IdenticalRun { .. } => "identical_run",
            Self::AfterEarlyClose { .. } => "after_early_close",
        }
    }

    /// The reason in words.
    pub fn reason(&self) -> String {
        let when = |overnight: bool| if overnight { "overnight" } else { "intraday" };
        match self {
            Self::SuspectedSplit {
                ratio,
                factor,
                overnight,
                ..
            } => format!(
                "{} price ratio {ratio:.4} is near {}: unadjusted split?",
                when(*overnight),
                factor_text(*factor)
            ),
            Self::PriceJump {
                ratio, overnight, ..
            } => format!(
                "{} price ratio {ratio:.4} beyond the jump bound",
                when(*overnight)
            ),
            Self::IdenticalRun { bars, .. } => format!("{bars} identical consecutive bars"),
            Self::AfterEarlyClose { bars } => {
                format!("half day with {bars} bars between the early close and 16:00")
            }
        }
    }
}

fn factor_text(f: f64) -> String {
    if f >= 1.0 {
        format!("{f}:1")
    } else {
        format!("1:{}", (1.0 / f).round())
    }
}

/// The split factor (or inverse) `ratio` is within `tolerance` of, if any.
fn near_split(ratio: f64, tolerance: f64) -> Option<f64> {
    SPLIT_FACTORS
        .iter()
        .flat_map(|&f| [f, 1.0 / f])
        .find(|&f| (ratio / f - 1.0).abs() <= tolerance)
}

/// The anomalies of one day's bars; `previous_close` is the last close of the symbol's previous
/// day with bars (for the overnight move).
pub fn price_anomalies(
    day: &DayColumns,
    previous_close: Option<f64>,
    bounds: &AnomalyBounds,
) -> Vec<AnomalyKind> {
    let mut found = Vec::new();
    if day.is_empty() {
        return found;
    }
    let moves: Vec<(f64, bool, i64)> = previous_close
        .map(|c| (day.open[0] / c, true, day.times[0]))
        .into_iter()
        .chain((1..day.len()).map(|i| (day.open[i] / day.close[i - 1], false, day.times[i])))
        .chain((0..day.len()).map(|i| (day.close[i] / day.open[i], false, day.times[i])))
        .filter(|(r, ..)| r.is_finite() && *r > 0.0)
        .collect();
    let normal = typical_move(&moves);
    for &(ratio, overnight, at_millis) in &moves {
        let size = ratio.ln().abs();
        if size <= (1.0 + bounds.jump).ln() {
            continue;
        }
        match near_split(ratio, bounds.split_tolerance) {
            Some(factor) if size > 10.0 * normal => found.push(AnomalyKind::SuspectedSplit {
                ratio,
                factor,
                overnight,
                at_millis,
            }),
            _ => found.push(AnomalyKind::PriceJump {
                ratio,
                overnight,
                at_millis,
            }),
        }
    }
    found.extend(identical_runs(day, bounds.identical_run));
    found
}

/// The median absolute log move of the day: its normal range.
fn typical_move(moves: &[(f64, bool, i64)]) -> f64 {
    let mut sizes: Vec<f64> = moves.iter().map(|(r, ..)| r.ln().abs()).collect();
    if sizes.is_empty() {
        return 0.0;
    }
    let mid = sizes.len() / 2;
    let (_, median, _) = sizes.select_nth_unstable_by(mid, f64::total_cmp);
    *median
}

/// Runs of at least `min` identical consecutive bars.
fn identical_runs(day: &DayColumns, min: usize) -> Vec<AnomalyKind> {
    let same = |a: usize, b: usize| {
        day.open[a] == day.open[b]
            && day.high[a] == day.high[b]
            && day.low[a] == day.low[b]
            && day.close[a] == day.close[b]
            && day.volume[a] == day.volume[b]
    };
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=day.len() {
        if i == day.len() || !same(start, i) {
            if i - start >= min.max(2) {
                runs.push(AnomalyKind::IdenticalRun {
                    bars: i - start,
                    at_millis: day.times[start],
                });
            }
            start = i;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_of(closes: &[f64]) -> DayColumns {
        let mut d = DayColumns::default();
        let mut prev = closes[0];
        for (i, &c) in closes.iter().enumerate() {
            d.push(
                i as i64 * 60_000,
                prev,
                prev.max(c),
                prev.min(c),
                c,
                100.0 + i as f64,
            );
            prev = c;
        }
        d
    }

    #[test]
    fn an_overnight_halving_is_a_split_and_a_small_move_is_nothing() {
        let day = day_of(&[50.0, 50.1, 50.05, 50.2]);
        let found = price_anomalies(&day, Some(100.1), &AnomalyBounds::default());
        assert_eq!(found.len(), 1);
        assert!(
            matches!(found[0], AnomalyKind::SuspectedSplit { factor, overnight: true, .. } if factor == 0.5)
        );
        assert!(price_anomalies(&day, Some(50.0), &AnomalyBounds::default()).is_empty());
    }

    #[test]
    fn a_jump_not_near_a_factor_is_a_jump() {
        let day = day_of(&[10.0, 10.0, 11.5, 11.5]);
        let found = price_anomalies(&day, None, &AnomalyBounds::default());
        assert!(matches!(
            found[..],
            [AnomalyKind::PriceJump {
                overnight: false,
                ..
            }]
        ));
    }

    #[test]
    fn identical_runs_are_found() {
        let mut d = DayColumns::default();
        for i in 0..40 {
            d.push(i * 60_000, 5.0, 5.0, 5.0, 5.0, 0.0);
        }
        let found = price_anomalies(&d, None, &AnomalyBounds::default());
        assert_eq!(
            found,
            vec![AnomalyKind::IdenticalRun {
                bars: 40,
                at_millis: 0
            }]
        );
    }
}
