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
    s.database.consistency = scylla::statement::Consistency::One;
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

// ---- helpers for tests that run the real binary on real folders ----

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bar_ingest::account::history::{HistoryRecord, StoredHistoryRow};
use chrono::TimeZone;

/// Polls `cond` every 50 ms until it holds or `timeout` passes; panics with `what` on timeout.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async variant of [`wait_until`] for conditions that query the database.
pub async fn wait_until_async<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A temp folder with an inbox, a state root and a config naming `keyspace`.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub keyspace: String,
}

impl Site {
    pub fn new(keyspace: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
        Self {
            dir,
            keyspace: keyspace.to_owned(),
        }
    }

    pub fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Files in `state/<sub>` (done, failed, duplicates, dead-letter, processing/<instance>).
    pub fn files_in(&self, sub: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.state().join(sub))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The one `*.error.json` sidecar in `state/failed`, parsed.
    pub fn sidecar(&self) -> serde_json::Value {
        let sidecar = self
            .files_in("failed")
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".error.json"))
            .expect("a sidecar in failed/");
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).expect("the sidecar is JSON")
    }

    /// Writes a config for `instance` with short watch timings; `extra` is appended verbatim.
    pub fn config(&self, instance: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{instance}.toml"));
        let text = format!(
            "[database]\ncontact_points = [\"{cp}\"]\nkeyspace = \"{ks}\"\nconsistency = \"ONE\"\n\
             request_timeout = \"10s\"\n\n\
             [paths]\ninbox = \"{inbox}\"\nstate_root = \"{state}\"\n\n\
             [ingest]\ninstance = \"{instance}\"\nretry_initial = \"50ms\"\nretry_max = \"1s\"\n\n\
             [watch]\nrescan_interval = \"1s\"\npoll_interval = \"200ms\"\nsettle = \"500ms\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
            cp = contact_points(),
            ks = self.keyspace,
            inbox = self.inbox().display(),
            state = self.state().display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts `bar-ingest run` with `config`; its stderr goes to `<instance>.log` in the site.
    pub fn spawn_daemon(&self, config: &Path) -> Child {
        let log = std::fs::File::create(config.with_extension("log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("BAR_INGEST_CONTACT_POINTS")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon")
    }

    /// The daemon's log so far (for assertion messages).
    pub fn log(&self, instance: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{instance}.log"))).unwrap_or_default()
    }
}

/// Runs `bar-ingest load` with `config` and `args`; returns (exit code, stderr).
pub fn run_load(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(config)
        .arg("load")
        .args(args)
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .output()
        .expect("run load");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends `signal` (e.g. "TERM", "KILL") to a child process.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Sends SIGTERM and waits for the exit status.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    signal(child, "TERM");
    child.wait().expect("wait for the daemon")
}

/// One bar as the tests compare it: (symbol, UTC millis, open, high, low, close, volume).
pub type Stored = (String, i64, f64, f64, f64, f64, f64);

/// Sorts bars by symbol, then time (the order [`all_bars`] returns).
pub fn sort_bars(bars: &mut [Stored]) {
    bars.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
}

/// A `volume` cell as an `f64`, whichever type the column has (`double`, or `bigint` in a
/// table created the old way), read without the product's decoder.
pub fn volume_of(cell: scylla::value::CqlValue) -> f64 {
    use scylla::value::CqlValue;
    match cell {
        CqlValue::Double(v) => v,
        CqlValue::BigInt(v) => v as f64,
        other => panic!("volume cell of an unexpected type: {other:?}"),
    }
}

/// Every bar the keyspace holds, sorted by symbol and time, read the way its layout stores
/// them: from the day cells when the day-cell table holds any ([`cell_bars`]: layouts `days`
/// and `both`), else from the bars table ([`row_bars`]: layout `rows`).
pub async fn all_bars(session: &Session, schema: &Schema) -> Vec<Stored> {
    if all_cells(session, schema).await.is_empty() {
        row_bars(session, schema).await
    } else {
        cell_bars(session, schema).await
    }
}

/// One stored day cell: (symbol, bucket, day, bar_count, first_ts ms, last_ts ms, cell).
pub type StoredCell = (String, String, chrono::NaiveDate, i32, i64, i64, Vec<u8>);

/// Every row of the day-cell table (none when the table does not exist), sorted by symbol and
/// day, read with plain CQL.
pub async fn all_cells(session: &Session, schema: &Schema) -> Vec<StoredCell> {
    use futures_util::TryStreamExt;
    use scylla::value::CqlTimestamp;
    let statement = format!(
        "SELECT symbol, bucket, day, bar_count, first_ts, last_ts, cell FROM {}",
        schema.days()
    );
    let Ok(pager) = session.query_iter(statement, ()).await else {
        return Vec::new();
    };
    type Raw = (
        String,
        String,
        chrono::NaiveDate,
        i32,
        CqlTimestamp,
        CqlTimestamp,
        Vec<u8>,
    );
    let mut cells: Vec<StoredCell> = pager
        .rows_stream::<Raw>()
        .unwrap()
        .map_ok(|(s, b, d, n, f, l, c)| (s, b, d, n, f.0, l.0, c))
        .try_collect()
        .await
        .expect("read day cells");
    cells.sort_by(|a, b| (a.0.as_str(), a.2).cmp(&(b.0.as_str(), b.2)));
    cells
}

/// Every bar of every day cell, decoded with `bar_ingest::cell::decode_into`, sorted by symbol
/// and time. Checks each cell against its row: the bar count and first and last instants in
/// the plain columns, the bucket and day of its bars (New York time).
pub async fn cell_bars(session: &Session, schema: &Schema) -> Vec<Stored> {
    let tz = chrono_tz::America::New_York;
    let mut out = Vec::new();
    for (symbol, bucket, day, count, first, last, cell) in all_cells(session, schema).await {
        let mut cols = bar_ingest::cell::DayColumns::default();
        bar_ingest::cell::decode_into(&cell, &mut cols).expect("a stored cell decodes");
        assert_eq!(cols.len(), count as usize, "{symbol} {day}: bar_count");
        assert_eq!(cols.times.first(), Some(&first), "{symbol} {day}: first_ts");
        assert_eq!(cols.times.last(), Some(&last), "{symbol} {day}: last_ts");
        assert_eq!(
            bucket,
            day.format("%Y-%m").to_string(),
            "{symbol} {day}: bucket"
        );
        for i in 0..cols.len() {
            let t = cols.times[i];
            let local = chrono::DateTime::from_timestamp_millis(t)
                .unwrap()
                .with_timezone(&tz)
                .date_naive();
            assert_eq!(
                local, day,
                "{symbol}: bar at {t} ms is not of its cell's day"
            );
            out.push((
                symbol.clone(),
                t,
                cols.open[i],
                cols.high[i],
                cols.low[i],
                cols.close[i],
                cols.volume[i],
            ));
        }
    }
    sort_bars(&mut out);
    out
}

/// Every bar in the keyspace's bars table (one CQL row per bar), sorted by symbol and time.
pub async fn row_bars(session: &Session, schema: &Schema) -> Vec<Stored> {
    use futures_util::TryStreamExt;
    use scylla::value::{CqlTimestamp, CqlValue};
    let pager = session
        .query_iter(
            format!(
                "SELECT symbol, ts, open, high, low, close, volume FROM {}",
                schema.bars()
            ),
            (),
        )
        .await
        .expect("scan bars");
    let mut rows: Vec<Stored> = pager
        .rows_stream::<(String, CqlTimestamp, f64, f64, f64, f64, CqlValue)>()
        .unwrap()
        .map_ok(|(s, t, o, h, l, c, v)| (s, t.0, o, h, l, c, volume_of(v)))
        .try_collect()
        .await
        .expect("read bars");
    sort_bars(&mut rows);
    rows
}

/// `per_day` (at most 10) one-minute bars from 09:30 on each `YYYY-MM-DD` day, as a FirstRate
/// file's lines; `version` changes every price and volume.
pub fn bars_at_open(days: &[&str], per_day: u32, version: u32) -> String {
    assert!(per_day <= 10, "09:3M holds ten minutes");
    let mut out = String::new();
    for day in days {
        for minute in 0..per_day {
            let p = 10.0 + f64::from(version) + f64::from(minute) / 100.0;
            out.push_str(&format!(
                "{day} 09:3{minute}:00,{p},{h},{l},{p},{v}\n",
                h = p + 0.5,
                l = p - 0.5,
                v = 100 * version + minute,
            ));
        }
    }
    out
}

/// What a file should put in the database, computed independently of the loader: each
/// `YYYY-MM-DD HH:MM:SS,o,h,l,c,v` line read with chrono-tz in New York time (the volume as
/// the nearest `f64` of its text, as every number).
pub fn expected_bars(symbol: &str, text: &str) -> Vec<Stored> {
    let tz = chrono_tz::America::New_York;
    let mut out: Vec<Stored> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
            let local = chrono::NaiveDateTime::parse_from_str(f[0], "%Y-%m-%d %H:%M:%S").unwrap();
            let utc = tz
                .from_local_datetime(&local)
                .earliest()
                .unwrap()
                .timestamp_millis();
            (
                symbol.to_owned(),
                utc,
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
            )
        })
        .collect();
    sort_bars(&mut out);
    out
}

