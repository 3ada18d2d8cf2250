//! Unit and property tests of the codec: round trips bit for bit, the checks on encode, the
//! refusals on decode (never a panic), and the golden vectors of `docs/day-cell-format.md`.

use proptest::prelude::*;

use super::*;

/// A minute, in milliseconds.
const MINUTE: i64 = 60_000;
/// 2024-12-02 14:30 UTC (09:30 in New York).
const OPEN_2024_12_02: i64 = 1_733_149_800_000;

/// Bit-exact equality, NaN payloads and signed zeros included.
fn same_bits(a: &DayColumns, b: &DayColumns) -> bool {
    let f = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
    };
    a.times == b.times
        && f(&a.open, &b.open)
        && f(&a.high, &b.high)
        && f(&a.low, &b.low)
        && f(&a.close, &b.close)
        && f(&a.volume, &b.volume)
}

fn round_trip(day: &DayColumns) -> DayColumns {
    let cell = encode(day.view()).expect("valid columns encode");
    let mut back = DayColumns::default();
    let n = decode_into(&cell, &mut back).expect("an encoded cell decodes");
    assert_eq!(n, day.len());
    back
}

/// A short regular-session day: 4-decimal prices, whole volumes, one missing minute.
fn short_day() -> DayColumns {
    let mut d = DayColumns::default();
    d.push(OPEN_2024_12_02, 187.12, 187.5, 187.0, 187.4567, 1200.0);
    d.push(
        OPEN_2024_12_02 + MINUTE,
        187.4567,
        187.6,
        187.3,
        187.31,
        980.0,
    );
    d.push(
        OPEN_2024_12_02 + 3 * MINUTE,
        187.31,
        187.31,
        186.9,
        187.0,
        1534.0,
    );
    d
}

/// The descriptors of an encoded cell: (code, scale) for time, open .. volume.
fn descriptors(cell: &[u8]) -> Vec<(u8, u8)> {
    cell[20..32].chunks(2).map(|c| (c[0], c[1])).collect()
}

#[test]
fn a_normal_day_round_trips_as_decimal_deltas() {
    let day = short_day();
    let cell = encode(day.view()).expect("encodes");
    assert_eq!(
        descriptors(&cell),
        [(0, 0), (2, 4), (2, 2), (2, 1), (2, 4), (1, 0)],
        "minutes; prices as decimal deltas at their smallest scales; volume as whole numbers"
    );
    assert!(same_bits(&round_trip(&day), &day));
}

#[test]
fn awkward_floats_round_trip_as_raw_doubles() {
    let nan_payload = f64::from_bits(0x7ff8_dead_beef_0001);
    let signalling = f64::from_bits(0xfff0_0000_0000_0001);
    let mut day = DayColumns::default();
    day.push(
        0,
        1.0 / 3.0,
        -0.0,
        f64::INFINITY,
        nan_payload,
        f64::MIN_POSITIVE / 3.0,
    );
    day.push(MINUTE, 2.0, f64::NEG_INFINITY, signalling, 5e-324, -0.0);
    day.push(
        MINUTE + 1,
        f64::MAX,
        f64::MIN,
        0.1 + 0.2,
        1e300,
        1234.567891,
    );
    let cell = encode(day.view()).expect("encodes");
    assert_eq!(
        descriptors(&cell),
        [(1, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)],
        "milliseconds; every value column raw"
    );
    assert!(same_bits(&round_trip(&day), &day));
}

#[test]
fn fractional_volumes_are_decimal_scaled() {
    let mut day = short_day();
    day.volume = vec![1234.567891, 0.5, 17.0];
    let cell = encode(day.view()).expect("encodes");
    assert_eq!(descriptors(&cell)[5], (1, 6));
    assert!(same_bits(&round_trip(&day), &day));
}

#[test]
fn extreme_instants_round_trip() {
    let mut day = DayColumns::default();
    day.push(i64::MIN, 1.0, 1.0, 1.0, 1.0, 1.0);
    day.push(i64::MAX, 1.0, 1.0, 1.0, 1.0, 1.0);
    assert!(same_bits(&round_trip(&day), &day));
}

#[test]
fn empty_and_one_bar_days_round_trip() {
    let empty = DayColumns::default();
    let cell = encode(empty.view()).expect("encodes");
    assert_eq!(cell.len(), HEADER_BYTES);
    assert!(same_bits(&round_trip(&empty), &empty));
    let mut one = DayColumns::default();
    one.push(OPEN_2024_12_02, 10.0, 10.5, 9.75, 10.25, 100.0);
    let back = round_trip(&one);
    assert!(same_bits(&back, &one));
    let header = read_header(&encode(one.view()).expect("encodes")).expect("reads");
    assert_eq!(header.first_millis, header.last_millis);
}

