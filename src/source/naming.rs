//! Naming: what a vendor's file name states about the bars inside (how long each lasts, which
//! price adjustment they carry), read from the name's parts after the symbol.
//!
//! A name is cut at `_` and `.`; its first part is the symbol (FirstRate's
//! `AAPL_full_1min_adjsplit.txt`) or, in a multi-symbol file's name, a date or a dataset, and is
//! never read as an interval or an adjustment (so a ticker such as `D` or `DAY` is never taken for
//! "daily"). Parts compare without case.

use std::fmt;

/// How long a bar of a file lasts (from the vendor's file name, or the layout's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    OneMinute,
    FiveMinutes,
    FifteenMinutes,
    ThirtyMinutes,
    OneHour,
    /// A daily bar: its time is the date at 00:00 exchange-local.
    OneDay,
}

/// The name parts that state each interval (lower case). Digit forms are unambiguous; the words
/// `hourly`, `daily` and `eod` also name an interval, except in an update file's name (see
/// [`UPDATE_PARTS`]). Databento's schema names (`ohlcv-1h`) count too.
const INTERVAL_PARTS: [(Interval, &[&str]); 6] = [
    (
        Interval::OneMinute,
        &["1min", "1m", "1mins", "1minute", "ohlcv-1m"],
    ),
    (
        Interval::FiveMinutes,
        &["5min", "5m", "5mins", "5minute", "5minutes"],
    ),
    (
        Interval::FifteenMinutes,
        &["15min", "15m", "15mins", "15minute", "15minutes"],
    ),
    (
        Interval::ThirtyMinutes,
        &["30min", "30m", "30mins", "30minute", "30minutes"],
    ),
    (
        Interval::OneHour,
        &[
            "1hour",
            "1h",
            "1hr",
            "60min",
            "60m",
            "60mins",
            "60minute",
            "60minutes",
            "hourly",
            "ohlcv-1h",
        ],
    ),
    (
        Interval::OneDay,
        &["1day", "1d", "daily", "eod", "ohlcv-1d", "ohlcv-eod"],
    ),
];

/// Interval words that a vendor's "daily update" file (one-minute bars of the last day) also
/// uses: they count only in a name with no [`UPDATE_PARTS`] part.
const WORD_PARTS: [&str; 3] = ["hourly", "daily", "eod"];

/// Parts that mark an update file (`SPY_daily_update.txt` holds one-minute bars).
const UPDATE_PARTS: [&str; 3] = ["update", "updates", "delta"];

/// Polygon / Massive flat-file datasets, anywhere in a name: `day_aggs_v1` holds daily bars,
/// `minute_aggs_v1` one-minute bars.
const POLYGON_DATASETS: [(&str, Interval); 2] = [
    ("day_aggs", Interval::OneDay),
    ("minute_aggs", Interval::OneMinute),
];

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 6] = [
        Self::OneMinute,
        Self::FiveMinutes,
        Self::FifteenMinutes,
        Self::ThirtyMinutes,
        Self::OneHour,
        Self::OneDay,
    ];

    /// The name vendor file names and config use (`1min`, `5min`, `15min`, `30min`, `1hour`,
    /// `1day`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::OneMinute => "1min",
            Self::FiveMinutes => "5min",
            Self::FifteenMinutes => "15min",
            Self::ThirtyMinutes => "30min",
            Self::OneHour => "1hour",
            Self::OneDay => "1day",
        }
    }

    /// Its length in minutes (a day: 1440).
    pub const fn minutes(self) -> i64 {
        match self {
            Self::OneMinute => 1,
            Self::FiveMinutes => 5,
            Self::FifteenMinutes => 15,
            Self::ThirtyMinutes => 30,
            Self::OneHour => 60,
            Self::OneDay => 1440,
        }
    }

    /// The interval a file name states (see [`Interval::stated_by`]), without the part.
    pub fn from_file_name(name: &str) -> Option<Interval> {
        Self::stated_by(name).map(|(interval, _)| interval)
    }

    /// The interval a file name states and the part of the name that states it: a part such as
    /// `_5min_`, `_1h`, `_daily` (also right before the extension, `AAPL_1day.txt`), or a
    /// Polygon dataset (`day_aggs`); None when it states none (such files are judged by their
    /// content) or, naming several, is unclear.
    pub fn stated_by(name: &str) -> Option<(Interval, String)> {
        let base = base_name(name).to_ascii_lowercase();
        if let Some((dataset, interval)) = POLYGON_DATASETS
            .into_iter()
            .find(|(dataset, _)| base.contains(dataset))
        {
            return Some((interval, dataset.to_owned()));
        }
        let parts: Vec<&str> = parts_after_symbol(&base).collect();
        let update = parts.iter().any(|p| UPDATE_PARTS.contains(p));
        let mut found = parts.iter().filter_map(|&part| {
            if update && WORD_PARTS.contains(&part) {
                return None;
            }
            INTERVAL_PARTS
                .iter()
                .find(|(_, spellings)| spellings.contains(&part))
                .map(|&(interval, _)| (interval, part.to_owned()))
        });
        let first = found.next()?;
        match found.find(|(other, _)| *other != first.0) {
            None => Some(first),
            Some(_) => None,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The price adjustment of a file's bars (FirstRate ships each ticker in three variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Adjustment {
    /// Split-adjusted (`_adjsplit`): the store's default.
    #[default]
    Split,
    /// Split- and dividend-adjusted (`_adjsplitdiv`).
    SplitDividend,
    /// As traded (`_UNADJUSTED`).
    Unadjusted,
}

impl Adjustment {
    /// Every variant.
    pub const ALL: [Adjustment; 3] = [Self::Split, Self::SplitDividend, Self::Unadjusted];

    /// The value `input.adjustment` takes: `split`, `split_dividend`, `unadjusted`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Split => "split",
            Self::SplitDividend => "split_dividend",
            Self::Unadjusted => "unadjusted",
        }
    }

    /// The name part FirstRate writes for it: `adjsplit`, `adjsplitdiv`, `UNADJUSTED`.
    pub const fn vendor_part(self) -> &'static str {
        match self {
            Self::Split => "adjsplit",
            Self::SplitDividend => "adjsplitdiv",
            Self::Unadjusted => "UNADJUSTED",
        }
    }

    /// The variant in words (`split-adjusted`).
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Split => "split-adjusted",
            Self::SplitDividend => "split- and dividend-adjusted",
            Self::Unadjusted => "unadjusted",
        }
    }

    /// The variant `input.adjustment` names, None for an unknown value.
    pub fn from_name(name: &str) -> Option<Adjustment> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The variant a file name states by a part `adjsplit`, `adjsplitdiv` or `unadjusted` (any
    /// case); None when it states none or several.
    pub fn stated_by(name: &str) -> Option<Adjustment> {
        let base = base_name(name).to_ascii_lowercase();
        let mut found = parts_after_symbol(&base).filter_map(|part| {
            Self::ALL
                .into_iter()
                .find(|a| a.vendor_part().eq_ignore_ascii_case(part))
        });
        let first = found.next()?;
        match found.find(|other| *other != first) {
            None => Some(first),
            Some(_) => None,
        }
    }
}