/// Every load-history row of the keyspace (a full-table read: test tooling, not product code).
pub async fn history(session: &Session, schema: &Schema) -> Vec<HistoryRecord> {
    use futures_util::TryStreamExt;
    let select = format!("SELECT * FROM {}", schema.history());
    let rows: Vec<StoredHistoryRow> = session
        .query_iter(select, ())
        .await
        .expect("read the load history")
        .rows_stream::<StoredHistoryRow>()
        .expect("load-history rows have the columns of StoredHistoryRow")
        .try_collect()
        .await
        .expect("read the load history");
    rows.into_iter().map(HistoryRecord::from).collect()
}

/// Asserts rows_in = rows_written + rows_rejected for every loaded file.
pub fn assert_reconciles(records: &[HistoryRecord]) {
    for r in records {
        if r.outcome == bar_ingest::account::history::Outcome::Loaded {
            assert_eq!(
                r.rows_in,
                r.rows_written + r.rows_rejected,
                "counts do not reconcile for {}: {r:?}",
                r.file_name
            );
        }
    }
}

/// HTTP GET of `http://addr/path_and_query`: (status, body); non-2xx statuses are answers, not
/// errors. Enough for /metrics, /readyz and Prometheus' API.
pub fn http_get(
    addr: std::net::SocketAddr,
    path_and_query: &str,
) -> std::io::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .get(format!("http://{addr}{path_and_query}"))
        .call()
        .map_err(std::io::Error::other)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(std::io::Error::other)?;
    Ok((status, body))
}

