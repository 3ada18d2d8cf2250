//! Temporary: BarReader throughput on a generated file (deleted after measuring).
use bar_ingest::pipeline::validate::{BarReader, Row};
use std::io::BufReader;
fn main() {
    let path = std::env::args().nth(1).expect("path");
    for _ in 0..3 {
        let file = std::fs::File::open(&path).unwrap();
        let t = std::time::Instant::now();
        let (mut ok, mut bad, mut sum) = (0u64, 0u64, 0i64);
        for row in BarReader::new(
            BufReader::with_capacity(64 * 1024, file),
            chrono_tz::America::New_York,
        ) {
            match row.unwrap() {
                Row::Bar(b) => {
                    ok += 1;
                    sum = sum.wrapping_add(b.bar.ts_millis ^ b.bar.volume);
                }
                Row::Rejected(_) => bad += 1,
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{ok} ok {bad} rejected in {s:.3}s = {:.2} M rows/s ({sum})",
            ok as f64 / s / 1e6
        );
    }
}
