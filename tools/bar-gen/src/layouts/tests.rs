//! Tests of the layout writers: exact sample lines, and every layout read back by the product's
//! own detection, sources and validation into the same bars as the FirstRate files.

use std::fs::File;
use std::io::{BufReader, Read};

use chrono::NaiveDate;

use super::*;
use crate::{ticks_to_price, write_symbol};
use bar_ingest::pipeline::validate::{BarReader, Row};
use bar_ingest::source::layout::detect;
use bar_ingest::source::symbol_from_file_name;

/// A bar as read back: (symbol, UTC millis, open, high, low, close, volume).
type Read7 = (String, i64, f64, f64, f64, f64, f64);

fn spec() -> GenSpec {
    GenSpec {
        // Not in ticker order, and one in lower case, as a user may list them.
        symbols: vec!["MSFT".into(), "AAPL".into(), "brk.b".into()],
        // The 2024 spring-forward (Sunday 03-10) and a month end inside.
        start: NaiveDate::from_ymd_opt(2024, 2, 28).unwrap(),
        end: NaiveDate::from_ymd_opt(2024, 3, 12).unwrap(),
        seed: 11,
    }
}

/// The bars the spec means, as instants.
fn meant(spec: &GenSpec) -> Vec<Read7> {
    let mut all = Vec::new();
    for symbol in &spec.symbols {
        let symbol = symbol.to_ascii_uppercase();
        for b in SymbolBars::new(spec, &symbol) {
            all.push((
                symbol.clone(),
                utc_millis(&b),
                ticks_to_price(b.open),
                ticks_to_price(b.high),
                ticks_to_price(b.low),
                ticks_to_price(b.close),
                b.volume as f64,
            ));
        }
    }
    all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    all
}

/// Every file of `written` detected, opened and validated by the product: the bars (sorted by
/// symbol and time) and the layout names detected. Any rejected row fails the test.
fn read_back(written: &[(PathBuf, u64)]) -> (Vec<Read7>, Vec<&'static str>) {
    let (mut all, mut names) = (Vec::new(), Vec::new());
    for (path, rows) in written {
        let name = path.file_name().unwrap().to_str().unwrap();
        let mut head = Vec::new();
        File::open(path)
            .unwrap()
            .take(4096)
            .read_to_end(&mut head)
            .unwrap();
        let layout = detect(name, &head).unwrap_or_else(|e| panic!("{e}"));
        names.push(layout.name());
        let source = layout.open(BufReader::new(File::open(path).unwrap()));
        let mut read = 0;
        for row in BarReader::from_source(source, EXCHANGE_TZ) {
            let bar = match row.unwrap() {
                Row::Bar(bar) => bar,
                Row::Rejected(r) => panic!("{name}: {r:?}"),
            };
            let symbol = bar.symbol.or_else(|| symbol_from_file_name(name)).unwrap();
            let b = bar.bar;
            all.push((
                symbol.to_string(),
                b.ts_millis,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
            ));
            read += 1;
        }
        assert_eq!(read, *rows, "{name}");
    }
    all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    names.sort();
    names.dedup();
    (all, names)
}

#[test]
fn every_layout_reads_back_as_the_firstrate_bars() {
    let spec = spec();
    let want = meant(&spec);
    assert!(want.len() > 10_000, "{} bars", want.len());
    let expected_names = [
        (OutLayout::FirstRate, "firstrate"),
        (OutLayout::Polygon, "polygon"),
        (OutLayout::Databento, "databento"),
        (OutLayout::Kibot, "kibot"),
        (OutLayout::CsvUtc, "csv"),
        (OutLayout::CsvEpochMs, "csv"),
    ];
    for (layout, detected) in expected_names {
        let dir = tempfile::tempdir().unwrap();
        let written = write_layout(&spec, layout, dir.path()).unwrap();
        let (got, names) = read_back(&written);
        assert_eq!(names, [detected], "{layout:?}");
        assert_eq!(got.len(), want.len(), "{layout:?}");
        assert!(got == want, "{layout:?}: the bars read back differ");
    }
}

#[test]
fn firstrate_is_byte_identical_to_write_all_and_names_are_each_layouts() {
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    let written = write_layout(&spec, OutLayout::FirstRate, dir.path()).unwrap();
    for ((path, _), symbol) in written.iter().zip(["MSFT", "AAPL", "BRK.B"]) {
        let mut want = Vec::new();
        write_symbol(&spec, symbol, &mut want).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), want, "{symbol}");
    }
    let names = |layout| {
        let dir = tempfile::tempdir().unwrap();
        write_layout(&spec, layout, dir.path())
            .unwrap()
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    let days: Vec<String> = (0..=13)
        .map(|d| spec.start + chrono::Days::new(d))
        .filter(|d| bar_ingest::calendar::is_trading_day(*d))
        .map(|d| format!("{}.csv", d.format("%Y-%m-%d")))
        .collect();
    assert_eq!(days.len(), 10);
    assert_eq!(names(OutLayout::Polygon), days);
    assert_eq!(names(OutLayout::Databento), ["bars.ohlcv-1m.csv"]);
    assert_eq!(
        names(OutLayout::Kibot),
        ["MSFT.txt", "AAPL.txt", "BRK.B.txt"]
    );
    assert_eq!(names(OutLayout::CsvUtc)[2], "BRK.B_1min_utc.csv");
    assert_eq!(names(OutLayout::CsvEpochMs)[0], "MSFT_1min_epoch_ms.csv");
    for (layout, name) in OutLayout::ALL {
        assert_eq!(OutLayout::from_name(name), Some(layout));
        assert_eq!(layout.name(), name);
    }
    assert_eq!(OutLayout::from_name("csv"), None);
}

