//! Layout: which vendor layout a delivery is in, what that implies (bar interval, symbols per
//! record, shortest record), and the [`Source`] that reads it; [`detect`] names the layout of
//! a file from its name and first bytes where that is unambiguous.

mod detect;

use std::io::{self, BufRead};

pub use self::detect::{DetectError, detect};
use super::columns::HeaderSource;
use super::csv::{self, CsvSpec};
use super::databento::{self, Databento};
use super::firstrate::{self, FirstRate, FirstRateDaily};
use super::kibot::{self, Kibot};
use super::polygon::{self, Polygon};
use super::{Interval, Parsed, Source};

/// A vendor layout, with what a config rule or detection settles about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// FirstRate `.txt` files of one symbol; the interval from the file name.
    FirstRate { interval: Interval },
    /// Polygon / Massive flat files `minute_aggs_v1`, every ticker of a day.
    Polygon,
    /// Databento OHLCV-1m CSV with a symbol column.
    Databento,
    /// Kibot one-minute files of one symbol.
    Kibot,
    /// Generic CSV with a header.
    Csv(CsvSpec),
}

impl Layout {
    /// Every layout's [`name`](Self::name).
    pub const NAMES: [&'static str; 5] = ["firstrate", "polygon", "databento", "kibot", "csv"];

    /// The name logs and config use: `firstrate`, `polygon`, `databento`, `kibot`, `csv`.
    pub const fn name(&self) -> &'static str {
        match self {
            Layout::FirstRate { .. } => "firstrate",
            Layout::Polygon => "polygon",
            Layout::Databento => "databento",
            Layout::Kibot => "kibot",
            Layout::Csv(_) => "csv",
        }
    }

    /// The layout a config rule names, with its defaults (FirstRate one-minute, CSV with
    /// [`CsvSpec::default`]); None for an unknown name.
    pub fn from_name(name: &str) -> Option<Layout> {
        Some(match name {
            "firstrate" => Layout::FirstRate {
                interval: Interval::OneMinute,
            },
            "polygon" => Layout::Polygon,
            "databento" => Layout::Databento,
            "kibot" => Layout::Kibot,
            "csv" => Layout::Csv(CsvSpec::default()),
            _ => return None,
        })
    }

    /// How long each bar lasts.
    pub fn interval(&self) -> Interval {
        match self {
            Layout::FirstRate { interval } => *interval,
            _ => Interval::OneMinute,
        }
    }

    /// Whether each record names its own symbol (so a file may hold many symbols); false: every
    /// record is the delivery's symbol (from its file name).
    pub fn multi_symbol(&self) -> bool {
        match self {
            Layout::FirstRate { .. } | Layout::Kibot => false,
            Layout::Polygon | Layout::Databento => true,
            Layout::Csv(spec) => spec.symbol_column,
        }
    }

    /// The shortest possible good record in bytes, its `\n` included (the loader bounds how
    /// many good rows the rest of a file can hold with it). A lower bound: header layouts count
    /// only the columns they need, each one byte long.
    pub fn min_record_bytes(&self) -> u64 {
        match self {
            Layout::FirstRate {
                interval: Interval::OneDay,
            } => firstrate::MIN_DAILY_RECORD_BYTES,
            Layout::FirstRate { .. } => firstrate::MIN_RECORD_BYTES,
            Layout::Polygon => polygon::MIN_RECORD_BYTES,
            Layout::Databento => databento::MIN_RECORD_BYTES,
            Layout::Kibot => kibot::MIN_RECORD_BYTES,
            Layout::Csv(_) => csv::MIN_RECORD_BYTES,
        }
    }

