//! Operations, checked with the real tools against the real binary: a real Prometheus scrapes a
//! daemon during a load and evaluates every dashboard and alert expression; promtool checks the
//! rules, the config and the scraped metrics; Grafana's dashboard-linter checks the dashboard;
//! systemd-analyze verifies and scores the unit; a test socket plays systemd's notify socket;
//! docker-compose validates the compose file.
//!
//! No test is skipped: a missing tool fails its test with how to install it
//! (`scripts/ops-tools` installs all of them).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bar_gen::GenSpec;
use chrono::NaiveDate;
use common::Site;
use serde_json::Value;

/// Generous: the node, Prometheus and the build share two cores with other tests.
const WAIT: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Finds `name` on PATH or in `.dev/tools/bin` (where `scripts/ops-tools` builds the Go tools),
/// or fails the test saying how to install it.
fn tool(name: &str) -> PathBuf {
    let local = repo().join(".dev/tools/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([local])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed; this test needs it. Install every ops tool with \
                 `./scripts/ops-tools` (Debian packages prometheus, docker-compose and systemd; \
                 dashboard-linter built with Go into .dev/tools/bin)"
            )
        })
}

/// Runs `cmd`; returns (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free loopback port (bound, then released for the process that needs it).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A daemon that is killed if the test ends without stopping it (a failed assertion).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().is_ok_and(|s| s.is_none()) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `bar-ingest --log-format json run` with `env`; stderr goes to `<config>.log`, as with
/// [`Site::spawn_daemon`], so that [`Site::log`] reads it.
fn spawn_daemon(config: &Path, env: &[(&str, &str)]) -> Daemon {
    let log = std::fs::File::create(config.with_extension("log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bar-ingest"));
    cmd.arg("--config")
        .arg(config)
        .args(["--log-format", "json", "run"])
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon(cmd.spawn().expect("start the daemon"))
}

/// The daemon's JSON log lines so far.
fn json_log(site: &Site, instance: &str) -> Vec<Value> {
    site.log(instance)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The address the daemon serves /metrics on, from its log.
fn wait_for_endpoint(site: &Site, instance: &str, daemon: &mut Daemon) -> SocketAddr {
    let mut addr = None;
    common::wait_until(WAIT, "the daemon to log its metrics address", || {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the daemon exited:\n{}",
            site.log(instance)
        );
        addr = json_log(site, instance).iter().find_map(|l| {
            (l["message"] == "serving /metrics, /healthz and /readyz")
                .then(|| l["address"].as_str()?.parse().ok())
                .flatten()
        });
        addr.is_some()
    });
    addr.unwrap()
}

/// Rewrites a line of the test config (keys are unique in it).
fn set_key(config: &Path, key: &str, line: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} =")) {
                line.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(config, out.join("\n") + "\n").unwrap();
}

// ---------------------------------------------------------------- Prometheus and the queries

