//! Property tests for the bar-file reader and validator: random valid bars round-trip to the same
//! values and UTC instants (checked against an independent chrono-tz computation), any line
//! yields exactly one row, arbitrary bytes never panic the reader, and a bar's bucket is the
//! exchange-local month of its instant.

use bar_ingest::pipeline::validate::{BarReader, RejectReason, Row};
use bar_ingest::source::lines::MAX_LINE_BYTES;
use chrono::{LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use proptest::prelude::*;

/// Zones with the interesting kinds of transitions: hour-long DST (New York, London), a
/// half-hour DST shift (Lord Howe), half-hour offsets (St. John's, Kolkata), none (Tokyo).
const ZONES: [Tz; 6] = [
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::America::St_Johns,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Asia::Tokyo,
];

/// Days from 1990-01-01 to 2035-12-31.
const DAYS_1990_TO_2035: i64 = 16_801;

fn zone() -> impl Strategy<Value = Tz> {
    proptest::sample::select(&ZONES[..])
}

fn day_1990() -> NaiveDate {
    NaiveDate::from_ymd_opt(1990, 1, 1).expect("a real date")
}

/// A local timestamp between 1990 and 2035, to the second.
fn local_time() -> impl Strategy<Value = NaiveDateTime> {
    (0..DAYS_1990_TO_2035, 0u32..86_400).prop_map(|(days, secs)| {
        let date = day_1990() + chrono::Duration::days(days);
        date.and_hms_opt(secs / 3600, secs / 60 % 60, secs % 60)
            .expect("seconds of a day")
    })
}

/// UTC instants (seconds) in `year` at which the zone's offset changes, to the quarter hour
/// (real transitions are on quarter hours).
fn transitions(tz: Tz, year: i32) -> Vec<i64> {
    let offset_at = |secs: i64| {
        tz.timestamp_opt(secs, 0)
            .single()
            .map(|t| t.naive_local().and_utc().timestamp() - secs)
    };
    let start = NaiveDate::from_ymd_opt(year, 1, 1)
        .expect("a real date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp();
    let mut found = Vec::new();
    let mut t = start;
    while t < start + 366 * 86_400 {
        if offset_at(t) != offset_at(t + 86_400) {
            let mut s = t;
            while offset_at(s) == offset_at(t) {
                s += 15 * 60;
            }
            found.push(s);
        }
        t += 86_400;
    }
    found
}

/// A UTC instant (seconds) within three hours of one of the zone's transitions in a random
/// year 1990-2035, or any instant when the zone has none that year.
fn instant_near_transition(tz: Tz) -> impl Strategy<Value = i64> {
    (
        1990i32..=2035,
        any::<prop::sample::Index>(),
        -180i64..180,
        0i64..60,
    )
        .prop_map(move |(year, pick, minutes, secs)| {
            let found = transitions(tz, year);
            let base = if found.is_empty() {
                NaiveDate::from_ymd_opt(year, 6, 1)
                    .and_then(|d| d.and_hms_opt(12, 0, 0))
                    .expect("a real time")
                    .and_utc()
                    .timestamp()
            } else {
                found[pick.index(found.len())]
            };
            base + minutes * 60 + secs
        })
}

/// A local time near a transition: in the gap, in the repeated hour, or just around them.
fn local_time_near_transition(tz: Tz) -> impl Strategy<Value = NaiveDateTime> {
    (instant_near_transition(tz), -90i64..90).prop_map(move |(secs, shift)| {
        // The local rendering of an instant, shifted so that gap times (no instant renders
        // to them) come up too.
        let local = tz
            .timestamp_opt(secs, 0)
            .single()
            .expect("every UTC instant has one local time")
            .naive_local();
        local + chrono::Duration::minutes(shift)
    })
}

/// A positive finite price: small, large, or a 4-decimal vendor-style one.
fn price() -> impl Strategy<Value = f64> {
    prop_oneof![
        1e-6f64..1e7,
        (1u64..100_000_000).prop_map(|ticks| ticks as f64 / 10_000.0),
        proptest::num::f64::POSITIVE.prop_filter("finite, non-zero", |v| v.is_finite() && *v > 0.0),
    ]
}

#[derive(Debug, Clone)]
struct BarSpec {
    time: NaiveDateTime,
    /// Print `HH:MM` instead of `HH:MM:SS` (only when the seconds are zero).
    short_time: bool,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    /// The volume as written: whole, `N.0`, or with six decimals (Polygon since 2026-02-23).
    volume: String,
}

fn bar_spec(time: impl Strategy<Value = NaiveDateTime>) -> impl Strategy<Value = BarSpec> {
    (
        time,
        any::<bool>(),
        [price(), price(), price(), price()],
        any::<bool>(),
        prop_oneof![
            (0i64..1_000_000).prop_map(|v| v.to_string()),
            // Up to 2^53, the largest volume kept.
            (0i64..=(1 << 53)).prop_map(|v| v.to_string()),
            (0i64..(1 << 53)).prop_map(|v| format!("{v}.0")),
            (0u64..1_000_000_000_000_000).prop_map(|micros| format!(
                "{}.{:06}",
                micros / 1_000_000,
                micros % 1_000_000
            )),
        ],
    )
        .prop_map(|(time, short, mut prices, swap, volume)| {
            prices.sort_by(f64::total_cmp);
            let [low, a, b, high] = prices;
            let (open, close) = if swap { (b, a) } else { (a, b) };
            BarSpec {
                short_time: short && time.and_utc().timestamp() % 60 == 0,
                time,
                open,
                high,
                low,
                close,
                volume,
            }
        })
}

impl BarSpec {
    fn line(&self) -> String {
        let time = if self.short_time {
            self.time.format("%Y-%m-%d %H:%M")
        } else {
            self.time.format("%Y-%m-%d %H:%M:%S")
        };
        format!(
            "{time},{},{},{},{},{}",
            self.open, self.high, self.low, self.close, self.volume
        )
    }
}

fn read(input: &[u8], tz: Tz) -> Vec<Row> {
    BarReader::new(input, tz)
        .collect::<std::io::Result<Vec<_>>>()
        .expect("reading memory cannot fail")
}

/// What the zone makes of a local time, computed with chrono-tz directly: the instant (earlier
/// of an ambiguous pair unless that is not after `previous`), or None in a gap.
fn expected_instant(tz: Tz, local: NaiveDateTime, previous: Option<i64>) -> Option<i64> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.timestamp_millis()),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.timestamp_millis(), b.timestamp_millis());
            let (earlier, later) = (a.min(b), a.max(b));
            Some(match previous {
                Some(p) if earlier <= p => later,
                _ => earlier,
            })
        }
        LocalResult::None => None,
    }
}

