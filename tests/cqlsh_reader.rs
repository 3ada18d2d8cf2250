//! An independent reader agrees: `cqlsh` (from PyPI, installed into `.dev/venv` by
//! `scripts/test`) sees exactly the bars `bar-ingest load` wrote, values and UTC instants.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Site, expected_bars};

fn cqlsh() -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/venv/bin/cqlsh");
    assert!(
        path.exists(),
        "cqlsh not found at {}: run ./scripts/test, which installs it (pip install cqlsh into .dev/venv)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn cqlsh_reads_back_exactly_what_was_loaded() {
    let (session, schema, _) = common::fresh_schema("cqlsh").await;
    let site = Site::new(&schema.keyspace);
    let text = "2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n\
                2005-01-03 08:01:00,0.1234567890123,0.2,0.1,0.15,0\n\
                2005-07-01 09:30:00,123456.789,123457,123456,123456.5,9007199254740992\n\
                2005-07-01 09:31:00,1.5,1.5,1.5,1.5,1234.567891\n";
    let file = site.dir.path().join("QQ_full_1min_adjsplit.txt");
    std::fs::write(&file, text).unwrap();
    // cqlsh reads bar rows (a day cell is a blob): the `both` layout writes them beside the cells.
    let config = site.config("l", "[storage]\nlayout = \"both\"\n");
    let (code, err) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    let (host, port) = common::contact_points()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let mut got = Vec::new();
    for bucket in ["2005-01", "2005-07"] {
        let out = Command::new(cqlsh())
            .args([&host, &port, "-e"])
            .arg(format!(
                "SELECT JSON symbol, ts, open, high, low, close, volume FROM {} \
                 WHERE symbol = 'QQ' AND bucket = '{bucket}'",
                schema.bars()
            ))
            .output()
            .expect("run cqlsh");
        assert!(
            out.status.success(),
            "cqlsh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let line = line.trim();
            if !line.starts_with('{') {
                continue;
            }
            // cqlsh prints JSON numbers as the server wrote them (Java's shortest text that
            // reads back as the same double): parse the volume from that text.
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = chrono::DateTime::parse_from_str(
                v["ts"].as_str().unwrap().replace('Z', "+0000").as_str(),
                "%Y-%m-%d %H:%M:%S%.3f%z",
            )
            .unwrap()
            .timestamp_millis();
            let volume: f64 = line
                .split("\"volume\": ")
                .nth(1)
                .unwrap()
                .trim_end_matches('}')
                .parse()
                .unwrap();
            got.push((
                v["symbol"].as_str().unwrap().to_owned(),
                ts,
                v["open"].as_f64().unwrap(),
                v["high"].as_f64().unwrap(),
                v["low"].as_f64().unwrap(),
                v["close"].as_f64().unwrap(),
                volume,
            ));
        }
    }
    assert_eq!(got, expected_bars("QQ", text));
    common::drop_keyspace(&session, &schema).await;
}