/// A loader on the test node with `settings`, its dead letters in `dead_letter_dir`; fails the
/// test with how to start the node if it cannot connect.
pub async fn loader(
    settings: &Settings,
    dead_letter_dir: &Path,
) -> std::sync::Arc<bar_ingest::ingest::Loader> {
    use bar_ingest::ingest::{Loader, WaitForDatabase};
    let cancel = tokio_util::sync::CancellationToken::new();
    let health = std::sync::Arc::new(bar_ingest::telemetry::health::Health::default());
    match Loader::connect(
        settings,
        health,
        dead_letter_dir.to_owned(),
        WaitForDatabase::No,
        &cancel,
    )
    .await
    {
        Ok(Some(loader)) => loader,
        Ok(None) => unreachable!("the token is never cancelled"),
        Err(e) => panic!(
            "this test needs the Cassandra dev node on {}: {e}\n\
             start it with `./scripts/dev-db start` (or run everything with `./scripts/test`)",
            contact_points()
        ),
    }
}

/// A loopback port free a moment ago (for a listener the code under test binds itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

// ---- the daemon run in-process, and its metrics ----

/// `daemon::run(settings, shutdown, reloads)` on a task, its shutdown future resolved by
/// [`Self::stop`], reloads sent by [`Self::reload`].
pub struct InProcess {
    stop: tokio::sync::oneshot::Sender<()>,
    reloads: tokio::sync::mpsc::Sender<bar_ingest::daemon::Reload>,
    task: tokio::task::JoinHandle<Result<(), bar_ingest::daemon::DaemonError>>,
}

impl InProcess {
    /// Starts the daemon on a task of the current runtime.
    pub fn start(settings: Settings) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (reloads, requests) = tokio::sync::mpsc::channel(1);
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(bar_ingest::daemon::run(settings, shutdown, requests));
        Self {
            stop,
            reloads,
            task,
        }
    }

    /// Asks the daemon to apply `settings` (as SIGHUP does with the file read again) and
    /// returns what it did; panics if it does not answer within 60 s.
    pub async fn reload(
        &self,
        settings: Result<Settings, bar_ingest::config::ConfigError>,
    ) -> Result<bar_ingest::config::reload::Changes, bar_ingest::config::ConfigError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let request = bar_ingest::daemon::Reload {
            settings,
            done: Some(done),
        };
        self.reloads.send(request).await.expect("the daemon runs");
        tokio::time::timeout(Duration::from_secs(60), answer)
            .await
            .expect("the daemon answers a reload within 60 s")
            .expect("the daemon answers")
    }

    /// Resolves the shutdown future and returns what `run` returned; panics if it does not
    /// return within 30 s or its task panicked.
    pub async fn stop(self) -> Result<(), bar_ingest::daemon::DaemonError> {
        let _ = self.stop.send(());
        drop(self.reloads);
        Self::ended(
            self.task,
            "run returns soon after its shutdown future resolves",
        )
        .await
    }

    /// What `run` returned on its own, its shutdown future never resolved (a start-up failure);
    /// panics if it does not return within 30 s.
    pub async fn ended_on_its_own(self) -> Result<(), bar_ingest::daemon::DaemonError> {
        let _keep_running = (self.stop, self.reloads);
        Self::ended(self.task, "run returns at once").await
    }

    async fn ended(
        task: tokio::task::JoinHandle<Result<(), bar_ingest::daemon::DaemonError>>,
        what: &str,
    ) -> Result<(), bar_ingest::daemon::DaemonError> {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect(what)
            .expect("the daemon task did not panic")
    }
}

