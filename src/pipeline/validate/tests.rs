//! Tests of validation through the FirstRate reader (every reason, time zones, raw texts), and
//! of the source seam with a UTC layout.

use super::*;
use crate::source::{BarTime, Parsed, RawLine, Source, Volume};
use chrono::{NaiveDateTime, TimeZone, Utc};
use std::io::{BufReader, Cursor};

const NY: Tz = chrono_tz::America::New_York;

fn rows_of(input: &[u8]) -> Vec<Row> {
    BarReader::new(Cursor::new(input.to_vec()), NY)
        .collect::<std::io::Result<Vec<_>>>()
        .expect("reading memory cannot fail")
}

fn bars(input: &str) -> Vec<ValidBar> {
    rows_of(input.as_bytes())
        .into_iter()
        .map(|row| match row {
            Row::Bar(b) => b,
            Row::Rejected(r) => panic!("unexpected rejection {r:?}"),
        })
        .collect()
}

fn rejection(row: &Row) -> &Rejection {
    match row {
        Row::Rejected(r) => r,
        Row::Bar(b) => panic!("expected a rejection, got {b:?}"),
    }
}

/// The reason the first rejected line of `input` is rejected with.
fn first_reason(input: &[u8]) -> RejectReason {
    rows_of(input)
        .iter()
        .find_map(|row| match row {
            Row::Rejected(r) => Some(r.reason),
            Row::Bar(_) => None,
        })
        .expect("a rejected line")
}

fn utc_millis(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .expect("test timestamp")
        .and_utc()
        .timestamp_millis()
}

#[test]
fn accepts_a_firstrate_line_at_its_exact_utc_instant() {
    let got = bars("2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n");
    assert_eq!(got.len(), 1);
    let b = &got[0];
    assert_eq!(b.line, 1);
    assert_eq!(b.bar.ts_millis, 1_104_757_200_000);
    assert_eq!(b.local_date, NaiveDate::from_ymd_opt(2005, 1, 3).unwrap());
    assert_eq!(b.bucket.to_string(), "2005-01");
    assert_eq!(
        (b.bar.open, b.bar.high, b.bar.low, b.bar.close, b.bar.volume),
        (0.9911, 0.9911, 0.9839, 0.9839, 19209.0)
    );
}

#[test]
fn summer_instant_and_minutes_only_format() {
    // EDT is UTC-4.
    let got = bars("2024-07-01 09:30,10,11,9,10.5,100\n2024-07-01 09:31:00,10,11,9,10.5,100.0\n");
    assert_eq!(got[0].bar.ts_millis, utc_millis("2024-07-01 13:30:00"));
    assert_eq!(got[1].bar.ts_millis, utc_millis("2024-07-01 13:31:00"));
    assert_eq!(got[1].bar.volume, 100.0);
}

#[test]
fn bucket_is_the_local_month_even_when_utc_is_the_next_month() {
    // 2024-01-31 20:00 NY is 2024-02-01 01:00 UTC.
    let b = &bars("2024-01-31 20:00:00,1,1,1,1,0\n")[0];
    assert_eq!(b.bar.ts_millis, utc_millis("2024-02-01 01:00:00"));
    assert_eq!(b.bucket.to_string(), "2024-01");
}

#[test]
fn crlf_and_bom() {
    let got =
        bars("\u{FEFF}2024-01-02 04:00:00,1,2,0.5,1.5,7\r\n2024-01-02 04:01:00,1,2,0.5,1.5,8\r\n");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].bar.volume, 8.0);
    assert_eq!(got[0].bar.ts_millis, utc_millis("2024-01-02 09:00:00"));
}

#[test]
fn trailing_blank_lines_are_tolerated_but_inner_ones_rejected() {
    let input = b"2024-01-02 04:00:00,1,1,1,1,1\n\n  \r\n2024-01-02 04:01:00,1,1,1,1,1\n\n\r\n \n";
    let rows = rows_of(input);
    assert_eq!(rows.iter().map(Row::line).collect::<Vec<_>>(), [1, 2, 3, 4]);
    for row in &rows[1..3] {
        assert_eq!(rejection(row).reason, RejectReason::BlankLine);
    }
    assert!(matches!(rows[3], Row::Bar(_)));
}