    /// The source reading `reader` in this layout.
    pub fn open<R: BufRead + Send + 'static>(self, reader: R) -> Box<dyn Source + Send> {
        match self {
            Layout::FirstRate {
                interval: Interval::OneDay,
            } => Box::new(FirstRateDaily::daily(reader)),
            Layout::FirstRate { .. } => Box::new(FirstRate::new(reader)),
            Layout::Polygon => Box::new(HeaderSource::new(reader, Polygon)),
            Layout::Databento => Box::new(HeaderSource::new(reader, Databento)),
            Layout::Kibot => Box::new(Kibot::new(reader)),
            Layout::Csv(spec) => Box::new(HeaderSource::new(reader, spec)),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A boxed source is a source (so `BarReader<Box<dyn Source + Send>>` reads any layout).
impl<S: Source + ?Sized> Source for Box<S> {
    #[inline]
    fn next_record(&mut self) -> io::Result<Option<Parsed<'_>>> {
        (**self).next_record()
    }

    fn bytes_read(&self) -> u64 {
        (**self).bytes_read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reject::RejectReason;
    use crate::pipeline::validate::{BarReader, Row};
    use crate::source::times::NaiveTimes;

    const NY: chrono_tz::Tz = chrono_tz::America::New_York;

    /// Every layout, once (CSV with its symbol column, to cover both answers).
    fn all() -> [Layout; 6] {
        [
            Layout::FirstRate {
                interval: Interval::OneMinute,
            },
            Layout::FirstRate {
                interval: Interval::OneDay,
            },
            Layout::Polygon,
            Layout::Databento,
            Layout::Kibot,
            Layout::Csv(CsvSpec {
                symbol_column: true,
                ..CsvSpec::default()
            }),
        ]
    }

    #[test]
    fn names_round_trip_and_properties() {
        for layout in all() {
            let named = Layout::from_name(layout.name()).unwrap();
            assert_eq!(named.name(), layout.name());
            assert!(Layout::NAMES.contains(&layout.name()));
        }
        assert_eq!(Layout::from_name("FirstRate"), None);
        assert_eq!(Layout::from_name("parquet"), None);
        let multi: Vec<bool> = all().iter().map(Layout::multi_symbol).collect();
        assert_eq!(multi, [false, false, true, true, false, true]);
        assert!(!Layout::from_name("csv").unwrap().multi_symbol());
        let intervals: Vec<Interval> = all().iter().map(Layout::interval).collect();
        assert_eq!(intervals[1], Interval::OneDay);
        assert!(
            intervals
                .iter()
                .filter(|&&i| i == Interval::OneMinute)
                .count()
                == 5
        );
        let bytes: Vec<u64> = all().iter().map(Layout::min_record_bytes).collect();
        assert_eq!(bytes, [25, 19, 12, 12, 25, 10]);
    }

    /// The shortest good record of each layout is accepted by validation and is exactly
    /// `min_record_bytes` long; one byte less (a field emptied) is not a good record.
    #[test]
    fn min_record_bytes_is_the_shortest_good_record() {
        let csv = Layout::Csv(CsvSpec::default());
        let cases = [
            (all()[0], "", "2021-03-01 09:30,1,1,1,1\n"),
            (all()[1], "", "2021-03-01,1,1,1,1\n"),
            (
                Layout::Polygon,
                "ticker,open,close,high,low,window_start\n",
                "A,1,1,1,1,0\n",
            ),
            (
                Layout::Databento,
                "ts_event,open,high,low,close,symbol\n",
                "0,1,1,1,1,A\n",
            ),
            (Layout::Kibot, "", "01/02/2024,09:30,1,1,1,1\n"),
            (csv, "timestamp,open,high,low,close\n", "0,1,1,1,1\n"),
        ];
        for (layout, header, line) in cases {
            assert_eq!(line.len() as u64, layout.min_record_bytes(), "{layout}");
            let rows: Vec<Row> = read(layout, &format!("{header}{line}"));
            assert!(matches!(rows[..], [Row::Bar(_)]), "{layout}: {rows:?}");
        }
    }

    fn read(layout: Layout, input: &str) -> Vec<Row> {
        let source = layout.open(io::Cursor::new(input.as_bytes().to_vec()));
        BarReader::from_source(source, NY)
            .collect::<io::Result<Vec<Row>>>()
            .expect("reading memory cannot fail")
    }

    #[test]
    fn each_layout_opens_its_source_and_validation_places_the_bars() {
        // 2023-07-10 09:30 New York = 13:30 UTC.
        let at = 1_688_995_800_000;
        let utc_csv = Layout::Csv(CsvSpec {
            naive: NaiveTimes::Utc,
            ..CsvSpec::default()
        });
        let cases = [
            (all()[0], "2023-07-10 09:30:00,1,2,0.5,1.5,7\n".to_string()),
            (
                Layout::Polygon,
                format!("{}\nAAPL,7,1,1.5,2,0.5,{}000000,1\n", polygon::HEADER, at),
            ),
            (
                Layout::Databento,
                format!(
                    "{}\n{at}000000,33,2,1,1000000000,2000000000,500000000,1500000000,7,AAPL\n",
                    databento::HEADER
                ),
            ),
            (Layout::Kibot, "07/10/2023,09:30,1,2,0.5,1.5,7\n".into()),
            (
                utc_csv,
                "Date,Time,Open,High,Low,Close,Volume\n2023-07-10,13:30,1,2,0.5,1.5,7\n".into(),
            ),
        ];
        for (layout, input) in cases {
            let rows = read(layout, &input);
            let [Row::Bar(bar)] = &rows[..] else {
                panic!("{layout}: {rows:?}")
            };
            assert_eq!(bar.bar.ts_millis, at, "{layout}");
            assert_eq!(
                (
                    bar.bar.open,
                    bar.bar.high,
                    bar.bar.low,
                    bar.bar.close,
                    bar.bar.volume
                ),
                (1.0, 2.0, 0.5, 1.5, 7.0),
                "{layout}"
            );
            assert_eq!(
                bar.symbol.as_ref().map(|s| s.as_str()),
                layout.multi_symbol().then_some("AAPL"),
                "{layout}"
            );
        }
        // A layout given the wrong file: the header is refused, every line after it too.
        let rows = read(
            Layout::Polygon,
            "timestamp,open,high,low,close,volume\n1,1,1,1,1,1\n",
        );
        let reasons: Vec<_> = rows
            .iter()
            .map(|r| match r {
                Row::Rejected(r) => Some(r.reason),
                Row::Bar(_) => None,
            })
            .collect();
        assert_eq!(
            reasons,
            [Some(RejectReason::BadHeader), Some(RejectReason::BadHeader)]
        );
    }
}