/// Every sample of /metrics at `addr`, by series (name with labels) → value.
pub fn scrape(addr: std::net::SocketAddr) -> std::collections::BTreeMap<String, f64> {
    let (status, body) = http_get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The address of /metrics, /healthz and /readyz, from the daemon's text log (colour codes
/// removed).
pub fn endpoint_from_log(log: &str) -> Option<std::net::SocketAddr> {
    let line = log
        .lines()
        .find(|l| l.contains("serving /metrics, /healthz and /readyz"))?;
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequence: ESC [ parameters final-letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))?
        .parse()
        .ok()
}

/// Writes one day cell per entry (`cell::encode` of the columns) of `symbol` straight into the
/// day table at write timestamp 1, as the day-cell write path will; returns the cells written.
pub async fn write_day_cells(
    session: &Session,
    schema: &Schema,
    symbol: &str,
    days: &[(chrono::NaiveDate, bar_ingest::cell::DayColumns)],
) -> usize {
    use bar_ingest::cell;
    use bar_ingest::model::{Bucket, Symbol};
    let statements = store::DayStatements::prepare(session, schema)
        .await
        .expect("prepare the day statements");
    let symbol = Symbol::new(symbol).expect("a valid symbol");
    for (day, columns) in days {
        let bytes = cell::encode(columns.view()).expect("valid columns encode");
        let header = cell::read_header(&bytes).expect("an encoded header reads");
        let bucket = Bucket::of_local_date(*day).to_string();
        let values =
            store::DayStatements::insert_values(&symbol, &bucket, *day, &header, &bytes, 1);
        session
            .execute_unpaged(&statements.insert, values)
            .await
            .expect("insert a day cell");
    }
    days.len()
}

/// Writes `bars` (one symbol, strictly increasing times) to the bars table, one row per bar,
/// 64 inserts in flight (the bucket is the bar's exchange-local month in `tz`).
pub async fn insert_bar_rows(
    session: &Session,
    schema: &Schema,
    tz: chrono_tz::Tz,
    symbol: &bar_ingest::model::Symbol,
    bars: &[bar_ingest::model::Bar],
) {
    use futures_util::StreamExt;
    let statements = store::BarStatements::prepare(session, schema)
        .await
        .unwrap();
    let statements = &statements;
    futures_util::stream::iter(bars)
        .map(|bar| async move {
            let bucket = exchange_month(tz, bar.ts_millis);
            let values =
                store::BarStatements::insert_values(symbol, &bucket, bar, statements.volume_column);
            session
                .execute_unpaged(&statements.insert, values)
                .await
                .map(|_| ())
        })
        .buffer_unordered(64)
        .for_each(|r| async move { r.expect("insert a bar row") })
        .await;
}

/// Writes `bars` (one symbol, strictly increasing times) to the day-cell table: one cell per
/// exchange-local day in `tz` (encoded with `cell::encode`), at `write_timestamp`.
pub async fn insert_day_cells(
    session: &Session,
    schema: &Schema,
    tz: chrono_tz::Tz,
    symbol: &bar_ingest::model::Symbol,
    bars: &[bar_ingest::model::Bar],
    write_timestamp: i64,
) {
    use bar_ingest::cell::{self, DayColumns};
    let statements = store::DayStatements::prepare(session, schema)
        .await
        .unwrap();
    let day_of = |ms: i64| bar_ingest::exchange_time::local_date(tz, ms);
    let mut start = 0;
    while start < bars.len() {
        let day = day_of(bars[start].ts_millis);
        let end = start + bars[start..].partition_point(|b| day_of(b.ts_millis) == day);
        let mut columns = DayColumns::with_capacity(end - start);
        for b in &bars[start..end] {
            columns.push(b.ts_millis, b.open, b.high, b.low, b.close, b.volume);
        }
        let bytes = cell::encode(columns.view()).expect("encode a day cell");
        let header = cell::read_header(&bytes).unwrap();
        let bucket = day.format("%Y-%m").to_string();
        let values = store::DayStatements::insert_values(
            symbol,
            &bucket,
            day,
            &header,
            &bytes,
            write_timestamp,
        );
        session
            .execute_unpaged(&statements.insert, values)
            .await
            .expect("insert a day cell");
        start = end;
    }
}

/// The exchange-local month (`YYYY-MM`) of an instant.
pub fn exchange_month(tz: chrono_tz::Tz, ms: i64) -> String {
    bar_ingest::exchange_time::local_date(tz, ms)
        .format("%Y-%m")
        .to_string()
}