/// One line (or a few) per reason that must be rejected with it.
const REASON_CASES: &[(RejectReason, &[u8])] = &[
    (
        RejectReason::BadHeader,
        b"timestamp,open,high,low,close,volume\n2024-01-02 10:00:00,1,2,0.5,1.5,7\n",
    ),
    (
        RejectReason::BlankLine,
        b"\n\t \n2024-01-02 10:00:00,1,2,0.5,1.5,7\n",
    ),
    (
        RejectReason::InvalidUtf8,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,7\xFF",
    ),
    (
        RejectReason::Binary,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,\x007",
    ),
    (RejectReason::FieldCount, b"2024-01-02 10:00:00,1,2,0.5"),
    // Five fields (no volume) load as volume 0, but not after a line of six.
    (
        RejectReason::FieldCount,
        b"2024-01-02 09:59:00,1,2,0.5,1.5,7\n2024-01-02 10:00:00,1,2,0.5,1.5",
    ),
    (
        RejectReason::FieldCount,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,7,",
    ),
    (
        RejectReason::BadTimestamp,
        b"2024/01/02 10:00:00,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::BadTimestamp,
        b"2024-02-30 10:00:00,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::BadTimestamp,
        b"2024-01-02 24:00:00,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::BadTimestamp,
        b"2024-01-02 10:00:60,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::BadTimestamp,
        b"2024-01-02T10:00:00,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::BadTimestamp,
        b"2024-01-0x 10:00:00,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::NonexistentLocalTime,
        b"2024-03-10 02:30:00,1,2,0.5,1.5,7",
    ),
    (
        RejectReason::BadNumber,
        b"2024-01-02 10:00:00,1,2,0.5,abc,7",
    ),
    (RejectReason::BadNumber, b"2024-01-02 10:00:00,,2,0.5,1.5,7"),
    (
        RejectReason::BadNumber,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,seven",
    ),
    (
        RejectReason::BadNumber,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,99999999999999999999",
    ),
    (
        RejectReason::NonFinite,
        b"2024-01-02 10:00:00,nan,2,0.5,1.5,7",
    ),
    (
        RejectReason::NonFinite,
        b"2024-01-02 10:00:00,1,inf,0.5,1.5,7",
    ),
    (
        RejectReason::NonFinite,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,NaN",
    ),
    (
        RejectReason::NonFinite,
        b"2024-01-02 10:00:00,1,1e400,0.5,1.5,7",
    ),
    (
        RejectReason::NonPositivePrice,
        b"2024-01-02 10:00:00,0,2,0.5,1.5,7",
    ),
    (
        RejectReason::NonPositivePrice,
        b"2024-01-02 10:00:00,1,2,-0.5,1.5,7",
    ),
    (
        RejectReason::HighBelowLow,
        b"2024-01-02 10:00:00,1,1.2,1.5,1.5,7",
    ),
    (
        RejectReason::OpenOutOfRange,
        b"2024-01-02 10:00:00,3,2,0.5,1.5,7",
    ),
    (
        RejectReason::CloseOutOfRange,
        b"2024-01-02 10:00:00,1,2,0.5,0.4,7",
    ),
    (
        RejectReason::NegativeVolume,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,-7",
    ),
    (
        RejectReason::NegativeVolume,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,-7.5",
    ),
    (
        RejectReason::BadNumber,
        b"2024-01-02 10:00:00,1,2,0.5,1.5,9007199254740993",
    ),
];