#[test]
fn a_full_25_hour_day_of_1500_bars_encodes_and_1501_is_refused() {
    let mut day = DayColumns::default();
    for i in 0..MAX_BARS as i64 {
        let p = 100.0 + (i % 17) as f64 / 100.0;
        day.push(i * MINUTE, p, p + 0.01, p - 0.01, p, (i * 37 % 1000) as f64);
    }
    assert!(same_bits(&round_trip(&day), &day));
    day.push(MAX_BARS as i64 * MINUTE, 1.0, 1.0, 1.0, 1.0, 1.0);
    assert_eq!(
        encode(day.view()),
        Err(CellError::TooManyBars { bars: MAX_BARS + 1 })
    );
}

#[test]
fn encode_refuses_unequal_columns_and_unordered_times() {
    let mut day = short_day();
    day.low.pop();
    assert_eq!(
        encode(day.view()),
        Err(CellError::ColumnLengths {
            column: "low",
            len: 2,
            times: 3
        })
    );
    let mut day = short_day();
    day.times[2] = day.times[1];
    assert!(matches!(
        encode(day.view()),
        Err(CellError::TimesNotIncreasing { index: 2, .. })
    ));
    let mut day = short_day();
    day.times[1] = day.times[0] - 1;
    assert!(matches!(
        encode(day.view()),
        Err(CellError::TimesNotIncreasing { index: 1, .. })
    ));
}

#[test]
fn decode_appends_and_leaves_the_columns_as_they_were_on_error() {
    let day = short_day();
    let cell = encode(day.view()).expect("encodes");
    let mut out = DayColumns::default();
    decode_into(&cell, &mut out).expect("decodes");
    decode_into(&cell, &mut out).expect("decodes again");
    assert_eq!(out.len(), 6);
    assert_eq!(out.times[3..], day.times[..]);
    let mut bad = cell.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let before = out.clone();
    assert!(decode_into(&bad, &mut out).is_err());
    assert!(same_bits(&out, &before));
}

#[test]
fn read_header_needs_only_the_summary() {
    let day = short_day();
    let cell = encode(day.view()).expect("encodes");
    let header = read_header(&cell[..SUMMARY_BYTES]).expect("reads");
    assert_eq!(
        header,
        CellHeader {
            version: FORMAT_VERSION,
            bars: 3,
            first_millis: OPEN_2024_12_02,
            last_millis: OPEN_2024_12_02 + 3 * MINUTE,
        }
    );
}

#[test]
fn stored_and_zstd_bodies_decode_alike() {
    let mut day = DayColumns::default();
    for i in 0..390 {
        let p = 50.0 + f64::from(i % 13) / 100.0;
        day.push(OPEN_2024_12_02 + i64::from(i) * MINUTE, p, p, p, p, 100.0);
    }
    let stored = encode(day.view()).expect("encodes");
    let zstd = encode_with(day.view(), Compression::Zstd { level: 3 }).expect("encodes");
    assert_eq!((stored[1], zstd[1]), (0, 1));
    assert!(zstd.len() < stored.len());
    for cell in [stored, zstd] {
        let mut back = DayColumns::default();
        decode_into(&cell, &mut back).expect("decodes");
        assert!(same_bits(&back, &day));
    }
}

#[test]
fn every_prefix_of_a_cell_is_refused() {
    for compression in [Compression::Stored, Compression::Zstd { level: 3 }] {
        let cell = encode_with(short_day().view(), compression).expect("encodes");
        for len in 0..cell.len() {
            let mut out = DayColumns::default();
            assert!(
                decode_into(&cell[..len], &mut out).is_err(),
                "prefix of {len}"
            );
            assert!(out.is_empty());
        }
    }
}