/// Lines of `input` as the reader should see them: split on `\n` (a final `\n` ends the last
/// line), `\r` before `\n` and a BOM on line 1 stripped.
fn model_lines(input: &[u8]) -> Vec<&[u8]> {
    if input.is_empty() {
        return Vec::new();
    }
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if i == 0 {
                line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
            } else {
                line
            }
        })
        .collect()
}

fn model_is_blank(line: &[u8]) -> bool {
    line.len() <= MAX_LINE_BYTES && line.iter().all(u8::is_ascii_whitespace)
}

/// Byte snippets that make parser-shaped garbage more likely than uniform random bytes do.
fn snippet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" ".to_vec()),
        Just(b",".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xFF".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(b"2024-03-10 02:30:00".to_vec()),
        Just(b"2024-11-03 01:30".to_vec()),
        Just(b"nan".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n".to_vec()),
        "[0-9:.\\- ,]{0,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2000),
        proptest::collection::vec(snippet(), 0..80).prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random valid bars in time order come back with the same values, at the instants
    /// chrono-tz gives; local times in a gap, and only those, are rejected.
    #[test]
    fn valid_bars_round_trip(
        (tz, mut bars) in zone().prop_flat_map(|tz| {
            let time = prop_oneof![local_time(), local_time_near_transition(tz)];
            (Just(tz), proptest::collection::vec(bar_spec(time), 1..40))
        }),
    ) {
        bars.sort_by_key(|b| b.time);
        bars.dedup_by_key(|b| b.time);
        let input: String = bars.iter().map(|b| b.line() + "\n").collect();
        let rows = read(input.as_bytes(), tz);
        prop_assert_eq!(rows.len(), bars.len());
        let mut previous = None;
        for (row, spec) in rows.iter().zip(&bars) {
            match (row, expected_instant(tz, spec.time, previous)) {
                (Row::Bar(got), Some(instant)) => {
                    prop_assert_eq!(got.bar.ts_millis, instant);
                    prop_assert_eq!(got.local_date, spec.time.date());
                    // The bucket's text is the local date's `YYYY-MM`, written out independently.
                    let month = spec.time.format("%Y-%m").to_string();
                    prop_assert_eq!(got.bucket.to_string(), month);
                    prop_assert_eq!(got.bar.open, spec.open);
                    prop_assert_eq!(got.bar.high, spec.high);
                    prop_assert_eq!(got.bar.low, spec.low);
                    prop_assert_eq!(got.bar.close, spec.close);
                    // The nearest f64 of the text, as std parses it.
                    prop_assert_eq!(got.bar.volume, spec.volume.parse::<f64>().unwrap());
                    previous = Some(instant);
                }
                (Row::Rejected(r), None) => {
                    prop_assert_eq!(r.reason, RejectReason::NonexistentLocalTime);
                }
                (row, want) => prop_assert!(false, "{}: got {:?}, expected {:?}", spec.line(), row, want),
            }
        }
    }

    /// Whatever one line holds, it becomes exactly one row, and the lines around it are read
    /// as usual.
    #[test]
    fn any_line_is_exactly_one_row(
        tz in zone(),
        middle in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..300),
        mutate in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let good = b"2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209".to_vec();
        // Either arbitrary bytes or a valid line with one byte changed.
        let middle = match mutate {
            Some((at, byte)) if byte != b'\n' => {
                let mut line = b"2005-01-03 08:01:00,0.9911,0.9911,0.9839,0.9839,19209".to_vec();
                let i = at.index(line.len());
                line[i] = byte;
                line
            }
            _ => middle,
        };
        let last = b"2005-01-03 08:02:00,1,1,1,1,1";
        let input = [&good[..], b"\n", &middle, b"\n", last, b"\n"].concat();
        let rows = read(&input, tz);
        prop_assert_eq!(rows.iter().map(Row::line).collect::<Vec<_>>(), vec![1, 2, 3]);
        prop_assert!(matches!(rows[0], Row::Bar(_)));
    }

    /// Arbitrary bytes: no panic, and one row per line with consecutive numbers, except
    /// blank lines at the end.
    #[test]
    fn arbitrary_bytes_one_row_per_line(tz in zone(), input in garbage()) {
        let lines = model_lines(&input);
        let trailing_blanks = lines.iter().rev().take_while(|l| model_is_blank(l)).count();
        let want = lines.len() - trailing_blanks;
        let rows = read(&input, tz);
        prop_assert_eq!(rows.len(), want);
        for (i, row) in rows.iter().enumerate() {
            prop_assert_eq!(row.line(), i as u64 + 1);
        }
    }

    /// Any instant, written as the zone's local time: the bar's bucket is the local month, and
    /// its instant is the original one (the earlier one when the local time is repeated).
    #[test]
    fn bucket_is_the_local_month_of_the_instant(
        (tz, secs) in zone().prop_flat_map(|tz| {
            let start = day_1990().and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp();
            let anywhen = (0i64..(DAYS_1990_TO_2035 * 86_400)).prop_map(move |s| start + s);
            (Just(tz), prop_oneof![anywhen, instant_near_transition(tz)])
        }),
    ) {
        let instant = tz
            .timestamp_opt(secs, 0)
            .single()
            .expect("every UTC instant has one local time");
        let local = instant.naive_local();
        let line = format!("{},1,1,1,1,1\n", local.format("%Y-%m-%d %H:%M:%S"));
        let rows = read(line.as_bytes(), tz);
        let Some(Row::Bar(bar)) = rows.first() else {
            return Err(TestCaseError::fail(format!("{line:?} rejected: {rows:?}")));
        };
        prop_assert_eq!(bar.bucket.to_string(), local.format("%Y-%m").to_string());
        let earliest = tz.from_local_datetime(&local).earliest().map(|t| t.timestamp_millis());
        prop_assert_eq!(Some(bar.bar.ts_millis), earliest);
        prop_assert!(bar.bar.ts_millis <= instant.timestamp_millis());
    }
}
