//! Helpers shared by the integration tests: the real dev node, a keyspace per test, temp dirs.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use bar_ingest::config::Settings;
use bar_ingest::store::{self, Schema};
use scylla::client::session::Session;

/// Contact point of the test node (override with `BAR_INGEST_TEST_CONTACT_POINTS`).
pub fn contact_points() -> String {
    std::env::var("BAR_INGEST_TEST_CONTACT_POINTS").unwrap_or_else(|_| "127.0.0.1:9042".into())
}

/// Settings for tests: defaults, the test node, and `keyspace`.
pub fn settings(keyspace: &str) -> Settings {
    let mut s = Settings::defaults(Some(&contact_points())).expect("test settings are valid");
    s.database.keyspace = keyspace.to_owned();
    s.consistency = scylla::statement::Consistency::One;
    s
}

/// A keyspace name no other test (or earlier run) uses: `t_<name>_<pid>_<n>`.
pub fn unique_keyspace(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let ks = format!("t_{name}_{}_{n}", std::process::id());
    assert!(ks.len() <= 48, "keyspace name too long: {ks}");
    ks
}

/// Connects to the test node or fails the test with how to start it. Never skips.
pub async fn connect(settings: &Settings) -> Session {
    match store::connect(settings).await {
        Ok(s) => s,
        Err(e) => panic!(
            "this test needs the Cassandra dev node on {}, and it is not reachable:\n{e}\n\
             start it with `./scripts/dev-db start` (or run everything with `./scripts/test`)",
            contact_points()
        ),
    }
}

/// A fresh keyspace with the schema, and a session on it. The keyspace is dropped by
/// [`drop_keyspace`] at the end of the test.
pub async fn fresh_schema(name: &str) -> (Session, Schema, Settings) {
    let ks = unique_keyspace(name);
    let settings = settings(&ks);
    let session = connect(&settings).await;
    let schema = Schema::from_config(&settings.database);
    store::init_schema(&session, &schema)
        .await
        .expect("schema creation on the test node");
    (session, schema, settings)
}

/// Drops a test keyspace.
pub async fn drop_keyspace(session: &Session, schema: &Schema) {
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", schema.keyspace), ())
        .await
        .expect("drop test keyspace");
}
