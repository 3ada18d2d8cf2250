//! A delivery's identity is its content *and* its symbol: the same bytes under two symbols'
//! names load twice (a ticker change re-delivered under its new name), the same bytes under the
//! same symbol's name are a duplicate.

mod common;

use bar_ingest::account::history::Outcome;
use common::{Site, all_bars, expected_bars, history};

const TEXT: &str = "2022-06-01 09:30:00,10.0,10.5,9.5,10.25,100\n\
                    2022-06-01 09:31:00,10.25,10.75,10.0,10.5,200\n\
                    2022-06-02 09:30:00,10.5,11.0,10.25,10.75,300\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_same_content_under_two_symbols_loads_both_and_again_under_one_is_a_duplicate() {
    let (session, schema, _) = common::fresh_schema("identity").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("load", "");
    let old = site.dir.path().join("OLDT_full_1min_adjsplit.txt");
    let new = site.dir.path().join("NEWT_full_1min_adjsplit.txt");
    std::fs::write(&old, TEXT).unwrap();
    std::fs::write(&new, TEXT).unwrap();

    let (code, stderr) = common::run_load(&config, &[old.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = common::run_load(&config, &[new.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("1 loaded"),
        "the second symbol loads too: {stderr}"
    );

    let mut expected = expected_bars("NEWT", TEXT);
    expected.extend(expected_bars("OLDT", TEXT));
    assert_eq!(all_bars(&session, &schema).await, expected);

    // The same symbol and content again: a duplicate, nothing written.
    let (code, stderr) = common::run_load(&config, &[new.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 duplicate"), "{stderr}");

    let records = history(&session, &schema).await;
    let mut keys: Vec<(String, Outcome)> = records
        .iter()
        .map(|r| (r.symbol.clone(), r.outcome))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        keys,
        vec![
            ("NEWT".to_owned(), Outcome::Loaded),
            ("OLDT".to_owned(), Outcome::Loaded)
        ]
    );
    assert_eq!(
        records[0].fingerprint, records[1].fingerprint,
        "one content"
    );
    common::drop_keyspace(&session, &schema).await;
}