impl fmt::Display for Adjustment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name without a leading folder path.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// The parts of a base name after its first (the symbol, or a multi-symbol file's date).
fn parts_after_symbol(base: &str) -> impl Iterator<Item = &str> {
    base.split(['_', '.']).skip(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_from_file_names() {
        use Interval::*;
        let cases = [
            ("AAPL_full_1min_adjsplit.txt", Some(OneMinute)),
            ("AAPL_full_5min_adjsplit.txt", Some(FiveMinutes)),
            ("AAPL_full_30min_UNADJUSTED.txt", Some(ThirtyMinutes)),
            ("in/AAPL_full_1hour_adjsplit.txt", Some(OneHour)),
            ("AAPL_full_1day_adjsplit.txt", Some(OneDay)),
            ("AAPL_1day.txt", Some(OneDay)),
            ("AAPL.txt", None),
            ("1day_AAPL.txt", None),
            ("AAPL_1day_1min.txt", None),
            ("AAPL_11min_x.txt", None),
            // Other vendors' spellings.
            ("AAPL_5m.csv", Some(FiveMinutes)),
            ("AAPL_15min.csv", Some(FifteenMinutes)),
            ("AAPL_15MIN.csv", Some(FifteenMinutes)),
            ("SPY_1h.csv", Some(OneHour)),
            ("SPY_60min.csv", Some(OneHour)),
            ("SPY_hourly.csv", Some(OneHour)),
            ("SPY_daily.csv", Some(OneDay)),
            ("SPY_1D.csv", Some(OneDay)),
            ("SPY_eod.csv", Some(OneDay)),
            ("SPY_1m.csv", Some(OneMinute)),
            ("xnas-itch-20230710.ohlcv-1d.csv", Some(OneDay)),
            ("xnas-itch-20230710.ohlcv-1m.csv", Some(OneMinute)),
            ("us_stocks_sip_day_aggs_v1_2024-01-02.csv.gz", Some(OneDay)),
            ("minute_aggs_v1_2024-01-02.csv", Some(OneMinute)),
            // The same interval twice is still one.
            ("SPY_1h_60min.csv", Some(OneHour)),
            // A symbol is never read as an interval, wherever the vendor puts the symbol first.
            ("D_full_1min_adjsplit.txt", Some(OneMinute)),
            ("DAY_full_1min_adjsplit.txt", Some(OneMinute)),
            ("H.txt", None),
            ("DAILY.txt", None),
            ("1H_data.csv", None),
            // A daily update file holds one-minute bars: its words say nothing.
            ("SPY_daily_update.txt", None),
            ("SPY_1day_update.txt", Some(OneDay)),
            ("2024-01-02.csv", None),
            ("day.csv", None),
        ];
        for (name, want) in cases {
            assert_eq!(Interval::from_file_name(name), want, "{name}");
        }
        assert_eq!(
            Interval::stated_by("SPY_hourly.csv"),
            Some((Interval::OneHour, "hourly".into()))
        );
    }

    #[test]
    fn adjustments_from_file_names_and_config_names() {
        use Adjustment::*;
        let cases = [
            ("AAPL_full_1min_adjsplit.txt", Some(Split)),
            ("AAPL_full_1min_adjsplitdiv.txt", Some(SplitDividend)),
            ("AAPL_full_1min_UNADJUSTED.txt", Some(Unadjusted)),
            ("AAPL_full_1min_unadjusted.txt.gz", Some(Unadjusted)),
            ("AAPL_full_1min.txt", None),
            ("AAPL.txt", None),
            ("ADJSPLIT_full_1min.txt", None),
            ("AAPL_adjsplit_UNADJUSTED.txt", None),
        ];
        for (name, want) in cases {
            assert_eq!(Adjustment::stated_by(name), want, "{name}");
        }
        for a in Adjustment::ALL {
            assert_eq!(Adjustment::from_name(a.name()), Some(a));
        }
        assert_eq!(Adjustment::from_name("adjsplit"), None);
        assert_eq!(Adjustment::default(), Split);
    }
}