/// A Prometheus server run from its binary on a loopback port, with its data in a temp dir.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `deploy/prometheus/prometheus.yml` and `alerts.yml`, changed only
    /// where a test must: the target is `target`, scrape and rule evaluation every second.
    fn start(target: SocketAddr) -> Self {
        let bin = tool("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let deploy = repo().join("deploy/prometheus");
        let config = std::fs::read_to_string(deploy.join("prometheus.yml")).unwrap();
        for needle in [
            "bar-ingest:9464",
            "scrape_interval: 15s",
            "evaluation_interval: 15s",
        ] {
            assert!(
                config.contains(needle),
                "prometheus.yml changed: update this test ({needle})"
            );
        }
        let config = config
            .replace("bar-ingest:9464", &target.to_string())
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        std::fs::copy(deploy.join("alerts.yml"), dir.path().join("alerts.yml")).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
            .parse()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut p = Self { child, addr, dir };
        common::wait_until(WAIT, "Prometheus ready", || {
            assert!(
                p.child.try_wait().unwrap().is_none(),
                "prometheus exited:\n{}",
                p.log()
            );
            common::http_get(p.addr, "/-/ready").is_ok_and(|(s, _)| s == 200)
        });
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>`: the `data` of a successful answer; panics on an error answer.
    fn api(&self, path: &str) -> Value {
        let (status, body) = common::http_get(self.addr, &format!("/api/v1/{path}")).unwrap();
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}), status {status}: {body}"));
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    /// Evaluates `expr` now; returns the result (an array for vectors, `[t, v]` for scalars).
    fn query(&self, expr: &str) -> Value {
        let data = self.api(&format!("query?query={}", url_encode(expr)));
        data["result"].clone()
    }

    /// The first sample's value of `expr`, if any.
    fn value(&self, expr: &str) -> Option<f64> {
        let r = self.query(expr);
        r.get(0)?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn non_empty(result: &Value) -> bool {
    match result {
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// The parts of an alert expression that must return data on a healthy system. Alert
/// expressions are true only in trouble, so the whole expression returns nothing here; what
/// must exist is the data they compare. The rule: split the expression at its top-level
/// `and` / `or` / `unless`; drop each part's trailing comparison against a number
/// (`> 0.01`, `== 0`); take `absent(X)` as `X`. Each remaining part must return a non-empty
/// result: the metric exists with the labels the rule selects, and the functions over it have
/// enough samples.
fn data_parts(expr: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'(' | b'[' | b'{' if !quoted => depth += 1,
            b')' | b']' | b'}' if !quoted => depth -= 1,
            c if !quoted && depth == 0 && c.is_ascii_whitespace() => {
                let rest = &expr[i + 1..];
                if let Some(word) = ["and", "or", "unless"].iter().find(|w| {
                    rest.starts_with(*w)
                        && rest[w.len()..].starts_with(|c: char| c.is_whitespace() || c == '(')
                }) {
                    parts.push(expr[start..i].to_owned());
                    i += 1 + word.len();
                    start = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(expr[start..].to_owned());
    parts
        .into_iter()
        .map(|p| {
            let p = strip_number_comparison(p.trim());
            match p.strip_prefix("absent(").and_then(|s| s.strip_suffix(')')) {
                Some(inner) => inner.trim().to_owned(),
                None => p.to_owned(),
            }
        })
        .collect()
}

/// `X > 0.01` → `X` (only a top-level comparison whose right side is a number).
fn strip_number_comparison(part: &str) -> &str {
    let (mut depth, mut quoted) = (0i32, false);
    let mut cut = None;
    for (i, c) in part.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' | '[' | '{' if !quoted => depth += 1,
            ')' | ']' | '}' if !quoted => depth -= 1,
            '=' | '!' | '>' | '<' if !quoted && depth == 0 => {
                let op_len = if part[i + 1..].starts_with('=') { 2 } else { 1 };
                if matches!(c, '=' | '!') && op_len == 1 {
                    continue;
                }
                if part[i + op_len..].trim().parse::<f64>().is_ok() {
                    cut = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    match cut {
        Some(i) => part[..i].trim(),
        None => part,
    }
}

#[test]
fn data_parts_follow_the_documented_rule() {
    assert_eq!(
        data_parts(r#"up{job="x"} == 0 or absent(up{job="x"})"#),
        [r#"up{job="x"}"#, r#"up{job="x"}"#]
    );
    assert_eq!(
        data_parts("sum(rate(a[5m])) / (sum(rate(b[5m])) + sum(rate(a[5m]))) > 0.01"),
        ["sum(rate(a[5m])) / (sum(rate(b[5m])) + sum(rate(a[5m])))"]
    );
    assert_eq!(
        data_parts("min_over_time(f[30m]) > 0\nand deriv(b[30m]) >= 0"),
        ["min_over_time(f[30m])", "deriv(b[30m])"]
    );
    assert_eq!(
        data_parts(r#"x{outcome=~"failed|or"} > 0"#),
        [r#"x{outcome=~"failed|or"}"#]
    );
}

/// Small files with every outcome the dashboard shows: a generated file and a hand-written
/// one with two bad rows (loaded, with rejects), and an empty file (failed/).
fn write_inbox_files(inbox: &Path) {
    let spec = GenSpec {
        symbols: vec!["OPS".into()],
        start: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
        end: NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(),
        seed: 11,
    };
    let mut buf = Vec::new();
    bar_gen::write_symbol(&spec, "OPS", &mut buf).unwrap();
    std::fs::write(inbox.join(bar_gen::file_name("OPS")), buf).unwrap();
    let mixed = "2024-03-06 09:30:00,10.0,10.5,9.9,10.2,1000\n\
                 2024-03-06 09:31:00,10.2,10.6,10.1,10.4,1200\n\
                 2024-03-06 09:32:00,10.4,abc,10.3,10.5,900\n\
                 2024-03-06 09:33:00,10.5,10.0,10.9,10.6,800\n\
                 2024-03-06 09:34:00,10.6,10.8,10.5,10.7,700\n";
    std::fs::write(inbox.join("MIX_full_1min_adjsplit.txt"), mixed).unwrap();
    std::fs::write(inbox.join("NIL_full_1min_adjsplit.txt"), "").unwrap();
}

/// Every `expr` of the dashboard's panels, and the label-value queries of its variables.
fn dashboard_queries() -> (Vec<(String, String)>, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/dashboards/bar-ingest.json"))
        .expect("the dashboard");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let variables = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| v["definition"].as_str().unwrap().to_owned())
        .collect();
    (exprs, variables)
}

/// A real Prometheus scrapes the daemon during a load of three small files. Then:
/// - every dashboard expression (with `$job`, `$instance` and `$__rate_interval` filled in as
///   Grafana would) returns data, and every variable's label_values query finds its value;
/// - Prometheus loaded every rule of alerts.yml and evaluates each without error, and each
///   rule's data parts (see [`data_parts`]) return data;
/// - promtool accepts the rules, the config and the scraped /metrics text.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_a_load_and_every_dashboard_and_alert_query_returns_data() {
    let promtool = tool("promtool");
    let (session, schema, _) = common::fresh_schema("ops_prom").await;
    let site = Site::new(&schema.keyspace);
    // coverage (issue 21): two watched symbols, so that the staleness gauges have data.
    let config = site.config(
        "p",
        "[coverage]\nwatch = [\"OPS\", \"MIX\"]\nrefresh_interval = \"1s\"\n",
    );
    let mut daemon = spawn_daemon(&config, &[]);
    let endpoint = wait_for_endpoint(&site, "p", &mut daemon);
    let prom = Prometheus::start(endpoint);
    common::wait_until(WAIT, "Prometheus to scrape the daemon", || {
        prom.value(r#"up{job="bar-ingest"}"#) == Some(1.0)
    });
    common::wait_until(WAIT, "the daemon ready", || {
        common::http_get(endpoint, "/readyz").is_ok_and(|(s, _)| s == 200)
    });

    write_inbox_files(&site.inbox());
    common::wait_until(WAIT, "two files in done/ and one in failed/", || {
        site.files_in("done").len() == 2
            && site
                .files_in("failed")
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "txt"))
    });
    common::wait_until(WAIT, "Prometheus to see the three outcomes", || {
        prom.value(r#"sum(bar_ingest_files_total{job="bar-ingest"})"#) == Some(3.0)
    });
    // A few more scrapes, so that every rate() and deriv() window holds samples after the load.
    let scrapes = r#"count_over_time(up{job="bar-ingest"}[10m])"#;
    let seen = prom.value(scrapes).unwrap_or(0.0);
    common::wait_until(WAIT, "three more scrapes", || {
        prom.value(scrapes).unwrap_or(0.0) >= seen + 3.0
    });
    assert_eq!(
        prom.value(r#"bar_ingest_rows_rejected_total{job="bar-ingest", reason="bad_number"}"#),
        Some(1.0),
        "the rejected row reached Prometheus"
    );
    // coverage (issue 21): MIX's last bar (2024-03-06 09:34 New York) is many sessions old,
    // so BarIngestSymbolStale fires for it.
    common::wait_until(WAIT, "BarIngestSymbolStale firing for MIX", || {
        prom.value(r#"ALERTS{alertname="BarIngestSymbolStale", alertstate="firing", symbol="MIX"}"#)
            == Some(1.0)
    });
    assert_eq!(
        prom.value(r#"bar_ingest_last_bar_timestamp_seconds{job="bar-ingest", symbol="MIX"}"#),
        Some(1_709_735_640.0),
        "MIX's last bar time"
    );
    assert!(
        prom.value(r#"bar_ingest_sessions_behind{job="bar-ingest", symbol="MIX"}"#)
            .is_some_and(|n| n >= 2.0)
    );

    let (status, metrics_text) = common::http_get(endpoint, "/metrics").unwrap();
    assert_eq!(status, 200);
    for needle in [
        "# TYPE bar_ingest_write_latency_seconds histogram",
        "# TYPE bar_ingest_file_duration_seconds histogram",
        "bar_ingest_rows_rejected_total{reason=\"bad_number\"} 1",
        "bar_ingest_rows_rejected_total{reason=\"high_below_low\"} 1",
        "bar_ingest_files_total{outcome=\"loaded\"} 2",
        "bar_ingest_files_total{outcome=\"empty\"} 1",
        "bar_ingest_ready 1",
    ] {
        assert!(
            metrics_text.contains(needle),
            "{needle} not in:\n{metrics_text}"
        );
    }

    // The counters reconcile with the load history: files by outcome, rows written and rejected.
    let value = |name: &str| -> f64 {
        metrics_text
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    };
    let records = common::history(&session, &schema).await;
    for outcome in ["loaded", "empty", "quarantined", "failed"] {
        let in_history = records
            .iter()
            .filter(|r| r.outcome.as_str() == outcome)
            .count();
        assert_eq!(
            value(&format!("bar_ingest_files_total{{outcome=\"{outcome}\"}}")) as usize,
            in_history,
            "files {outcome}: metrics and load history disagree"
        );
    }
    let written: i64 = records.iter().map(|r| r.rows_written).sum();
    let rejected: i64 = records.iter().map(|r| r.rows_rejected).sum();
    let rows_in: i64 = records.iter().map(|r| r.rows_in).sum();
    assert_eq!(value("bar_ingest_rows_written_total") as i64, written);
    assert_eq!(value("bar_ingest_rows_rejected_total") as i64, rejected);
    assert_eq!(
        rows_in,
        written + rejected,
        "rows in = written + rejected, in total"
    );
    common::assert_reconciles(&records);

    // The dashboard, as Grafana would send it with "All" selected.
    let (exprs, variables) = dashboard_queries();
    assert!(
        exprs.len() >= 15,
        "the dashboard lost panels: {}",
        exprs.len()
    );
    let mut failures = Vec::new();
    for (title, expr) in &exprs {
        let q = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", "bar-ingest")
            .replace("$instance", &endpoint.to_string());
        if !non_empty(&prom.query(&q)) {
            failures.push(format!("panel {title:?}: {q}"));
        }
    }
    for definition in &variables {
        // label_values(METRIC{...}, LABEL) is Grafana's; Prometheus answers it as series labels.
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .expect("label_values(...)");
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let selector = selector.replace("$job", "bar-ingest");
        let values = prom.api(&format!(
            "label/{}/values?match[]={}",
            label.trim(),
            url_encode(&selector)
        ));
        if !non_empty(&values) {
            failures.push(format!("variable {definition}"));
        }
    }

    // The alert rules, as Prometheus loaded them.
    let alerts_yml = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let in_file = alerts_yml.matches("- alert:").count();
    let mut rules = Vec::new();
    common::wait_until(WAIT, "every rule evaluated", || {
        rules = prom.api("rules")["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        rules.len() == in_file
            && rules.iter().all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            })
    });
    for rule in &rules {
        let (name, expr) = (
            rule["name"].as_str().unwrap(),
            rule["query"].as_str().unwrap(),
        );
        assert_eq!(rule["health"], "ok", "rule {name}: {rule}");
        prom.query(expr); // the whole expression evaluates (its result may well be empty)
        for part in data_parts(expr) {
            if !non_empty(&prom.query(&part)) {
                failures.push(format!("alert {name}: {part}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "these returned no data:\n{}\n/metrics:\n{metrics_text}",
        failures.join("\n")
    );

    // Returning data is not enough: a series stuck at zero returns data too. The panels' values
    // after this load (two files loaded, one empty, nothing waiting), over a window that holds
    // the whole run.
    let panel = |expr: &str| {
        let q = expr
            .replace("$__rate_interval", "10m")
            .replace("$job", "bar-ingest")
            .replace("$instance", &endpoint.to_string());
        prom.value(&q).unwrap_or_else(|| panic!("no value for {q}"))
    };
    let by = |expr: &str, label: &str| -> BTreeMap<String, f64> {
        let q = expr.replace("$job", "bar-ingest");
        prom.query(&q)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (s["metric"][label].as_str().unwrap_or("").to_owned(), value)
            })
            .collect()
    };
    assert_eq!(panel(r#"min(bar_ingest_ready{job=~"$job"})"#), 1.0);
    assert_eq!(panel(r#"min(bar_ingest_database_up{job=~"$job"})"#), 1.0);
    let since = panel(r#"time() - max(bar_ingest_last_success_timestamp_seconds{job=~"$job"})"#);
    assert!(
        (0.0..600.0).contains(&since),
        "time since last load: {since}"
    );
    assert_eq!(panel(r#"sum(bar_ingest_backlog_files{job=~"$job"})"#), 0.0);
    assert_eq!(
        panel(r#"sum(bar_ingest_batches_in_flight{job=~"$job"})"#),
        0.0
    );
    let rows_per_s =
        panel(r#"sum(rate(bar_ingest_rows_written_total{job=~"$job"}[$__rate_interval]))"#);
    assert!(
        rows_per_s > 0.0,
        "rows per second over the run: {rows_per_s}"
    );
    let p50 = panel(
        r#"histogram_quantile(0.5, sum by (le) (rate(bar_ingest_write_latency_seconds_bucket{job=~"$job"}[$__rate_interval])))"#,
    );
    assert!(p50 > 0.0 && p50 < 10.0, "median batch latency {p50}");
    let outcomes = by(
        r#"sum by (outcome) (bar_ingest_files_total{job=~"$job"})"#,
        "outcome",
    );
    assert_eq!(outcomes.get("loaded"), Some(&2.0), "{outcomes:?}");
    assert_eq!(outcomes.get("empty"), Some(&1.0), "{outcomes:?}");
    assert_eq!(outcomes.get("failed"), Some(&0.0), "{outcomes:?}");
    let reasons = by(
        r#"sum by (reason) (bar_ingest_rows_rejected_total{job=~"$job"})"#,
        "reason",
    );
    assert_eq!(reasons.values().sum::<f64>(), 2.0, "{reasons:?}");
    assert_eq!(reasons.get("high_below_low"), Some(&1.0), "{reasons:?}");

    // promtool: the rules, the config as shipped, and the metrics as scraped.
    let rules_file = repo().join("deploy/prometheus/alerts.yml");
    let (ok, out, err) = run(Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules_file));
    assert!(ok, "promtool check rules:\n{out}{err}");
    let (ok, out, err) = run(Command::new(&promtool)
        .arg("check")
        .arg("config")
        .arg(repo().join("deploy/prometheus/prometheus.yml")));
    assert!(ok, "promtool check config:\n{out}{err}");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics_text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(common::terminate(&mut daemon.0).success());
    drop(prom);
    common::drop_keyspace(&session, &schema).await;
}

// ---------------------------------------------------------------- Grafana

/// Grafana's dashboard-linter (strict: warnings fail too), plus what it does not look at: the
/// provisioning files point at the folder the compose file mounts the dashboard into.
#[test]
fn dashboard_passes_the_linter_and_is_provisioned() {
    let linter = tool("dashboard-linter");
    let dashboard = repo().join("deploy/grafana/dashboards/bar-ingest.json");
    let (ok, out, err) = run(Command::new(&linter)
        .arg("lint")
        .arg("--strict")
        .arg(&dashboard));
    assert!(ok, "dashboard-linter:\n{out}{err}");

    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&dashboard).unwrap()).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids must be unique");
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for wanted in [
        "Rows per second",
        "Bytes read per second",
        "Backlog",
        "ETA",
        "Files by outcome",
        "Rejected rows by reason",
        "Write retries by cause",
        "Batch write latency",
        "Ready",
        "Time since last load",
    ] {
        assert!(titles.contains(&wanted), "no panel {wanted:?}: {titles:?}");
    }

    let provider = std::fs::read_to_string(
        repo().join("deploy/grafana/provisioning/dashboards/bar-ingest.yml"),
    )
    .unwrap();
    let compose = std::fs::read_to_string(repo().join("deploy/docker-compose.yml")).unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards"));
    assert!(compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards:ro"));
    let datasource = std::fs::read_to_string(
        repo().join("deploy/grafana/provisioning/datasources/prometheus.yml"),
    )
    .unwrap();
    assert!(datasource.contains("url: http://prometheus:9090"));
    assert!(datasource.contains("type: prometheus"));
}

// ---------------------------------------------------------------- systemd

/// `systemd-analyze verify` on a copy of the unit whose `/usr/bin/bar-ingest` points at the
/// binary under test (verify checks that the Exec paths exist; a `--root` tree would also need
/// every unit the service depends on, sysinit.target and so on). Any warning fails the test:
/// verify exits 0 on unknown keys. Then the exposure score of the unit as shipped.
#[test]
fn systemd_unit_verifies_and_scores_2_0_or_lower() {
    let analyze = tool("systemd-analyze");
    let unit_path = repo().join("deploy/systemd/bar-ingest.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for needle in [
        "Type=notify",
        "WatchdogSec=",
        "ExecStartPre=/usr/bin/bar-ingest check-config",
        "ExecStart=/usr/bin/bar-ingest run",
        "User=bar-ingest",
        "ReadWritePaths=/var/lib/bar-ingest\n",
    ] {
        assert!(unit.contains(needle), "the unit lost {needle:?}");
    }
    assert_eq!(
        unit.matches("ReadWritePaths=").count(),
        1,
        "one ReadWritePaths= for the common parent (EXDEV)"
    );

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("bar-ingest.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/bar-ingest", env!("CARGO_BIN_EXE_bar-ingest")),
    )
    .unwrap();
    let (ok, out, err) = run(Command::new(&analyze).arg("verify").arg(&copy));
    assert!(
        ok && out.trim().is_empty() && err.trim().is_empty(),
        "systemd-analyze verify:\n{out}{err}"
    );

    let (ok, out, err) = run(Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit_path));
    assert!(ok, "systemd-analyze security:\n{out}{err}");
    let score: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for bar-ingest.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{out}{err}"));
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{out}");
}

/// One datagram received on the test notify socket.
#[derive(Debug, Clone)]
struct Notification {
    at: SystemTime,
    text: String,
}

/// Plays systemd's side of `$NOTIFY_SOCKET`: a Unix datagram socket; every message is kept with
/// the time it arrived.
struct NotifySocket {
    path: PathBuf,
    received: Arc<Mutex<Vec<Notification>>>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push(Notification {
                    at: SystemTime::now(),
                    text,
                });
            }
        });
        Self { path, received }
    }

    fn all(&self) -> Vec<Notification> {
        self.received.lock().unwrap().clone()
    }

    fn with(&self, line: &str) -> Vec<Notification> {
        self.all()
            .into_iter()
            .filter(|n| n.text.lines().any(|l| l == line))
            .collect()
    }
}

/// When the JSON log line whose message is `message` was written.
fn logged_at(log: &[Value], message: &str) -> SystemTime {
    let line = log
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no log line {message:?}"));
    let stamp = line["timestamp"].as_str().expect("timestamp");
    let t = chrono::DateTime::parse_from_rfc3339(stamp).expect("RFC 3339 timestamp");
    SystemTime::UNIX_EPOCH + Duration::from_micros(t.timestamp_micros() as u64)
}

/// READY=1 comes once, after the schema is ready and after the watcher's first scan (which
/// ends `watch.settle` after the watcher started: the test sets 2 s and measures it from the
/// daemon's own log timestamps); the file present at start is then loaded; WATCHDOG=1 comes
/// every half of WATCHDOG_USEC (2 s), never 2 s apart; SIGTERM brings STOPPING=1 and exit 0.
#[tokio::test(flavor = "multi_thread")]
async fn notify_socket_gets_ready_after_the_first_scan_then_watchdog_and_stopping() {
    const SETTLE: Duration = Duration::from_secs(2);
    const WATCHDOG: Duration = Duration::from_secs(2);
    let (session, schema, _) = common::fresh_schema("ops_notify").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("n", "");
    set_key(&config, "settle", "settle = \"2s\"");
    std::fs::write(
        site.inbox().join("PRE_full_1min_adjsplit.txt"),
        "2024-03-06 09:30:00,10.0,10.5,9.9,10.2,1000\n",
    )
    .unwrap();
    let notify = NotifySocket::bind(site.dir.path());
    let usec = WATCHDOG.as_micros().to_string();
    let mut daemon = spawn_daemon(
        &config,
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", &usec),
        ],
    );

    common::wait_until(WAIT, "READY=1", || {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the daemon exited:\n{}",
            site.log("n")
        );
        !notify.with("READY=1").is_empty()
    });
    let ready_at = notify.with("READY=1")[0].at;
    let log = json_log(&site, "n");
    let schema_ready = logged_at(&log, "connected and schema ready");
    let watching = logged_at(&log, "watching the inbox");
    assert!(
        ready_at > schema_ready,
        "READY=1 before the schema was ready"
    );
    let after_watch = ready_at.duration_since(watching).unwrap_or_default();
    assert!(
        after_watch >= SETTLE,
        "READY=1 {after_watch:?} after the watcher started: the first scan takes settle ({SETTLE:?})"
    );
    let connecting = notify.with("STATUS=connecting to the database");
    assert!(
        connecting.first().is_some_and(|n| n.at <= ready_at),
        "STATUS=connecting to the database must come first: {:?}",
        notify.all()
    );

    common::wait_until(WAIT, "the file present at start loaded", || {
        site.files_in("done").len() == 1
    });
    common::wait_until(WAIT, "three watchdog pings after READY", || {
        notify
            .with("WATCHDOG=1")
            .iter()
            .filter(|n| n.at > ready_at)
            .count()
            >= 3
    });
    let pings: Vec<SystemTime> = notify.with("WATCHDOG=1").iter().map(|n| n.at).collect();
    for pair in pings.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(
            gap < WATCHDOG,
            "watchdog pings {gap:?} apart: systemd would kill it"
        );
    }

    let status = common::terminate(&mut daemon.0);
    assert!(status.success(), "exit after SIGTERM: {status}");
    let stopping = notify.with("STOPPING=1");
    assert_eq!(stopping.len(), 1, "{:?}", notify.all());
    assert!(stopping[0].at > ready_at);
    assert_eq!(notify.with("READY=1").len(), 1, "READY=1 once");
    common::drop_keyspace(&session, &schema).await;
}

/// With the database unreachable the process is alive (/healthz 200) but not ready: /readyz
/// answers 503 saying why, bar_ingest_ready is 0, systemd hears "connecting" and never READY.
#[test]
fn database_unreachable_means_alive_but_not_ready() {
    let site = Site::new("t_ops_unreachable");
    let config = site.config("u", "");
    let closed = common::free_port();
    set_key(
        &config,
        "contact_points",
        &format!("contact_points = [\"127.0.0.1:{closed}\"]"),
    );
    let notify = NotifySocket::bind(site.dir.path());
    let mut daemon = spawn_daemon(&config, &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())]);
    let endpoint = wait_for_endpoint(&site, "u", &mut daemon);
    common::wait_until(WAIT, "two failed connection attempts", || {
        site.log("u")
            .matches("database not reachable; retrying")
            .count()
            >= 2
    });
    let (status, body) = common::http_get(endpoint, "/healthz").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = common::http_get(endpoint, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database unreachable"), "{body}");
    let (_, metrics_text) = common::http_get(endpoint, "/metrics").unwrap();
    assert!(
        metrics_text.contains("bar_ingest_ready 0"),
        "{metrics_text}"
    );
    assert!(metrics_text.contains("bar_ingest_database_up 0"));
    assert!(!notify.with("STATUS=connecting to the database").is_empty());
    assert!(notify.with("READY=1").is_empty(), "{:?}", notify.all());
    assert!(common::terminate(&mut daemon.0).success());
}

// ---------------------------------------------------------------- Docker

/// What can be checked without a container engine: `docker-compose config` (Compose file
/// schema and interpolation, no engine needed) accepts the stack, every file it mounts exists,
/// the config it mounts passes `check-config`, and no image names a registry host. The images
/// themselves are not built or run here.
#[test]
fn compose_file_is_valid_and_mounts_files_that_exist() {
    let compose_bin = tool("docker-compose");
    let compose = repo().join("deploy/docker-compose.yml");
    let (ok, out, err) = run(Command::new(&compose_bin)
        .arg("-f")
        .arg(&compose)
        .arg("config"));
    assert!(ok, "docker-compose config:\n{out}{err}");
    for service in ["scylla:", "bar-ingest:", "prometheus:", "grafana:"] {
        assert!(
            out.contains(&format!("\n  {service}")),
            "no service {service}"
        );
    }
    let deploy = repo().join("deploy");
    let mut mounted = 0;
    for line in out.lines() {
        let Some(spec) = line.trim().strip_prefix("- ") else {
            continue;
        };
        let host = spec.split(':').next().unwrap();
        if host.starts_with(deploy.to_str().unwrap()) {
            assert!(Path::new(host).exists(), "compose mounts a missing {host}");
            mounted += 1;
        }
    }
    assert!(
        mounted >= 6,
        "expected the config, rules and Grafana files mounted: {out}"
    );

    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("check-config")
        .arg(deploy.join("docker/bar-ingest.toml")));
    assert!(ok, "check-config of the compose config:\n{out}{err}");

    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let compose_text = std::fs::read_to_string(&compose).unwrap();
    let images = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .chain(
            compose_text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("image: "))
                .map(str::to_owned),
        )
        .collect::<Vec<_>>();
    assert!(images.len() >= 6, "{images:?}");
    for image in &images {
        let first = image.split('/').next().unwrap();
        assert!(
            !(image.contains('/') && (first.contains('.') || first.contains(':'))),
            "{image} names a registry host"
        );
    }
    assert!(dockerfile.matches("\nFROM ").count() >= 2, "multi-stage");
    assert!(
        dockerfile.contains("\nUSER bar-ingest"),
        "non-root runtime user"
    );
    assert!(dockerfile.contains("\nHEALTHCHECK ") && dockerfile.contains("/healthz"));
}

/// `busybox wget`, as the Dockerfile's HEALTHCHECK runs it, succeeds on /healthz of a live
/// daemon and fails once the daemon is gone.
#[test]
fn healthcheck_command_follows_healthz() {
    let busybox = tool("busybox");
    let site = Site::new("t_ops_health");
    let config = site.config("h", "");
    // No database needed: /healthz answers while the daemon waits for one.
    set_key(
        &config,
        "contact_points",
        &format!("contact_points = [\"127.0.0.1:{}\"]", common::free_port()),
    );
    let mut daemon = spawn_daemon(&config, &[]);
    let endpoint = wait_for_endpoint(&site, "h", &mut daemon);
    let url = format!("http://{endpoint}/healthz");
    let check = || run(Command::new(&busybox).args(["wget", "-q", "-O", "/dev/null", &url])).0;
    assert!(check(), "healthcheck fails on a live daemon");
    assert!(common::terminate(&mut daemon.0).success());
    assert!(!check(), "healthcheck passes with the daemon gone");
}
