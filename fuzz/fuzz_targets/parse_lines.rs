//! Fuzz target: arbitrary bytes through the line reader and the validator. Never panics, and
//! every physical line becomes exactly one row (blank lines at the very end excepted).

#![no_main]

use bar_ingest::source::lines::MAX_LINE_BYTES;
use bar_ingest::pipeline::validate::BarReader;
use libfuzzer_sys::fuzz_target;

/// Zones to read in, picked by the first input byte: hour and half-hour DST shifts, none.
const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
    chrono_tz::UTC,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let tz = ZONES[usize::from(pick) % ZONES.len()];
    // A small buffer makes lines straddle buffer boundaries often.
    let reader = std::io::BufReader::with_capacity(64, input);
    let mut rows = 0u64;
    for row in BarReader::new(reader, tz) {
        let row = row.expect("reading memory cannot fail");
        rows += 1;
        assert_eq!(row.line(), rows, "rows are numbered 1, 2, 3, ...");
    }
    assert_eq!(rows, expected_rows(input), "one row per line");
});

/// Lines of the input, less blank lines at the end: the model the reader must match.
fn expected_rows(input: &[u8]) -> u64 {
    if input.is_empty() {
        return 0;
    }
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if i == 0 {
                line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
            } else {
                line
            }
        })
        .collect();
    let blank = |l: &&&[u8]| l.len() <= MAX_LINE_BYTES && l.iter().all(u8::is_ascii_whitespace);
    let trailing = lines.iter().rev().take_while(blank).count();
    (lines.len() - trailing) as u64
}
