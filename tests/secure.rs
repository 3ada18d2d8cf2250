//! Against the secure dev node (`scripts/dev-db start --secure`: password authentication,
//! permissions, client TLS on 127.0.0.1:9142): least-privilege roles load and fetch with only the
//! README's grants; a missing schema with `manage_schema = false` is a clear error and nothing is
//! created; wrong credentials, a wrong CA and a wrong server name are configuration errors
//! (exit 2 at once, not retried as outages); `check-config --connect`.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bar_ingest::config::Settings;
use bar_ingest::store::{self, Schema};
use common::{Site, run_load, unique_keyspace};
use scylla::client::session::Session;

/// CQL over TLS on the secure node.
const SECURE_CONTACT_POINT: &str = "127.0.0.1:9142";

/// A stand-in for "at once": an outage would be retried for as long as it lasts, so a process
/// still running after this long is taken as retrying (a hang detector, not a speed limit).
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// The secure node's state folder (tls/, secrets/), as `scripts/dev-db start --secure` writes it.
fn secure_dir() -> PathBuf {
    std::env::var_os("BAR_INGEST_SECURE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/cassandra-secure"))
}

/// The secure node's CA; fails the test (never skips) when the node is not provisioned or not
/// listening.
fn secure_node() -> PathBuf {
    let ca = secure_dir().join("tls/ca.pem");
    let listening = TcpStream::connect_timeout(
        &SECURE_CONTACT_POINT.parse().unwrap(),
        Duration::from_secs(2),
    )
    .is_ok();
    assert!(
        ca.is_file() && listening,
        "these tests need the secure Cassandra dev node on {SECURE_CONTACT_POINT} (CA {}); \
         start it with `scripts/dev-db start --secure` (`./scripts/test` does)",
        ca.display()
    );
    ca
}

fn password_file(role: &str) -> PathBuf {
    secure_dir().join(format!("secrets/{role}.password"))
}

/// A config in `site` for `role` over TLS with the node's CA; `extra` is appended verbatim
/// (keys of `[database]` go in `database_extra`, which is placed inside that section).
fn secure_config(site: &Site, role: &str, database_extra: &str, extra: &str) -> PathBuf {
    let path = site.dir.path().join(format!("{role}.toml"));
    let text = format!(
        "[database]\ncontact_points = [\"{SECURE_CONTACT_POINT}\"]\nkeyspace = \"{ks}\"\n\
         consistency = \"ONE\"\nrequest_timeout = \"20s\"\nusername = \"{role}\"\n\
         password_file = \"{pw}\"\n{database_extra}\n\
         [database.tls]\nenabled = true\nca_file = \"{ca}\"\n\n\
         [paths]\ninbox = \"{inbox}\"\nstate_root = \"{state}\"\n\n\
         [ingest]\ninstance = \"secure\"\nretry_initial = \"50ms\"\nretry_max = \"1s\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
        ks = site.keyspace,
        pw = password_file(role).display(),
        ca = secure_node().display(),
        inbox = site.inbox().display(),
        state = site.state().display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Settings of the `admin` role (superuser) on the secure node, for `keyspace`.
fn admin_settings(keyspace: &str) -> Settings {
    let site = Site::new(keyspace);
    let config = secure_config(&site, "admin", "", "");
    let mut settings = Settings::load(&config, None).expect("admin config is valid");
    settings.database.consistency = scylla::statement::Consistency::One;
    settings
}

async fn admin_session(keyspace: &str) -> (Session, Schema) {
    let settings = admin_settings(keyspace);
    let session = store::connect(&settings).await.unwrap_or_else(|e| {
        panic!(
            "cannot log in as admin on the secure node: {e}\n\
             start it with `scripts/dev-db start --secure`"
        )
    });
    (session, Schema::from_config(&settings.database))
}

/// The grants the README gives the loader's and the reader's roles, written out (not taken from
/// the code under test).
async fn grant_readme_permissions(admin: &Session, ks: &str) {
    for grant in [
        format!("GRANT SELECT ON TABLE {ks}.load_history TO loader"),
        format!("GRANT MODIFY ON TABLE {ks}.load_history TO loader"),
        format!("GRANT MODIFY ON TABLE {ks}.bars_1min TO loader"),
        // The default layout (days, learnt from the keyspace): docs/storage.md, Permissions.
        format!("GRANT SELECT ON TABLE {ks}.bars_1min TO loader"),
        format!("GRANT SELECT ON TABLE {ks}.bars_1min_days TO loader"),
        format!("GRANT MODIFY ON TABLE {ks}.bars_1min_days TO loader"),
        format!("GRANT SELECT ON TABLE {ks}.bars_1min TO reader"),
        // fetch reads the day cells of a days keyspace (store::Access::FetchDays).
        format!("GRANT SELECT ON TABLE {ks}.bars_1min_days TO reader"),
    ] {
        admin.query_unpaged(grant.as_str(), ()).await.expect(&grant);
    }
}

/// Drops the keyspace (and with it every grant on it).
async fn drop_keyspace(admin: &Session, ks: &str) {
    admin
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ())
        .await
        .expect("drop the test keyspace");
}

/// Names of the tables of `ks` in the cluster (empty: none, or no keyspace).
async fn tables_of(admin: &Session, ks: &str) -> Vec<String> {
    let rows = admin
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (ks,),
        )
        .await
        .expect("read system_schema.tables")
        .into_rows_result()
        .expect("rows");
    let mut names: Vec<String> = rows
        .rows::<(String,)>()
        .expect("typed rows")
        .map(|r| r.expect("row").0)
        .collect();
    names.sort();
    names
}