#[test]
fn bad_headers_are_refused_with_what_is_wrong() {
    let cell = encode_with(short_day().view(), Compression::Stored).expect("encodes");
    let decode = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut c = cell.clone();
        edit(&mut c);
        decode_into(&c, &mut DayColumns::default())
    };
    assert_eq!(
        decode(&|c| c[0] = 2),
        Err(CellError::UnknownVersion { found: 2 })
    );
    assert_eq!(
        decode(&|c| c[1] = 7),
        Err(CellError::UnknownCompression { code: 7 })
    );
    assert_eq!(
        decode(&|c| c[2..4].copy_from_slice(&1501u16.to_le_bytes())),
        Err(CellError::TooManyBars { bars: 1501 })
    );
    assert_eq!(
        decode(&|c| c[24] = 3),
        Err(CellError::BadEncoding {
            column: "high",
            code: 3,
            scale: 2
        })
    );
    assert_eq!(
        decode(&|c| c[23] = MAX_DECIMAL_SCALE + 1),
        Err(CellError::BadEncoding {
            column: "open",
            code: 2,
            scale: MAX_DECIMAL_SCALE + 1
        })
    );
    assert!(matches!(
        decode(&|c| c[32..36].copy_from_slice(&u32::MAX.to_le_bytes())),
        Err(CellError::BodyLength { bars: 3, .. })
    ));
    assert!(matches!(
        decode(&|c| c.push(0)),
        Err(CellError::StoredLength { .. })
    ));
    assert!(matches!(
        decode(&|c| c[12] ^= 1),
        Err(CellError::LastInstant { .. })
    ));
    assert!(matches!(
        decode(&|c| c[12..20].copy_from_slice(&0i64.to_le_bytes())),
        Err(CellError::BadHeader { .. })
    ));
    // The body's last byte cut off (and the declared length with it): the last column runs
    // past the end of the body.
    assert!(matches!(
        decode(&|c| {
            let declared = u32::from_le_bytes([c[32], c[33], c[34], c[35]]) - 1;
            c[32..36].copy_from_slice(&declared.to_le_bytes());
            c.pop();
        }),
        Err(CellError::BodyTruncated {
            column: "volume",
            ..
        })
    ));
}

#[test]
fn a_body_with_bytes_left_over_is_refused() {
    let cell = encode_with(short_day().view(), Compression::Stored).expect("encodes");
    let mut c = cell.clone();
    let declared = u32::from_le_bytes([c[32], c[33], c[34], c[35]]) + 1;
    c[32..36].copy_from_slice(&declared.to_le_bytes());
    c.push(0);
    assert_eq!(
        decode_into(&c, &mut DayColumns::default()),
        Err(CellError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn a_zero_time_step_is_refused() {
    // One bar a minute after another, then the step rewritten to zero (and the last instant
    // made to agree): strictly increasing is a rule of the format, not only of the encoder.
    let mut day = DayColumns::default();
    day.push(0, 1.0, 1.0, 1.0, 1.0, 1.0);
    day.push(MINUTE, 1.0, 1.0, 1.0, 1.0, 1.0);
    let mut c = encode_with(day.view(), Compression::Stored).expect("encodes");
    c[HEADER_BYTES] = 0;
    assert_eq!(
        decode_into(&c, &mut DayColumns::default()),
        Err(CellError::BadTimeStep { index: 1 })
    );
}

/// Any f64, weighted towards what bars hold and what breaks codecs.
fn awkward_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (0i64..10_000_000, 0u8..7).prop_map(|(n, k)| n as f64 / 10f64.powi(i32::from(k))),
        1 => any::<f64>(),
        1 => any::<u64>().prop_map(f64::from_bits),
        1 => prop::sample::select(vec![
            -0.0,
            0.0,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            1.0 / 3.0,
            9_007_199_254_740_992.0,
            9_007_199_254_740_993.0,
        ]),
    ]
}

/// A column: all short decimals (the common case), or anything.
fn column(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((0i64..100_000_000).prop_map(|n| n as f64 / 1e4), n),
        prop::collection::vec(awkward_f64(), n),
    ]
}

prop_compose! {
    /// A day of up to 80 bars: times at whole minutes or any milliseconds, from anywhere in the
    /// i64 range that leaves room for the steps.
    fn day()(n in 0usize..80, minutes in any::<bool>(), start in -(1i64 << 62)..(1i64 << 62))
        (steps in prop::collection::vec(1i64..5_000_000, n), columns in prop::collection::vec(column(n), 5),
         minutes in Just(minutes), start in Just(start)) -> DayColumns {
        let mut t = start;
        let mut d = DayColumns::default();
        for (i, step) in steps.iter().enumerate() {
            t += if minutes { (step % 30 + 1) * MINUTE } else { *step };
            d.push(t, columns[0][i], columns[1][i], columns[2][i], columns[3][i], columns[4][i]);
        }
        d
    }
}