#[test]
fn sample_lines_are_each_layouts_exact_form() {
    let bar = GenBar {
        date: NaiveDate::from_ymd_opt(2023, 7, 10).unwrap(),
        minute: 9 * 60 + 30,
        open: 1_898_400,
        high: 1_899_500,
        low: 1_898_000,
        close: 1_899_000,
        volume: 4930,
    };
    let line = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        line(&|o| format_kibot(o, &bar)),
        "07/10/2023,09:30,189.84,189.95,189.8,189.9,4930\n"
    );
    assert_eq!(
        line(&|o| format_csv_utc(o, &bar)),
        "2023-07-10T13:30:00Z,189.84,189.95,189.8,189.9,4930\n"
    );
    assert_eq!(
        line(&|o| format_csv_epoch_ms(o, &bar)),
        "1688995800000,189.84,189.95,189.8,189.9,4930\n"
    );
    assert_eq!(
        line(&|o| format_polygon(o, "AAPL", &bar, false)),
        "AAPL,4930,189.84,189.9,189.95,189.8,1688995800000000000,50\n"
    );
    assert_eq!(
        line(&|o| format_databento(o, "AAPL", 1, &bar)),
        "1688995800000000000,33,2,1,189840000000,189950000000,189800000000,189900000000,4930,AAPL\n"
    );
    // Massive's six decimals (since 2026-02-23): the whole shares and a fraction.
    let decimal = line(&|o| format_polygon(o, "AAPL", &bar, true));
    let micros = bar.decimal_volume();
    assert_eq!(micros / 1_000_000, 4930);
    assert_eq!(
        decimal,
        format!(
            "AAPL,4930.{:06},189.84,189.9,189.95,189.8,1688995800000000000,50\n",
            micros % 1_000_000
        )
    );
    // Winter: New York is UTC-5.
    let winter = GenBar {
        date: NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
        ..bar
    };
    assert_eq!(utc_millis(&winter), 1_704_205_800_000);
}

#[test]
fn multi_symbol_files_are_ordered_as_the_vendors_order_them() {
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    // Databento: one file in time order (then instrument id).
    let written = write_layout(&spec, OutLayout::Databento, dir.path()).unwrap();
    let text = std::fs::read_to_string(&written[0].0).unwrap();
    let keys: Vec<(u128, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    assert!(keys.len() > 10_000);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "not in time order");
    // Polygon: each day's file in ticker order, then time.
    let written = write_layout(&spec, OutLayout::Polygon, dir.path()).unwrap();
    for (path, _) in written {
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<(String, u128)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[6].parse().unwrap())
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{}", path.display());
        let tickers: std::collections::BTreeSet<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        assert_eq!(tickers.len(), 3, "{}", path.display());
    }
}

/// `--stamp end`: the same bars, each a minute later, in every layout; decimal volumes only in
/// the Polygon layout.
#[test]
fn end_stamps_move_every_bar_a_minute_and_decimals_are_polygon_only() {
    let spec = spec();
    let starts: Vec<GenBar> = SymbolBars::new(&spec, "MSFT").collect();
    let ends: Vec<GenBar> = SymbolBars::new(&spec, "MSFT").end_stamped(true).collect();
    assert_eq!(starts.len(), ends.len());
    for (s, e) in starts.iter().zip(&ends) {
        assert_eq!(
            GenBar {
                minute: s.minute + 1,
                ..*s
            },
            *e
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let end = Variant {
        end_stamps: true,
        ..Variant::default()
    };
    let written = write_layout_variant(&spec, OutLayout::Kibot, end, dir.path()).unwrap();
    assert!(written[0].0.ends_with("MSFT.txt"));
    let text = std::fs::read_to_string(&written[0].0).unwrap();
    let first = &starts[0];
    assert!(
        text.starts_with(&format!(
            "{},{:02}:{:02},",
            first.date.format("%m/%d/%Y"),
            (first.minute + 1) / 60,
            (first.minute + 1) % 60
        )),
        "{}",
        &text[..40]
    );
    let decimals = Variant {
        decimal_volumes: true,
        ..Variant::default()
    };
    assert!(write_layout_variant(&spec, OutLayout::Kibot, decimals, dir.path()).is_err());
}