async fn keyspace_exists(admin: &Session, ks: &str) -> bool {
    admin
        .query_unpaged(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (ks,),
        )
        .await
        .expect("read system_schema.keyspaces")
        .into_rows_result()
        .expect("rows")
        .rows_num()
        > 0
}

/// Three bars of `SEC` on 2024-03-01 (exchange time), in a folder of their own.
const BARS: &str = "2024-03-01 09:30:00,10.5,11,10,10.75,1200\n\
                    2024-03-01 09:31:00,10.75,11.25,10.5,11,900\n\
                    2024-03-01 09:32:00,11,11.5,10.75,11.25,1500\n";

fn bar_folder(site: &Site) -> PathBuf {
    let dir = site.dir.path().join("files");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SEC_full_1min_adjsplit.txt"), BARS).unwrap();
    dir
}

/// Runs the binary with `config` and `args`; (exit code, stdout, stderr), or a panic if it is
/// still running after [`HANG_LIMIT`] (killed first).
fn run_bin(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bar-ingest");
    let started = Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if started.elapsed() > HANG_LIMIT {
            child.kill().ok();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "`bar-ingest {}` still running after {HANG_LIMIT:?} (retrying an error that \
                 is not an outage?); stderr:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("collect output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Counts the bars of `SEC` in the keyspace, as the admin sees them: its bar rows and the bars
/// of its day cells (a load writes one or the other, or both, by the keyspace's layout).
async fn stored_bars(admin: &Session, ks: &str) -> i64 {
    let count = |cql: String| async move {
        admin
            .query_unpaged(cql, ())
            .await
            .expect("count bars")
            .into_rows_result()
            .expect("rows")
            .single_row::<(Option<i64>,)>()
            .expect("one count")
            .0
            .unwrap_or(0)
    };
    let rows = count(format!(
        "SELECT COUNT(*) FROM {ks}.bars_1min WHERE symbol = 'SEC' AND bucket = '2024-03'"
    ))
    .await;
    let in_cells = count(format!(
        "SELECT CAST(SUM(bar_count) AS bigint) FROM {ks}.bars_1min_days \
         WHERE symbol = 'SEC' AND bucket = '2024-03'"
    ))
    .await;
    rows + in_cells
}

/// Regression: with the schema created by an administrator and the loader's role granted only
/// MODIFY/SELECT as the README says, `load` failed at start with "User loader has no CREATE
/// permission on <all keyspaces>" (it always issued CREATE KEYSPACE IF NOT EXISTS). Now it
/// checks the schema, issues no DDL and loads; the reader's role fetches with SELECT only.
#[tokio::test(flavor = "multi_thread")]
async fn least_privilege_roles_load_and_fetch_with_only_the_readme_grants() {
    let ks = unique_keyspace("lp");
    let (admin, schema) = admin_session(&ks).await;
    store::init_schema(&admin, &schema)
        .await
        .expect("admin creates the schema");
    grant_readme_permissions(&admin, &ks).await;
    let site = Site::new(&ks);
    let files = bar_folder(&site);

    let loader = secure_config(&site, "loader", "", "");
    let (code, stderr) = run_load(&loader, &["--no-progress", files.to_str().unwrap()]);
    assert_eq!(code, 0, "load by the loader role failed:\n{stderr}");
    assert_eq!(stored_bars(&admin, &ks).await, 3, "{stderr}");
    // The schema the administrator made: bar rows, day cells, the load history; nothing more.
    assert_eq!(
        tables_of(&admin, &ks).await,
        ["bars_1min", "bars_1min_days", "load_history"]
    );

    let reader = secure_config(&site, "reader", "", "");
    let (code, stdout, stderr) = run_bin(
        &reader,
        &["fetch", "SEC", "--from", "2024-03-01", "--to", "2024-03-01"],
    );
    assert_eq!(code, 0, "fetch by the reader role failed:\n{stderr}");
    assert_eq!(
        stdout,
        "timestamp,open,high,low,close,volume\n\
         2024-03-01 09:30:00,10.5,11,10,10.75,1200\n\
         2024-03-01 09:31:00,10.75,11.25,10.5,11,900\n\
         2024-03-01 09:32:00,11,11.5,10.75,11.25,1500\n"
    );

    // The reader's role cannot load: said at start, exit 2, naming the grant (no file failed).
    let as_loader = secure_config(&site, "reader", "", "");
    let (code, stderr) = run_load(
        &as_loader,
        &["--no-progress", "--force", files.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("permission denied: user `reader`")
            && stderr.contains(&format!(
                "GRANT SELECT ON TABLE {ks}.load_history TO reader"
            )),
        "{stderr}"
    );
    drop_keyspace(&admin, &ks).await;
}

/// The daemon (`run`) by the least-privilege role: starts without DDL and loads a dropped file.
#[tokio::test(flavor = "multi_thread")]
async fn least_privilege_daemon_runs_and_loads() {
    let ks = unique_keyspace("lprun");
    let (admin, schema) = admin_session(&ks).await;
    store::init_schema(&admin, &schema)
        .await
        .expect("admin creates the schema");
    grant_readme_permissions(&admin, &ks).await;
    let site = Site::new(&ks);
    let config = secure_config(
        &site,
        "loader",
        "",
        "[watch]\nrescan_interval = \"1s\"\nsettle = \"200ms\"\n",
    );
    let mut daemon = site.spawn_daemon(&config);
    std::fs::write(site.inbox().join("SEC_full_1min_adjsplit.txt"), BARS).unwrap();
    common::wait_until(Duration::from_secs(60), "the file in done/", || {
        site.files_in("done").len() == 1 || daemon.try_wait().ok().flatten().is_some()
    });
    let status = common::terminate(&mut daemon);
    let log = site.log("loader");
    assert_eq!(site.files_in("done").len(), 1, "daemon log:\n{log}");
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(stored_bars(&admin, &ks).await, 3, "{log}");
    drop_keyspace(&admin, &ks).await;
}

/// `manage_schema = false` with the schema missing: exit 2, what is missing and the CQL to
/// create it, and no DDL at all, even by a role allowed to create (the superuser `admin`).
/// With `manage_schema` left on, the loader role is told it may not create it.
#[tokio::test(flavor = "multi_thread")]
async fn missing_schema_without_manage_schema_is_a_clear_error_and_creates_nothing() {
    let ks = unique_keyspace("noddl");
    let (admin, _) = admin_session(&ks).await;
    let site = Site::new(&ks);
    let files = bar_folder(&site);
    let config = secure_config(&site, "admin", "manage_schema = false", "");

    let (code, stderr) = run_load(&config, &["--no-progress", files.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "database.manage_schema is false".to_owned(),
        format!("keyspace `{ks}` does not exist"),
        format!("CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication"),
        format!("CREATE TABLE IF NOT EXISTS {ks}.bars_1min ("),
        format!("CREATE TABLE IF NOT EXISTS {ks}.load_history ("),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !keyspace_exists(&admin, &ks).await,
        "a keyspace was created"
    );
    let (code, _, stderr) = run_bin(&config, &["run"]);
    assert_eq!(code, 2, "run: {stderr}");
    assert!(
        stderr.contains(&format!("keyspace `{ks}` does not exist")),
        "run: {stderr}"
    );
    assert!(
        !keyspace_exists(&admin, &ks).await,
        "run created a keyspace"
    );

    // Keyspace there, tables missing: both named, neither created.
    admin
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .expect("create the keyspace alone");
    let (code, stderr) = run_load(&config, &["--no-progress", files.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("table `bars_1min` does not exist")
            && stderr.contains("table `load_history` does not exist")
            && !stderr.contains("CREATE KEYSPACE"),
        "{stderr}"
    );
    assert!(
        tables_of(&admin, &ks).await.is_empty(),
        "a table was created"
    );

    // manage_schema on (the default), a role without CREATE: told so, nothing created.
    let loader = secure_config(&site, "loader", "", "");
    let (code, stderr) = run_load(&loader, &["--no-progress", files.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("permission denied: user `loader` may not create the missing schema")
            && stderr.contains("no CREATE permission"),
        "{stderr}"
    );
    assert!(tables_of(&admin, &ks).await.is_empty());
    drop_keyspace(&admin, &ks).await;
}

/// A table that exists with a different column type is an error naming the column, before any
/// file is read (it used to fail every file on the first insert), and is left as it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_differs_is_named_and_left_alone() {
    let ks = unique_keyspace("differs");
    let (admin, schema) = admin_session(&ks).await;
    store::init_schema(&admin, &schema)
        .await
        .expect("admin creates the schema");
    for ddl in [
        format!("DROP TABLE {ks}.bars_1min"),
        format!(
            "CREATE TABLE {ks}.bars_1min (symbol text, bucket text, ts timestamp, open double, \
             high double, low double, close double, volume int, PRIMARY KEY ((symbol, bucket), ts))"
        ),
    ] {
        admin.query_unpaged(ddl.as_str(), ()).await.expect(&ddl);
    }
    let site = Site::new(&ks);
    let files = bar_folder(&site);
    let config = secure_config(&site, "admin", "", "");
    let (code, stderr) = run_load(&config, &["--no-progress", files.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("column `bars_1min.volume` is int, bar-ingest needs double (or bigint)"),
        "{stderr}"
    );
    assert_eq!(stored_bars(&admin, &ks).await, 0);
    drop_keyspace(&admin, &ks).await;
}

/// Replaces `from` (which must be there) with `to` in a config file.
fn edit_config(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "{from} not in {}", config.display());
    std::fs::write(config, text.replace(from, to)).unwrap();
}

/// `load`, `run` and `fetch` with `config` each exit 2 at once, with a stderr `says` accepts.
fn every_command_exits_2(config: &Path, files: &Path, says: impl Fn(&str) -> bool) {
    for args in [
        vec!["load", "--no-progress", files.to_str().unwrap()],
        vec!["run"],
        vec!["fetch", "SEC", "--from", "2024-03-01", "--to", "2024-03-01"],
    ] {
        let (code, _, stderr) = run_bin(config, &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(says(&stderr), "{args:?}: {stderr}");
    }
}

/// Regression: a wrong password was retried forever by `run` as "database not reachable", and
/// `load` said "is the cluster up and reachable?". Both now exit 2 at once naming
/// authentication and the user; so does `fetch`.
#[test]
fn wrong_password_is_an_authentication_error_not_an_outage() {
    let site = Site::new(&unique_keyspace("badpw"));
    let files = bar_folder(&site);
    let wrong = site.dir.path().join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    set_private(&wrong);
    let config = secure_config(&site, "loader", "", "");
    edit_config(
        &config,
        &password_file("loader").display().to_string(),
        &wrong.display().to_string(),
    );

    every_command_exits_2(&config, &files, |stderr| {
        stderr.contains("authentication failed")
            && stderr.contains("user `loader`")
            && stderr.contains("127.0.0.1:9142")
            && stderr.contains("password are incorrect")
            && !stderr.contains("reachable")
    });
}

/// Regression: a CA that did not sign the node's certificate was retried forever as an outage.
/// `load`, `run` and `fetch` now exit 2 at once naming the TLS handshake and the CA file.
#[test]
fn wrong_ca_is_a_tls_error_not_an_outage() {
    let site = Site::new(&unique_keyspace("badca"));
    let files = bar_folder(&site);
    let other_ca = site.dir.path().join("other-ca.pem");
    let key = site.dir.path().join("other-ca.key");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=not the dev CA", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&other_ca)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (scripts/dev-db installs it)");
    assert!(made.success(), "openssl could not make a CA");
    let config = secure_config(&site, "loader", "", "");
    edit_config(
        &config,
        &format!("ca_file = \"{}\"", secure_node().display()),
        &format!("ca_file = \"{}\"", other_ca.display()),
    );

    every_command_exits_2(&config, &files, |stderr| {
        stderr.contains("TLS handshake with the database at 127.0.0.1:9142 failed")
            && stderr.contains("UnknownIssuer")
            && stderr.contains(&other_ca.display().to_string())
            && !stderr.contains("reachable")
    });
}

/// `database.tls.server_name`: certificates are verified against it instead of the node's
/// address: the node's certificate names `bar-ingest-dev-secure` (and IP 127.0.0.1), so that
/// name passes and another fails as a TLS error naming it.
#[test]
fn server_name_replaces_the_address_in_certificate_verification() {
    let site = Site::new(&unique_keyspace("sni"));
    for (name, ok) in [("bar-ingest-dev-secure", true), ("db.example.com", false)] {
        let config = secure_config(&site, "loader", "", "");
        edit_config(
            &config,
            "enabled = true\n",
            &format!("enabled = true\nserver_name = \"{name}\"\n"),
        );
        let (code, stdout, stderr) = run_bin(&config, &["check-config", "--connect"]);
        if ok {
            // Connected; the keyspace of this test does not exist, which is reported after.
            assert!(
                stdout.contains("connected to 127.0.0.1:9142 as `loader` (TLS)"),
                "{stdout}{stderr}"
            );
            assert!(stderr.contains("does not exist"), "{stderr}");
        } else {
            assert_eq!(code, 2, "{stderr}");
            assert!(
                stderr.contains("TLS handshake")
                    && stderr.contains("does not name `db.example.com`"),
                "{stderr}"
            );
        }
    }
}

/// `check-config --connect`: the whole chain (credentials, TLS, schema, permissions) on a good
/// config; a wrong password and a role without the grants are reported, exit 2.
#[tokio::test(flavor = "multi_thread")]
async fn check_config_connect_reports_good_and_bad() {
    let ks = unique_keyspace("cc");
    let (admin, schema) = admin_session(&ks).await;
    store::init_schema(&admin, &schema)
        .await
        .expect("admin creates the schema");
    grant_readme_permissions(&admin, &ks).await;
    let site = Site::new(&ks);

    let good = secure_config(&site, "loader", "", "");
    let (code, stdout, stderr) = run_bin(&good, &["check-config", "--connect"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("connected to 127.0.0.1:9142 as `loader` (TLS)")
            && stdout.contains("permissions of load and run present"),
        "{stdout}"
    );

    let reader = secure_config(&site, "reader", "", "");
    let (code, _, stderr) = run_bin(&reader, &["check-config", "--connect"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "GRANT SELECT ON TABLE {ks}.load_history TO reader"
        )),
        "{stderr}"
    );

    let bad = site.dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&good).unwrap().replace(
        &format!("password_file = \"{}\"", password_file("loader").display()),
        "password = \"wrong\"",
    );
    std::fs::write(&bad, text).unwrap();
    let (code, _, stderr) = run_bin(&bad, &["check-config", "--connect"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
    drop_keyspace(&admin, &ks).await;
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