proptest! {
    #[test]
    fn any_day_round_trips_bit_for_bit(day in day(), stored in any::<bool>()) {
        let compression = if stored { Compression::Stored } else { Compression::Zstd { level: 3 } };
        let cell = encode_with(day.view(), compression).expect("valid columns encode");
        let header = read_header(&cell).expect("header reads");
        prop_assert_eq!(header.bars, day.len());
        let mut back = DayColumns::default();
        prop_assert_eq!(decode_into(&cell, &mut back), Ok(day.len()));
        prop_assert!(same_bits(&back, &day));
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut out = DayColumns::default();
        match decode_into(&bytes, &mut out) {
            Ok(n) => prop_assert_eq!(out.len(), n),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }

    #[test]
    fn damaged_cells_decode_or_fail_without_panic(
        day in day(),
        stored in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let compression = if stored { Compression::Stored } else { Compression::Zstd { level: 3 } };
        let mut cell = encode_with(day.view(), compression).expect("valid columns encode");
        for (at, byte) in edits {
            let i = at.index(cell.len());
            cell[i] = byte;
        }
        let mut out = DayColumns::default();
        match decode_into(&cell, &mut out) {
            Ok(n) => {
                prop_assert_eq!(out.len(), n);
                prop_assert!(n <= MAX_BARS);
                prop_assert!(out.times.windows(2).all(|w| w[0] < w[1]));
            }
            Err(_) => prop_assert!(out.is_empty()),
        }
    }
}

/// One golden vector of the spec: its name, its cell and the values it decodes to.
struct Golden {
    name: String,
    /// How the spec says the cell was encoded: `default` ([`encode`]) or `zstd-3`.
    encoder: String,
    cell: String,
    day: DayColumns,
}

/// A value as the spec writes it: a decimal number (or `inf`, `-0`), or `0x` and the bits.
fn golden_value(token: &str) -> f64 {
    match token.strip_prefix("0x") {
        Some(hex) => f64::from_bits(u64::from_str_radix(hex, 16).expect("hex bits")),
        None => token.parse().expect("a number"),
    }
}

/// The ```golden blocks of docs/day-cell-format.md.
fn goldens() -> Vec<Golden> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/day-cell-format.md");
    let text = std::fs::read_to_string(path).expect("the spec is readable");
    let mut out = Vec::new();
    let mut block: Option<Golden> = None;
    for line in text.lines() {
        if line == "```golden" {
            block = Some(Golden {
                name: String::new(),
                encoder: "default".into(),
                cell: String::new(),
                day: DayColumns::default(),
            });
            continue;
        }
        let Some(g) = block.as_mut() else { continue };
        if line == "```" {
            out.extend(block.take());
            continue;
        }
        let (key, rest) = line.split_once(':').expect("key: values");
        let tokens = rest.split_whitespace();
        match key {
            "name" => g.name = rest.trim().to_string(),
            "encoder" => g.encoder = rest.trim().to_string(),
            "cell" => g.cell.extend(tokens),
            "times" => g
                .day
                .times
                .extend(tokens.map(|t| t.parse::<i64>().expect("an instant"))),
            "open" => g.day.open.extend(tokens.map(golden_value)),
            "high" => g.day.high.extend(tokens.map(golden_value)),
            "low" => g.day.low.extend(tokens.map(golden_value)),
            "close" => g.day.close.extend(tokens.map(golden_value)),
            "volume" => g.day.volume.extend(tokens.map(golden_value)),
            other => panic!("unknown key {other:?} in a golden block"),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn golden_vectors_encode_to_the_spec_bytes_and_decode_back() {
    let goldens = goldens();
    let names: Vec<&str> = goldens.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "regular-day",
            "fractional-volumes",
            "non-decimal-prices",
            "one-bar",
            "empty"
        ]
    );
    for g in &goldens {
        let compression = match g.encoder.as_str() {
            "default" => DEFAULT_COMPRESSION,
            "zstd-3" => Compression::Zstd { level: 3 },
            other => panic!("unknown encoder {other:?}"),
        };
        let cell = encode_with(g.day.view(), compression).expect("golden values encode");
        assert_eq!(hex(&cell), g.cell, "{}: encoded bytes", g.name);
        let mut back = DayColumns::default();
        assert_eq!(decode_into(&unhex(&g.cell), &mut back), Ok(g.day.len()));
        assert!(same_bits(&back, &g.day), "{}: decoded values", g.name);
    }
    assert_eq!(
        goldens[0].cell.get(2..4),
        Some("01"),
        "the regular day is compressed"
    );
}

/// `decode_times` gives exactly the times of a full decode, stored or zstd, and appends.
#[test]
fn decode_times_matches_the_full_decode() {
    let day = short_day();
    for compression in [Compression::Stored, Compression::Zstd { level: 3 }] {
        let cell = encode_with(day.view(), compression).unwrap();
        let mut times = vec![7];
        assert_eq!(decode_times(&cell, &mut times).unwrap(), day.len());
        assert_eq!(times[0], 7);
        assert_eq!(&times[1..], &day.times[..]);
    }
    let empty = encode(DayColumns::default().view()).unwrap();
    let mut times = Vec::new();
    assert_eq!(decode_times(&empty, &mut times).unwrap(), 0);
    let cell = encode(day.view()).unwrap();
    let truncated = &cell[..cell.len() - 1];
    assert!(decode_times(truncated, &mut times).is_err());
    assert!(times.is_empty());
}