#[test]
fn every_reason_has_a_line_that_triggers_it() {
    let ok = "2024-01-02 10:00:00,1,2,0.5,1.5,7";
    let cases = REASON_CASES;
    for (want, input) in cases {
        assert_eq!(
            first_reason(input),
            *want,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    let dup = format!("{ok}\n{ok}\n");
    assert_eq!(
        first_reason(dup.as_bytes()),
        RejectReason::DuplicateTimestamp
    );
    // The first two times say the file runs oldest first; a later earlier one is out of order.
    let earlier =
        format!("{ok}\n2024-01-02 10:01:00,1,2,0.5,1.5,7\n2024-01-02 09:59:00,1,2,0.5,1.5,7\n");
    assert_eq!(first_reason(earlier.as_bytes()), RejectReason::OutOfOrder);
    let mut long = vec![b'1'; 5000];
    long.push(b'\n');
    assert_eq!(first_reason(&long), RejectReason::LineTooLong);
    // Only a `bigint` volume column refuses a fractional volume: see
    // fractional_volumes_are_kept_unless_the_column_is_bigint.
    let fractional = b"2024-01-02 10:00:00,1,2,0.5,1.5,1.5\n";
    assert_eq!(
        rejection(&rows_with(fractional, bigint_validator())[0]).reason,
        RejectReason::FractionalVolume
    );

    // Each reason above is exercised; make sure no new reason is left without a case.
    let mut covered: std::collections::HashSet<RejectReason> =
        cases.iter().map(|(r, _)| *r).collect();
    covered.extend([
        RejectReason::DuplicateTimestamp,
        RejectReason::OutOfOrder,
        RejectReason::LineTooLong,
        RejectReason::FractionalVolume,
        // Only multi-symbol layouts read a symbol field: see source::polygon's tests.
        RejectReason::BadSymbol,
        // Only Databento records say their interval (rtype): see source::databento's tests.
        RejectReason::NotOneMinute,
    ]);
    assert_eq!(covered.len(), RejectReason::ALL.len());
}

#[test]
fn messages_say_what_is_wrong() {
    let r = rows_of(b"2024-01-02 10:00:00,1.3,1.2,1.5,1.3,7");
    assert_eq!(rejection(&r[0]).message, "high 1.2 is below low 1.5");
    let r = rows_of(b"2024-01-02 10:00:00,1,2,0.5,1.5,7,8");
    assert!(rejection(&r[0]).message.starts_with("7 fields, expected 6"));
}

#[test]
fn duplicates_and_out_of_order_compare_with_the_last_accepted_bar() {
    // The first two times say the file runs oldest first.
    let rows = rows_of(
        b"2024-01-02 10:00:30,1,2,0.5,1.5,7\n\
          2024-01-02 10:01:00,1,2,0.5,1.5,7\n\
          2024-01-02 10:00:00,1,2,0.5,1.5,7\n\
          2024-01-02 10:01:00,1,2,0.5,1.5,7\n\
          2024-01-02 10:02:00,1,2,0.5,5,7\n\
          2024-01-02 10:02:00,1,2,0.5,1.5,7\n",
    );
    let reasons: Vec<_> = rows
        .iter()
        .map(|r| match r {
            Row::Bar(_) => None,
            Row::Rejected(r) => Some(r.reason),
        })
        .collect();
    // The rejected 10:02 row (close out of range) does not count as the last bar.
    assert_eq!(
        reasons,
        [
            None,
            None,
            Some(RejectReason::OutOfOrder),
            Some(RejectReason::DuplicateTimestamp),
            Some(RejectReason::CloseOutOfRange),
            None
        ]
    );
}

#[test]
fn spring_forward_2024_in_new_york() {
    let rows = rows_of(
        b"2024-03-10 01:59:00,1,1,1,1,1\n\
          2024-03-10 02:00:00,1,1,1,1,1\n\
          2024-03-10 02:59:00,1,1,1,1,1\n\
          2024-03-10 03:00:00,1,1,1,1,1\n\
          2024-03-11 03:00:00,1,1,1,1,1\n",
    );
    let ts = |i: usize| match &rows[i] {
        Row::Bar(b) => b.bar.ts_millis,
        Row::Rejected(r) => panic!("{r:?}"),
    };
    assert_eq!(ts(0), utc_millis("2024-03-10 06:59:00"));
    assert_eq!(
        rejection(&rows[1]).reason,
        RejectReason::NonexistentLocalTime
    );
    assert_eq!(
        rejection(&rows[2]).reason,
        RejectReason::NonexistentLocalTime
    );
    assert_eq!(ts(3), utc_millis("2024-03-10 07:00:00"));
    assert_eq!(ts(4), utc_millis("2024-03-11 07:00:00"));
}

#[test]
fn fall_back_2024_in_new_york_keeps_timestamps_increasing() {
    let rows = bars(
        "2024-11-03 00:59:00,1,1,1,1,1\n\
         2024-11-03 01:00:00,1,1,1,1,1\n\
         2024-11-03 01:59:00,1,1,1,1,1\n\
         2024-11-03 01:00:00,1,1,1,1,1\n\
         2024-11-03 01:59:00,1,1,1,1,1\n\
         2024-11-03 02:00:00,1,1,1,1,1\n",
    );
    let got: Vec<i64> = rows.iter().map(|b| b.bar.ts_millis).collect();
    assert_eq!(
        got,
        [
            utc_millis("2024-11-03 04:59:00"),
            utc_millis("2024-11-03 05:00:00"), // EDT
            utc_millis("2024-11-03 05:59:00"),
            utc_millis("2024-11-03 06:00:00"), // the repeated hour, EST
            utc_millis("2024-11-03 06:59:00"),
            utc_millis("2024-11-03 07:00:00"),
        ]
    );
    // A file that only has the repeated hour once gets the earlier (EDT) instants.
    let once = bars("2024-11-03 01:30:00,1,1,1,1,1\n");
    assert_eq!(once[0].bar.ts_millis, utc_millis("2024-11-03 05:30:00"));
    // The same local time a third time is a duplicate of the later instant.
    let rows = rows_of(
        b"2024-11-03 01:30:00,1,1,1,1,1\n2024-11-03 01:30:00,1,1,1,1,1\n2024-11-03 01:30:00,1,1,1,1,1\n",
    );
    assert_eq!(rejection(&rows[2]).reason, RejectReason::DuplicateTimestamp);
}

#[test]
fn a_newest_first_file_gives_the_bars_of_its_time_ordered_twin() {
    // Across the 2024 fall-back (the repeated hour twice) and a month end.
    let mut lines = Vec::new();
    let mut t = NaiveDate::from_ymd_opt(2024, 10, 31)
        .unwrap()
        .and_hms_opt(23, 0, 0)
        .unwrap();
    let mut repeated = false;
    while t < NaiveDate::from_ymd_opt(2024, 11, 3)
        .unwrap()
        .and_hms_opt(3, 0, 0)
        .unwrap()
    {
        lines.push(format!("{},1,2,0.5,1.5,7", t.format("%Y-%m-%d %H:%M:%S")));
        t += chrono::Duration::minutes(7);
        if !repeated && t.format("%Y-%m-%d %H").to_string() == "2024-11-03 02" {
            // The wall clock goes back from 02:00 EDT to 01:00 EST.
            t -= chrono::Duration::hours(1);
            repeated = true;
        }
    }
    let oldest_first = bars(&(lines.join("\n") + "\n"));
    lines.reverse();
    let newest_first = bars(&(lines.join("\n") + "\n"));
    assert_eq!(oldest_first.len(), lines.len());
    let key = |b: &ValidBar| (b.bar, b.local_date, b.bucket);
    let mut want: Vec<_> = oldest_first.iter().map(key).collect();
    want.reverse();
    let got: Vec<_> = newest_first.iter().map(key).collect();
    assert_eq!(got, want);
    // A file whose direction changes after its first two times: the rows against it rejected.
    let rows = rows_of(
        b"2024-01-02 10:05:00,1,1,1,1,1\n2024-01-02 10:04:00,1,1,1,1,1\n\
          2024-01-02 10:06:00,1,1,1,1,1\n2024-01-02 10:03:00,1,1,1,1,1\n",
    );
    assert!(matches!(rows[1], Row::Bar(_)));
    assert_eq!(rejection(&rows[2]).reason, RejectReason::OutOfOrder);
    assert!(matches!(rows[3], Row::Bar(_)));
}

#[test]
fn instants_match_chrono_tz_around_the_clock_for_a_year() {
    let mut input = String::new();
    let mut want = Vec::new();
    let mut t = NaiveDate::from_ymd_opt(2023, 12, 30)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let end = NaiveDate::from_ymd_opt(2025, 1, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    while t < end {
        if let chrono::LocalResult::Single(dt) = NY.from_local_datetime(&t) {
            input.push_str(&format!("{},1,1,1,1,1\n", t.format("%Y-%m-%d %H:%M:%S")));
            want.push(dt.with_timezone(&Utc).timestamp_millis());
        }
        t += chrono::Duration::minutes(37);
    }
    let got: Vec<i64> = bars(&input).iter().map(|b| b.bar.ts_millis).collect();
    assert_eq!(got, want);
}

#[test]
fn one_megabyte_line_is_rejected_with_a_short_raw_text() {
    let mut input = b"2024-01-02 10:00:00,1,1,1,1,1\n".to_vec();
    input.extend(std::iter::repeat_n(b'9', 1 << 20));
    input.extend_from_slice(b"\n2024-01-02 10:01:00,1,1,1,1,1\n");
    let rows: Vec<Row> = BarReader::new(BufReader::with_capacity(1024, &input[..]), NY)
        .collect::<std::io::Result<_>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    let r = rejection(&rows[1]);
    assert_eq!((r.line, r.reason), (2, RejectReason::LineTooLong));
    assert!(r.message.contains("1048576 bytes"), "{}", r.message);
    assert!(r.raw.ends_with("…[truncated, 1048576 bytes]"), "{}", r.raw);
    assert!(r.raw.len() < MAX_RAW_BYTES + 40);
    assert!(matches!(rows[2], Row::Bar(_)));
}

#[test]
fn raw_text_is_cut_at_a_character_boundary() {
    let mut text = "é".repeat(300).into_bytes(); // 600 bytes
    text.extend_from_slice(b",1,1,1,1,1");
    let r = rows_of(&text);
    let raw = &rejection(&r[0]).raw;
    assert!(raw.starts_with(&"é".repeat(256)), "{raw}");
    assert!(!raw.contains('\u{FFFD}'));
    assert!(raw.ends_with(&format!("…[truncated, {} bytes]", text.len())));
}

#[test]
fn invalid_utf8_and_binary_lines_keep_a_lossy_raw_text() {
    let rows = rows_of(b"\xFF\xFE,1,1,1,1,1\n\x00\x01\x02\n2024-01-02 10:00:00,1,1,1,1,1\n");
    assert_eq!(rejection(&rows[0]).reason, RejectReason::InvalidUtf8);
    assert_eq!(rejection(&rows[0]).raw, "\u{FFFD}\u{FFFD},1,1,1,1,1");
    assert_eq!(rejection(&rows[1]).reason, RejectReason::Binary);
    assert_eq!(rejection(&rows[1]).raw, "\u{0}\u{1}\u{2}");
    assert!(matches!(rows[2], Row::Bar(_)));
}

#[test]
fn volume_forms() {
    let got = bars(
        "2024-01-02 10:00:00,1,1,1,1,0\n\
         2024-01-02 10:01:00,1,1,1,1,100.0\n\
         2024-01-02 10:02:00,1,1,1,1,1e3\n\
         2024-01-02 10:03:00,1,1,1,1,9007199254740992\n\
         2024-01-02 10:04:00,1,1,1,1,1234.567891\n\
         2024-01-02 10:05:00,1,1,1,1,-0\n",
    );
    let v: Vec<f64> = got.iter().map(|b| b.bar.volume).collect();
    assert_eq!(
        v,
        [
            0.0,
            100.0,
            1000.0,
            9_007_199_254_740_992.0,
            1234.567891,
            0.0
        ]
    );
    assert!(v[5].is_sign_positive(), "-0 is stored as 0");
}

fn rows_with(input: &[u8], validator: Validator) -> Vec<Row> {
    let source = crate::source::firstrate::FirstRate::new(Cursor::new(input.to_vec()));
    BarReader::with_validator(source, validator)
        .collect::<std::io::Result<Vec<_>>>()
        .expect("reading memory cannot fail")
}

fn bigint_validator() -> Validator {
    Validator::new(NY).storing(crate::model::VolumeColumn::BigInt)
}

/// Polygon writes six decimals since 2026-02-23: kept as the nearest f64 of the text (which
/// prints back as the same text), in a `double` column; a `bigint` column (an older table)
/// refuses them with `fractional_volume` and a message that says why; nothing is truncated.
/// Before volumes became f64, the first half failed: every such line was `fractional_volume`.
#[test]
fn fractional_volumes_are_kept_unless_the_column_is_bigint() {
    let input = b"2026-02-23 10:00:00,1,2,0.5,1.5,1234.567891\n\
                  2026-02-23 10:01:00,1,2,0.5,1.5,0.000001\n\
                  2026-02-23 10:02:00,1,2,0.5,1.5,12.5\n\
                  2026-02-23 10:03:00,1,2,0.5,1.5,4930.000000\n";
    let kept: Vec<f64> = rows_with(input, Validator::new(NY))
        .iter()
        .map(|row| match row {
            Row::Bar(b) => b.bar.volume,
            Row::Rejected(r) => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(kept, [1234.567891, 0.000001, 12.5, 4930.0]);
    let printed: Vec<String> = kept.iter().map(f64::to_string).collect();
    assert_eq!(printed, ["1234.567891", "0.000001", "12.5", "4930"]);

    let rows = rows_with(input, bigint_validator());
    for row in &rows[..3] {
        let r = rejection(row);
        assert_eq!(r.reason, RejectReason::FractionalVolume);
        assert!(
            r.message.contains("is not a whole number")
                && r.message.contains("`volume` column is `bigint`")
                && r.message.contains("stores whole volumes only"),
            "{}",
            r.message
        );
    }
    assert!(matches!(&rows[3], Row::Bar(b) if b.bar.volume == 4930.0));
}

/// Negative, NaN, infinite and too large volumes are still rejected, whatever the column.
#[test]
fn bad_volumes_are_still_rejected() {
    let cases: [(&[u8], RejectReason); 5] = [
        (b"-0.000001", RejectReason::NegativeVolume),
        (b"nan", RejectReason::NonFinite),
        (b"inf", RejectReason::NonFinite),
        (b"9007199254740993", RejectReason::BadNumber),
        (b"1e300", RejectReason::BadNumber),
    ];
    for (volume, want) in cases {
        let mut line = b"2024-01-02 10:00:00,1,2,0.5,1.5,".to_vec();
        line.extend_from_slice(volume);
        assert_eq!(
            first_reason(&line),
            want,
            "{}",
            String::from_utf8_lossy(volume)
        );
    }
    let r = rows_of(b"2024-01-02 10:00:00,1,2,0.5,1.5,9007199254740993");
    assert_eq!(
        rejection(&r[0]).message,
        "volume 9007199254740993 is too large: above 2^53 (9007199254740992), the largest kept \
         exactly"
    );
}

#[test]
fn an_io_error_is_reported_once_then_the_reader_ends() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let mut reader = BarReader::new(BufReader::new(Broken), NY);
    assert!(matches!(reader.next(), Some(Err(_))));
    assert!(reader.next().is_none());
}

/// A UTC layout in miniature, standing in for the ones to come (Polygon, Databento): one
/// `SYMBOL|- MILLIS OPEN HIGH LOW CLOSE VOLUME` record per string, `-` for no symbol.
struct UtcLines {
    lines: Vec<String>,
    next: usize,
}

impl UtcLines {
    fn new(lines: impl IntoIterator<Item = String>) -> Self {
        Self {
            lines: lines.into_iter().collect(),
            next: 0,
        }
    }
}

impl Source for UtcLines {
    fn next_record(&mut self) -> std::io::Result<Option<Parsed<'_>>> {
        let Some(text) = self.lines.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let f: Vec<&str> = text.split(' ').collect();
        let num = |i: usize| f[i].parse::<f64>().expect("test number");
        Ok(Some(Ok(Record {
            line: self.next as u64,
            raw: RawLine {
                kept: text.as_bytes(),
                len: text.len() as u64,
            },
            symbol: Symbol::new(f[0]),
            time: BarTime::Utc(f[1].parse().expect("test millis")),
            open: num(2),
            high: num(3),
            low: num(4),
            close: num(5),
            volume: Volume::Shares(f[6].parse().expect("test volume")),
        })))
    }

    fn bytes_read(&self) -> u64 {
        0
    }
}

fn utc_rows(lines: &[String]) -> Vec<Row> {
    BarReader::from_source(UtcLines::new(lines.iter().cloned()), NY)
        .collect::<std::io::Result<_>>()
        .expect("reading memory cannot fail")
}

#[test]
fn utc_records_validate_to_the_same_bars_as_the_local_lines_they_stand_for() {
    // Across the 2024 fall-back (both 01:30s) and a local month end that is the next UTC month.
    let local = "2024-10-31 19:59:00,1,2,0.5,1.5,7\n\
                 2024-10-31 20:00:00,1,2,0.5,1.5,7\n\
                 2024-11-03 01:30:00,1,2,0.5,1.5,7\n\
                 2024-11-03 01:30:00,1,2,0.5,1.5,8\n\
                 2024-11-03 02:00:00,1,2,0.5,1.5,9\n";
    let want = bars(local);
    let utc: Vec<String> = want
        .iter()
        .map(|b| format!("- {} 1 2 0.5 1.5 {}", b.bar.ts_millis, b.bar.volume))
        .collect();
    let got: Vec<ValidBar> = utc_rows(&utc)
        .into_iter()
        .map(|row| match row {
            Row::Bar(b) => b,
            Row::Rejected(r) => panic!("unexpected rejection {r:?}"),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[1].bucket.to_string(), "2024-10");
    assert_eq!(got[1].bar.ts_millis, utc_millis("2024-11-01 00:00:00"));
}

#[test]
fn utc_records_break_the_same_rules_with_their_raw_text() {
    let t = utc_millis("2024-01-02 15:00:00");
    let rows = utc_rows(&[
        format!("- {t} 1 2 0.5 1.5 7"),
        format!("- {t} 1 2 0.5 1.5 7"),
        format!("- {} 1 1.2 1.5 1.5 7", t + 60_000),
        format!("- {} 1 2 0.5 1.5 -1", t + 60_000),
        format!("- {} NaN 2 0.5 1.5 1", t + 60_000),
    ]);
    let reasons: Vec<_> = rows[1..].iter().map(|r| rejection(r).reason).collect();
    assert_eq!(
        reasons,
        [
            RejectReason::DuplicateTimestamp,
            RejectReason::HighBelowLow,
            RejectReason::NegativeVolume,
            RejectReason::NonFinite,
        ]
    );
    let dup = rejection(&rows[1]);
    assert_eq!(
        (dup.line, dup.raw.as_str()),
        (2, format!("- {t} 1 2 0.5 1.5 7").as_str())
    );
    assert_eq!(
        dup.message,
        "2024-01-02T15:00:00.000Z repeats the previous bar's time"
    );
}

#[test]
fn records_that_name_their_symbol_are_ordered_per_symbol() {
    let t = utc_millis("2024-01-02 15:00:00");
    let rows = utc_rows(&[
        format!("AAPL {t} 1 2 0.5 1.5 7"),
        format!("MSFT {t} 1 2 0.5 1.5 7"),
        format!("AAPL {} 1 2 0.5 1.5 7", t + 60_000),
        format!("MSFT {t} 1 2 0.5 1.5 7"),
        format!("AAPL {} 1 2 0.5 1.5 7", t - 60_000),
    ]);
    let symbol = |i: usize| match &rows[i] {
        Row::Bar(b) => b.symbol.as_ref().map(Symbol::as_str),
        Row::Rejected(r) => panic!("{r:?}"),
    };
    assert_eq!(
        [symbol(0), symbol(1), symbol(2)],
        [Some("AAPL"), Some("MSFT"), Some("AAPL")]
    );
    assert_eq!(rejection(&rows[3]).reason, RejectReason::DuplicateTimestamp);
    assert_eq!(rejection(&rows[4]).reason, RejectReason::OutOfOrder);
}

#[test]
fn a_source_rejection_passes_through_and_blank_runs_follow_the_reader_policy() {
    /// A source that yields what it is given.
    struct Given(std::vec::IntoIter<Result<(u64, i64), Rejection>>);
    impl Source for Given {
        fn next_record(&mut self) -> std::io::Result<Option<Parsed<'_>>> {
            Ok(self.0.next().map(|item| {
                item.map(|(line, millis)| Record {
                    line,
                    raw: RawLine { kept: b"", len: 0 },
                    symbol: None,
                    time: BarTime::Utc(millis),
                    open: 1.0,
                    high: 1.0,
                    low: 1.0,
                    close: 1.0,
                    volume: Volume::Shares(1),
                })
            }))
        }
        fn bytes_read(&self) -> u64 {
            0
        }
    }
    let bad = Rejection {
        line: 1,
        raw: "x".into(),
        reason: RejectReason::BadNumber,
        message: "x is not a number".into(),
    };
    let items = vec![
        Err(bad.clone()),
        Err(Rejection::blank_line(2)),
        Ok((3, 0)),
        Err(Rejection::blank_line(4)),
    ];
    let rows: Vec<Row> = BarReader::from_source(Given(items.into_iter()), NY)
        .collect::<std::io::Result<_>>()
        .expect("no I/O");
    assert_eq!(rows.len(), 3, "the trailing blank line is tolerated");
    assert_eq!(rows[0], Row::Rejected(bad));
    assert_eq!(rejection(&rows[1]).reason, RejectReason::BlankLine);
    assert!(matches!(rows[2], Row::Bar(_)));
}

/// `stamp = "end"`: each bar is placed one minute before its stamp, at its open: its instant,
/// its local date (a bar stamped 00:00 opened the day before) and, across daylight-saving
/// changes, the real minute before (the bar stamped 03:00 on a spring-forward day opened at
/// 01:59 EST; the fall-back's repeated 01:00 resolves as the later one after 01:59 EDT).
#[test]
fn end_stamped_bars_are_placed_at_their_open() {
    let end = |input: &str| -> Vec<Row> {
        rows_with(
            input.as_bytes(),
            Validator::new(NY).stamped(crate::model::Stamp::End),
        )
    };
    let opens = |rows: &[Row]| -> Vec<(i64, NaiveDate)> {
        rows.iter()
            .map(|row| match row {
                Row::Bar(b) => (b.bar.ts_millis, b.local_date),
                Row::Rejected(r) => panic!("{r:?}"),
            })
            .collect()
    };
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let got = end("2024-01-02 09:31:00,1,1,1,1,1\n\
         2024-01-02 16:00:00,1,1,1,1,1\n\
         2024-01-03 00:00:00,1,1,1,1,1\n");
    assert_eq!(
        opens(&got),
        [
            (utc_millis("2024-01-02 14:30:00"), day(2024, 1, 2)),
            (utc_millis("2024-01-02 20:59:00"), day(2024, 1, 2)),
            (utc_millis("2024-01-03 04:59:00"), day(2024, 1, 2)),
        ]
    );
    let Row::Bar(midnight) = &got[2] else {
        unreachable!()
    };
    assert_eq!(midnight.bucket.to_string(), "2024-01");

    // Spring forward (2024-03-10): 01:59 EST is 06:59 UTC, and the next minute reads 03:00 EDT.
    let spring = end("2024-03-10 01:59:00,1,1,1,1,1\n2024-03-10 03:00:00,1,1,1,1,1\n");
    assert_eq!(
        opens(&spring),
        [
            (utc_millis("2024-03-10 06:58:00"), day(2024, 3, 10)),
            (utc_millis("2024-03-10 06:59:00"), day(2024, 3, 10)),
        ]
    );
    // Fall back (2024-11-03): 01:59 EDT (05:59 UTC) ends at the second 01:00 (EST, 06:00 UTC).
    let fall = end(
        "2024-11-03 01:59:00,1,1,1,1,1\n2024-11-03 01:00:00,1,1,1,1,1\n\
         2024-11-03 01:01:00,1,1,1,1,1\n",
    );
    assert_eq!(
        opens(&fall),
        [
            (utc_millis("2024-11-03 05:58:00"), day(2024, 11, 3)),
            (utc_millis("2024-11-03 05:59:00"), day(2024, 11, 3)),
            (utc_millis("2024-11-03 06:00:00"), day(2024, 11, 3)),
        ]
    );
    // The same file start-stamped is a minute later throughout.
    let start = rows_with(b"2024-01-02 09:31:00,1,1,1,1,1\n", Validator::new(NY));
    assert_eq!(opens(&start)[0].0, utc_millis("2024-01-02 14:31:00"));
}
