//! `Client.coverage`: the coverage report's symbol-days as one Arrow record batch (the same
//! rows as `bar-ingest coverage --format json`).

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;

use bar_ingest::coverage::SymbolReport;

/// The columns, in order.
pub fn schema() -> SchemaRef {
    let u32_field = |name: &str| Field::new(name, DataType::UInt32, false);
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("trading_day", DataType::Boolean, false),
        Field::new("half_day", DataType::Boolean, false),
        u32_field("expected"),
        u32_field("present"),
        u32_field("missing"),
        u32_field("longest_gap_minutes"),
        u32_field("bars"),
        Field::new("anomalies", DataType::Utf8, false),
    ]))
}

/// Days since 1970-01-01.
fn date32(day: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (day - epoch).num_days() as i32
}

/// One batch of every symbol-day of `reports`; `anomalies` holds each day's anomaly reasons
/// as `kind: reason`, joined with `; `.
pub fn batch(reports: &[SymbolReport]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let days = || reports.iter().flat_map(|r| r.days.iter());
    let u32s = |f: fn(&bar_ingest::coverage::DayCoverage) -> u32| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(days().map(f)))
    };
    let anomalies = reports.iter().flat_map(|r| {
        r.days.iter().map(move |d| {
            r.anomalies
                .iter()
                .filter(|a| a.day == d.day)
                .map(|a| format!("{}: {}", a.kind.name(), a.kind.reason()))
                .collect::<Vec<_>>()
                .join("; ")
        })
    });
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            days().map(|d| d.symbol.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(days().map(|d| date32(d.day)))),
        Arc::new(BooleanArray::from(
            days().map(|d| d.trading_day).collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(
            days().map(|d| d.half_day).collect::<Vec<_>>(),
        )),
        u32s(|d| d.expected),
        u32s(|d| d.present),
        u32s(|d| d.missing),
        u32s(|d| d.longest_gap_minutes),
        u32s(|d| d.bars),
        Arc::new(StringArray::from_iter_values(anomalies)),
    ];
    RecordBatch::try_new(schema(), columns)
}
