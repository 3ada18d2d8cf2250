//! Fuzz target: arbitrary bytes through the day-cell decoder. Never panics; what decodes holds
//! at most 1,440 bars with strictly increasing times, leaves the columns untouched on error,
//! and encodes again into a cell that decodes to the same bits.

#![no_main]

use bar_ingest::cell::{DayColumns, MAX_BARS, decode_into, encode, read_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Something already in the columns: decoding appends, and an error must leave it.
    let mut out = DayColumns::default();
    out.push(-1, 1.0, 2.0, 0.5, 1.5, 10.0);
    let header = read_header(data);
    match decode_into(data, &mut out) {
        Err(_) => assert_eq!(out.len(), 1, "a failed decode appends nothing"),
        Ok(n) => {
            let header = header.expect("a cell that decodes has a header that reads");
            assert_eq!(header.bars, n);
            assert!(n <= MAX_BARS);
            assert_eq!(out.len(), 1 + n);
            let day = out.view_range(1..1 + n).expect("the appended bars");
            assert!(day.times.windows(2).all(|w| w[0] < w[1]));
            if n > 0 {
                assert_eq!(day.times[0], header.first_millis);
                assert_eq!(day.times[n - 1], header.last_millis);
            }
            let again = encode(day).expect("decoded columns encode");
            let mut back = DayColumns::default();
            assert_eq!(decode_into(&again, &mut back), Ok(n));
            let bits = |c: &[f64]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(back.times, day.times);
            assert_eq!(bits(&back.open), bits(day.open));
            assert_eq!(bits(&back.high), bits(day.high));
            assert_eq!(bits(&back.low), bits(day.low));
            assert_eq!(bits(&back.close), bits(day.close));
            assert_eq!(bits(&back.volume), bits(day.volume));
        }
    }
});
