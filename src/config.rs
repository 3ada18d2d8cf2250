//! Configuration: the TOML file (unknown keys rejected) turned into validated settings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use crate::source::Adjustment;
use serde::{Deserialize, Serialize};

mod retention;
pub use retention::{FolderRetention, RetentionAction, RetentionConfig};
mod coverage;
mod dead_letter;
pub use coverage::{CoverageConfig, MAX_WATCHED};
pub use dead_letter::DeadLetterConfig;
mod database_access;
mod keys;
pub use keys::KEYS;
pub mod reload;
mod sources;
pub use sources::{LayoutRule, SourceConfig, SourceRule, SymbolFrom};

/// A secret (the database password): `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (the driver's authenticator).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Serialized as a digest keyed by a random key of this process, never the secret: enough to
/// tell whether a reload changed it, and worth nothing outside the process (no dictionary
/// attack on a digest that ended up somewhere).
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
        let key = KEY.get_or_init(rand::random);
        let digest = blake3::keyed_hash(key, self.0.as_bytes());
        serializer.serialize_str(&format!("digest:{}", digest.to_hex()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Empty means "not set", which is worth seeing.
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

/// Environment variable naming the config file when `--config` is not given.
pub const ENV_CONFIG: &str = "BAR_INGEST_CONFIG";
/// Environment variable overriding `database.contact_points` (comma-separated `host[:port]`).
pub const ENV_CONTACT_POINTS: &str = "BAR_INGEST_CONTACT_POINTS";
/// CQL native transport port assumed when a contact point names none.
pub(crate) const DEFAULT_CQL_PORT: u16 = 9042;

/// A configuration problem, always naming the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{file}: cannot read the config file: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type (toml's message carries line, column and key).
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    /// A key parsed but its value is not usable.
    #[error("{file}: key `{key}`: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
}

/// The whole configuration file. Every section is optional; every key has a default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the bars go and how to reach the cluster.
    pub database: DatabaseConfig,
    /// The folders the daemon watches and archives into.
    pub paths: PathsConfig,
    /// How input files are read.
    pub input: InputConfig,
    /// How files are loaded: batching, concurrency, retries, thresholds.
    pub ingest: IngestConfig,
    /// How the inbox is watched.
    pub watch: WatchConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// How long the archive folders keep files; the free-space floor.
    pub retention: RetentionConfig,
    /// The budget of each file's dead-letter log.
    pub dead_letter: DeadLetterConfig,
    /// How bars are kept: day cells, bar rows or both.
    pub storage: StorageConfig,
    /// `[[source]]`: per-source rules, in file order.
    pub source: Vec<SourceConfig>,
    /// The symbols whose staleness the daemon exports (issue 21).
    pub coverage: CoverageConfig,
}

/// Which tables hold the bars (`storage.layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageLayout {
    /// One row per symbol and exchange-local day holding the day's bars (`bars_1min_days`):
    /// the default for a new keyspace, and what `fetch` reads fastest.
    Days,
    /// One CQL row per bar (`bars_1min`), for users who query bars with CQL or other tools.
    Rows,
    /// Both tables written; `fetch` reads the day cells.
    Both,
}

impl StorageLayout {
    /// The name as the config spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Days => "days",
            Self::Rows => "rows",
            Self::Both => "both",
        }
    }

    /// Whether loads write day cells.
    pub fn writes_days(self) -> bool {
        matches!(self, Self::Days | Self::Both)
    }

    /// Whether loads write bar rows.
    pub fn writes_rows(self) -> bool {
        matches!(self, Self::Rows | Self::Both)
    }

    /// Whether reads come from the day cells (else from the bar rows).
    pub fn reads_days(self) -> bool {
        self.writes_days()
    }
}

/// `[storage]`: how bars are kept.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `days`, `rows` or `both`. Unset: what the keyspace already holds (a keyspace with bar
    /// rows and no day cells is read and written as `rows`), `days` for a new one.
    pub layout: Option<StorageLayout>,
}

/// `[ingest]`: batching, write concurrency, retries and the reject threshold.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Name of this instance in the load history and of its `processing/<instance>` folder
    /// (empty: the host name). Instances sharing an inbox need distinct names.
    pub instance: String,
    /// Rows per unlogged batch; a batch holds rows of one partition only.
    pub batch_rows: usize,
    /// Upper bound on a batch's estimated size in bytes (ScyllaDB warns at 128 KiB).
    pub batch_max_bytes: usize,
    /// Most batches being written at once, over all files: the upper bound of the adaptive
    /// limit on batches in flight (set `min_batches_in_flight` to the same for a fixed limit).
    pub max_batches_in_flight: usize,
    /// Fewest batches in flight the adaptive limit backs off to (None: 4, or
    /// `max_batches_in_flight` if that is lower).
    pub min_batches_in_flight: Option<usize>,
    /// The limit at start (None: 32, kept within the bounds).
    pub initial_batches_in_flight: Option<usize>,
    /// Rows sent per second at most, over all files (0: no limit).
    pub max_rows_per_second: u64,
    /// Estimated bytes of batches sent per second at most, over all files (0: no limit).
    pub max_bytes_per_second: u64,
    /// Files loaded at once by the daemon.
    pub files_in_parallel: usize,
    /// Share of rejected rows (0..=1) above which a file is quarantined whole, nothing written.
    pub reject_threshold: f64,
    /// First delay before retrying a write the database could not take.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest delay between retries (retries go on as long as the database is away).
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// On SIGTERM, how long in-flight files may take to finish before they are handed back.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            instance: String::new(),
            batch_rows: 100,
            batch_max_bytes: 32 * 1024,
            max_batches_in_flight: DEFAULT_MAX_IN_FLIGHT,
            min_batches_in_flight: None,
            initial_batches_in_flight: None,
            max_rows_per_second: 0,
            max_bytes_per_second: 0,
            files_in_parallel: 2,
            reject_threshold: 0.5,
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}

/// How the inbox is watched (`watch.mode` in the config: `notify` or `poll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify events, backed up by a periodic rescan. For local filesystems.
    Notify,
    /// List the folder periodically; no inotify at all. For NFS/CIFS, where inotify sees nothing.
    Poll,
}

/// `[watch]`: how new files are noticed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// `notify` (inotify, local filesystems) or `poll` (NFS/CIFS, where inotify sees nothing).
    pub mode: WatchMode,
    /// Notify mode: full rescan this often, in case events were lost.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Poll mode: how often the inbox is listed.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A file found by a scan counts as complete once its size and mtime are unchanged this long.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// A file that changed while it was loaded is handed back and claimed again after this
    /// delay, doubled each time it happens again in a row.
    #[serde(with = "humantime_serde")]
    pub changed_backoff: Duration,
    /// Longest delay before a file that keeps changing is claimed again.
    #[serde(with = "humantime_serde")]
    pub changed_backoff_max: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            mode: WatchMode::Notify,
            rescan_interval: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            settle: Duration::from_secs(5),
            changed_backoff: Duration::from_secs(10),
            changed_backoff_max: Duration::from_secs(15 * 60),
        }
    }
}

/// `[database]`: cluster, keyspace, tables, consistency, credentials and TLS. Its `Debug` hides
/// the password.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `host[:port]` of one or more nodes; the driver discovers the rest of the cluster.
    pub contact_points: Vec<String>,
    /// Keyspace holding the bars and the load history (created if missing).
    pub keyspace: String,
    /// Table of one-minute bars, partitioned by (symbol, month bucket).
    pub bars_table: String,
    /// Table with one row per loaded file content (shared by every instance).
    pub history_table: String,
    /// Table of day cells: one row per (symbol, exchange-local day), partitioned by (symbol,
    /// month bucket). Created with the schema; not written or read yet.
    pub days_table: String,
    /// Extra CQL table options for the bars table (`WITH ... AND <this>`), e.g. compaction.
    pub bars_table_options: String,
    /// Keyspace replication used when the keyspace is created.
    pub replication: ReplicationConfig,
    /// Data center whose nodes are preferred (empty: no preference; set it in multi-DC clusters).
    pub local_datacenter: String,
    /// Consistency level of reads and writes.
    pub consistency: String,
    /// Client-side timeout of one request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Timeout for opening a connection to a node.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// User name for password authentication (empty: no authentication).
    pub username: String,
    /// Password (prefer `password_file`, which keeps it out of the config).
    pub password: Secret,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// TLS to the cluster.
    pub tls: TlsConfig,
    /// Create the keyspace and tables when missing (false: only check them; never any DDL).
    pub manage_schema: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            contact_points: vec![format!("127.0.0.1:{DEFAULT_CQL_PORT}")],
            keyspace: "market_data".into(),
            bars_table: "bars_1min".into(),
            history_table: "load_history".into(),
            days_table: "bars_1min_days".into(),
            bars_table_options: String::new(),
            replication: ReplicationConfig::default(),
            local_datacenter: String::new(),
            consistency: "LOCAL_QUORUM".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            username: String::new(),
            password: Secret::default(),
            password_file: None,
            tls: TlsConfig::default(),
            manage_schema: true,
        }
    }
}

/// `[database.replication]`: the keyspace's replication strategy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// `SimpleStrategy` (one DC, dev) or `NetworkTopologyStrategy` (production).
    pub class: String,
    /// Replicas for `SimpleStrategy`.
    pub factor: u32,
    /// Replicas per data center for `NetworkTopologyStrategy`.
    pub datacenters: BTreeMap<String, u32>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            class: "SimpleStrategy".into(),
            factor: 1,
            datacenters: BTreeMap::new(),
        }
    }
}

/// `[database.tls]`: encryption to the cluster.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Use TLS for every connection.
    pub enabled: bool,
    /// PEM file of the CA(s) that signed the nodes' certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Name the nodes' certificates are verified against, instead of each node's IP address.
    pub server_name: Option<String>,
}

/// `[paths]`: the inbox and the folders the daemon keeps.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// Folder watched for new bar files.
    pub inbox: PathBuf,
    /// Parent of `processing/`, `done/`, `failed/` and `dead-letter/`; must be on the same
    /// filesystem as the inbox, since files are claimed by rename.
    pub state_root: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            inbox: PathBuf::from("/var/lib/bar-ingest/inbox"),
            state_root: PathBuf::from("/var/lib/bar-ingest"),
        }
    }
}

/// `[input]`: how the vendor files are to be read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// IANA time zone of the naive timestamps in the files (the exchange's).
    pub timezone: String,
    /// The price adjustment the store holds: `split` (FirstRate `adjsplit`), `split_dividend`
    /// (`adjsplitdiv`) or `unadjusted` (`UNADJUSTED`). A file whose name states another is
    /// refused (`other_adjustment`); a name that states none is accepted.
    pub adjustment: String,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            timezone: "America/New_York".into(),
            adjustment: Adjustment::default().name().into(),
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `ip:port` for `/metrics`, `/healthz`, `/readyz` (loopback unless you mean otherwise).
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// `[database]` after validation: parsed values only.
#[derive(Debug, Clone)]
pub struct Database {
    /// Contact points as `host:port` (from the file, or from `BAR_INGEST_CONTACT_POINTS`).
    pub contact_points: Vec<String>,
    pub keyspace: String,
    pub bars_table: String,
    pub history_table: String,
    pub days_table: String,
    /// Extra CQL table options for the bars table (`WITH ... AND <this>`).
    pub bars_table_options: String,
    pub replication: ReplicationConfig,
    /// Preferred data center (empty: none).
    pub local_datacenter: String,
    pub consistency: scylla::statement::Consistency,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// User name and password (from `password` or the first line of `password_file`), if any.
    pub credentials: Option<(String, Secret)>,
    pub tls: TlsConfig,
    /// Whether start-up may create a missing keyspace or table (else it only checks).
    pub manage_schema: bool,
}

/// `[ingest]` after validation, with the instance name resolved.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// This instance's name (from `ingest.instance`, else the host name).
    pub instance: String,
    pub batch_rows: usize,
    pub batch_max_bytes: usize,
    /// The bounds and the start of the adaptive limit on batches in flight.
    pub in_flight: InFlightBounds,
    /// The caps on rows and bytes sent per second.
    pub pace: PaceLimits,
    pub files_in_parallel: usize,
    pub reject_threshold: f64,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub shutdown_deadline: Duration,
}

/// The adaptive limit on batches in flight: it starts at `initial` and stays within
/// `min..=max` (1 <= min <= initial <= max).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightBounds {
    pub min: usize,
    pub initial: usize,
    pub max: usize,
}

/// Caps on what is sent to the cluster per second (0: no cap). Bytes are the batches'
/// estimated size, the estimate `ingest.batch_max_bytes` bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceLimits {
    pub rows_per_second: u64,
    pub bytes_per_second: u64,
}

/// Settings after validation: parsed values only, each section checked on its own; every value
/// here is known to be usable, and `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file these settings came from (None: built-in defaults).
    pub source: Option<PathBuf>,
    pub database: Database,
    pub paths: PathsConfig,
    pub ingest: Ingest,
    pub watch: WatchConfig,
    /// The exchange time zone of naive input times.
    pub timezone: Tz,
    /// The price adjustment the store holds (`input.adjustment`).
    pub adjustment: Adjustment,
    /// `storage.layout` as configured (None: decided by what the keyspace holds, see
    /// `store::resolve_layout`).
    pub layout: Option<StorageLayout>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_listen: SocketAddr,
    /// Retention of the archive folders and the free-space floor.
    pub retention: RetentionConfig,
    /// The budget of each file's dead-letter log.
    pub dead_letter: DeadLetterConfig,
    /// The `[[source]]` rules in file order, without the built-in default rule.
    pub sources: Vec<SourceRule>,
    /// `coverage.watch`, checked and sorted, and `coverage.refresh_interval`.
    pub watch_symbols: Vec<crate::model::Symbol>,
    pub watch_refresh: std::time::Duration,
    /// The file as read, defaults filled in: what a reload compares key by key (changes made
    /// to the fields above afterwards are not seen there).
    pub(crate) as_read: Config,
}

impl Settings {
    /// The first rule whose pattern matches the unit's own name, else the first whose pattern
    /// matches the delivery's name, else the built-in default rule.
    pub fn rule_for(&self, unit_name: &str, delivery_name: &str) -> &SourceRule {
        sources::select(&self.sources, unit_name, delivery_name)
    }

    /// Reads, parses and validates a config file. `contact_points_override` (from
    /// `BAR_INGEST_CONTACT_POINTS`) replaces `database.contact_points` when given.
    pub fn load(path: &Path, contact_points_override: Option<&str>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            file: path.to_owned(),
            message: parse_error_message(&text, &e),
        })?;
        Self::validate(config, Some(path), contact_points_override)
    }

    /// The settings the command line finds with no flags: the file `path`, else the file named
    /// by `BAR_INGEST_CONFIG`, else the built-in defaults; contact points from
    /// `BAR_INGEST_CONTACT_POINTS` when it is set. (For library users such as the Python
    /// package, which take no command line.)
    pub fn from_environment(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env_path = std::env::var_os(ENV_CONFIG).filter(|p| !p.is_empty());
        let points = std::env::var(ENV_CONTACT_POINTS)
            .ok()
            .filter(|p| !p.is_empty());
        match path.or(env_path.as_deref().map(Path::new)) {
            Some(file) => Self::load(file, points.as_deref()),
            None => Self::defaults(points.as_deref()),
        }
    }

    /// Built-in defaults (no file), with the same override and validation.
    pub fn defaults(contact_points_override: Option<&str>) -> Result<Self, ConfigError> {
        Self::validate(Config::default(), None, contact_points_override)
    }

    /// Checks every value that parsing alone cannot, section by section, and keeps the values
    /// parsed on the way. The first unusable value is reported with the file and its key.
    pub fn validate(
        config: Config,
        source: Option<&Path>,
        contact_points_override: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let file = source
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("<built-in defaults>"));
        let in_file = |e: KeyError| ConfigError::Invalid {
            file: file.clone(),
            key: e.key,
            reason: e.reason,
        };
        let as_read = config.clone();
        let Config {
            database,
            paths,
            input,
            ingest,
            watch,
            metrics,
            retention,
            dead_letter,
            storage,
            source: source_tables,
            coverage,
        } = config;

        let database = database
            .validate(contact_points_override)
            .map_err(in_file)?;
        paths.validate().map_err(in_file)?;
        let ingest = ingest.validate().map_err(in_file)?;
        watch.validate().map_err(in_file)?;
        let (timezone, adjustment) = input.validate().map_err(in_file)?;
        let metrics_listen = metrics.validate().map_err(in_file)?;
        retention.validate().map_err(in_file)?;
        dead_letter.validate().map_err(in_file)?;
        let sources = sources::validate(source_tables).map_err(in_file)?;
        let watch_symbols = coverage.validate().map_err(in_file)?;

        Ok(Self {
            source: source.map(Path::to_owned),
            database,
            paths,
            ingest,
            watch,
            timezone,
            adjustment,
            metrics_listen,
            retention,
            dead_letter,
            layout: storage.layout,
            sources,
            watch_symbols,
            watch_refresh: coverage.refresh_interval,
            as_read,
        })
    }
}

/// A TOML error as `TOML parse error at line L, column C: message`, without the text of the line
/// (it may hold a password) and without the value an "invalid type/value" message would quote.
fn parse_error_message(text: &str, e: &toml::de::Error) -> String {
    let mut message = e.message().trim_end().to_owned();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((kind, after)) = rest.split_once(" `")
            && let Some((_value, tail)) = after.split_once('`')
        {
            message = format!("{prefix}{kind}{tail}");
        }
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("TOML parse error at line {line}, column {column}: {message}")
        }
        None => format!("TOML parse error: {message}"),
    }
}

/// A value that parsed but is not usable: its full key (`database.tls.ca_file`) and why. Each
/// section's `validate` returns it; [`Settings::validate`] adds the file ([`ConfigError::Invalid`]).
#[derive(Debug)]
struct KeyError {
    key: String,
    reason: String,
}

impl KeyError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl DatabaseConfig {
    fn validate(self, contact_points_override: Option<&str>) -> Result<Database, KeyError> {
        let contact_points = self.contact_points(contact_points_override)?;
        self.check_names()?;
        self.replication.validate()?;
        let consistency = parse_consistency(&self.consistency)
            .map_err(|reason| KeyError::new("database.consistency", reason))?;
        for (key, timeout) in [
            ("database.request_timeout", self.request_timeout),
            ("database.connect_timeout", self.connect_timeout),
        ] {
            if timeout.is_zero() {
                return Err(KeyError::new(key, "must be above zero"));
            }
        }
        let password = self.password()?;
        self.tls.validate()?;
        Ok(Database {
            contact_points,
            keyspace: self.keyspace,
            bars_table: self.bars_table,
            history_table: self.history_table,
            days_table: self.days_table,
            bars_table_options: self.bars_table_options,
            replication: self.replication,
            local_datacenter: self.local_datacenter,
            consistency,
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            credentials: password.map(|p| (self.username, p)),
            tls: self.tls,
            manage_schema: self.manage_schema,
        })
    }

    /// The contact points as `host:port`: from `override_list` (comma-separated, from
    /// [`ENV_CONTACT_POINTS`]) when given, else from the file.
    fn contact_points(&self, override_list: Option<&str>) -> Result<Vec<String>, KeyError> {
        let (key, raw): (String, Vec<String>) = match override_list {
            Some(list) => (
                format!("database.contact_points (from {ENV_CONTACT_POINTS})"),
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            None => (
                "database.contact_points".to_owned(),
                self.contact_points.clone(),
            ),
        };
        if raw.is_empty() {
            return Err(KeyError::new(key, "at least one contact point is needed"));
        }
        raw.iter()
            .map(|p| {
                parse_contact_point(p)
                    .map_err(|reason| KeyError::new(&key, format!("`{p}` is not usable: {reason}")))
            })
            .collect()
    }

    /// The keyspace and table names, and the table options spliced into the DDL.
    fn check_names(&self) -> Result<(), KeyError> {
        for (key, name) in [
            ("database.keyspace", &self.keyspace),
            ("database.bars_table", &self.bars_table),
            ("database.history_table", &self.history_table),
            ("database.days_table", &self.days_table),
        ] {
            check_identifier(name).map_err(|reason| KeyError::new(key, reason))?;
        }
        if self.bars_table == self.history_table {
            return Err(KeyError::new(
                "database.history_table",
                "must differ from database.bars_table",
            ));
        }
        if self.days_table == self.bars_table || self.days_table == self.history_table {
            return Err(KeyError::new(
                "database.days_table",
                "must differ from database.bars_table and database.history_table",
            ));
        }
        if self.bars_table_options.contains(';') {
            return Err(KeyError::new(
                "database.bars_table_options",
                "must be table options only (no `;`)",
            ));
        }
        Ok(())
    }

    /// The password from `password` or the first line of `password_file` (never both), and
    /// only with a user name.
    fn password(&self) -> Result<Option<Secret>, KeyError> {
        let password = match (&self.password_file, self.password.is_empty()) {
            (Some(_), false) => {
                return Err(KeyError::new(
                    "database.password_file",
                    "set either `password` or `password_file`, not both",
                ));
            }
            (Some(pf), true) => {
                private_file("database.password_file", pf)?;
                let text = std::fs::read_to_string(pf).map_err(|e| {
                    KeyError::new(
                        "database.password_file",
                        format!("cannot read {}: {e}", pf.display()),
                    )
                })?;
                Some(Secret::new(text.lines().next().unwrap_or("")))
            }
            (None, false) => Some(self.password.clone()),
            (None, true) => None,
        };
        if password.is_some() && self.username.is_empty() {
            return Err(KeyError::new(
                "database.username",
                "a password is set but no user name",
            ));
        }
        Ok(password)
    }
}

/// Refuses a secret file that its group or others may read or write: whoever can read it has the
/// password or the key.
fn private_file(key: &str, path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| KeyError::new(key, format!("cannot read {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::new(
            key,
            format!(
                "{} is open to its group or others (mode {:04o}); `chmod 600` it",
                path.display(),
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

impl ReplicationConfig {
    fn validate(&self) -> Result<(), KeyError> {
        let invalid = |key: &str, reason: String| {
            KeyError::new(format!("database.replication.{key}"), reason)
        };
        match self.class.as_str() {
            "SimpleStrategy" => {
                if self.factor == 0 {
                    return Err(invalid("factor", "must be at least 1".into()));
                }
                if !self.datacenters.is_empty() {
                    return Err(invalid(
                        "datacenters",
                        "only used with NetworkTopologyStrategy".into(),
                    ));
                }
            }
            "NetworkTopologyStrategy" => {
                if self.datacenters.is_empty() {
                    return Err(invalid(
                        "datacenters",
                        "NetworkTopologyStrategy needs at least one `dc = replicas` entry".into(),
                    ));
                }
                for (dc, n) in &self.datacenters {
                    if dc.is_empty() || dc.contains('\'') || *n == 0 {
                        return Err(invalid("datacenters", format!("bad entry `{dc} = {n}`")));
                    }
                }
            }
            other => {
                return Err(invalid(
                    "class",
                    format!("`{other}`: use SimpleStrategy or NetworkTopologyStrategy"),
                ));
            }
        }
        Ok(())
    }
}

impl TlsConfig {
    /// `ca_file` with TLS on; no file without TLS; files exist; certificate and key together.
    fn validate(&self) -> Result<(), KeyError> {
        if self.enabled && self.ca_file.is_none() {
            return Err(KeyError::new(
                "database.tls.ca_file",
                "required when database.tls.enabled is true",
            ));
        }
        for (key, file) in [
            ("database.tls.ca_file", &self.ca_file),
            ("database.tls.cert_file", &self.cert_file),
            ("database.tls.key_file", &self.key_file),
        ] {
            if let Some(f) = file {
                if !self.enabled {
                    return Err(KeyError::new(key, "set, but database.tls.enabled is false"));
                }
                if !f.is_file() {
                    return Err(KeyError::new(key, format!("no such file: {}", f.display())));
                }
            }
        }
        if let Some(key) = &self.key_file {
            private_file("database.tls.key_file", key)?;
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(KeyError::new(
                "database.tls.key_file",
                "cert_file and key_file go together",
            ));
        }
        self.validate_server_name()
    }
}

impl PathsConfig {
    fn validate(&self) -> Result<(), KeyError> {
        for (key, path) in [
            ("paths.inbox", &self.inbox),
            ("paths.state_root", &self.state_root),
        ] {
            if path.as_os_str().is_empty() {
                return Err(KeyError::new(key, "must not be empty"));
            }
        }
        Ok(())
    }
}

impl IngestConfig {
    /// Checks the limits and resolves this instance's name.
    fn validate(self) -> Result<Ingest, KeyError> {
        for (key, value) in [
            ("ingest.batch_rows", self.batch_rows),
            ("ingest.batch_max_bytes", self.batch_max_bytes),
            ("ingest.files_in_parallel", self.files_in_parallel),
        ] {
            if value == 0 {
                return Err(KeyError::new(key, "must be at least 1"));
            }
        }
        if self.batch_max_bytes > MAX_BATCH_BYTES {
            return Err(KeyError::new(
                "ingest.batch_max_bytes",
                format!(
                    "{} is above ScyllaDB's batch warning threshold ({MAX_BATCH_BYTES})",
                    self.batch_max_bytes
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.reject_threshold) {
            return Err(KeyError::new(
                "ingest.reject_threshold",
                format!("{} is not a share between 0 and 1", self.reject_threshold),
            ));
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return Err(KeyError::new(
                "ingest.retry_max",
                "retry_initial must be above zero and retry_max at least retry_initial",
            ));
        }
        Ok(Ingest {
            instance: self.instance_name()?,
            batch_rows: self.batch_rows,
            batch_max_bytes: self.batch_max_bytes,
            in_flight: self.in_flight()?,
            pace: self.pace()?,
            files_in_parallel: self.files_in_parallel,
            reject_threshold: self.reject_threshold,
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
            shutdown_deadline: self.shutdown_deadline,
        })
    }

    /// The bounds of the adaptive limit, the unset ones from the defaults kept within the set
    /// ones (a file from before the limit adapted, with only `max_batches_in_flight`, still
    /// validates: its limit adapts below that maximum).
    fn in_flight(&self) -> Result<InFlightBounds, KeyError> {
        let max = self.max_batches_in_flight;
        if !(1..=MAX_IN_FLIGHT_CAP).contains(&max) {
            return Err(KeyError::new(
                "ingest.max_batches_in_flight",
                format!("{max} is not from 1 to {MAX_IN_FLIGHT_CAP}"),
            ));
        }
        let min = self
            .min_batches_in_flight
            .unwrap_or(DEFAULT_MIN_IN_FLIGHT.min(max));
        if !(1..=max).contains(&min) {
            return Err(KeyError::new(
                "ingest.min_batches_in_flight",
                format!("{min} is not from 1 to ingest.max_batches_in_flight ({max})"),
            ));
        }
        let initial = self
            .initial_batches_in_flight
            .unwrap_or(DEFAULT_INITIAL_IN_FLIGHT.clamp(min, max));
        if !(min..=max).contains(&initial) {
            return Err(KeyError::new(
                "ingest.initial_batches_in_flight",
                format!(
                    "{initial} is outside the bounds ingest.min_batches_in_flight ({min}) to \
                     ingest.max_batches_in_flight ({max})"
                ),
            ));
        }
        Ok(InFlightBounds { min, initial, max })
    }

    /// The caps per second: none, or at least one full batch per second (below that, batches
    /// would go out one every few seconds: lower `batch_rows` for a trickle).
    fn pace(&self) -> Result<PaceLimits, KeyError> {
        for (key, cap, batch, batch_key) in [
            (
                "ingest.max_rows_per_second",
                self.max_rows_per_second,
                self.batch_rows,
                "ingest.batch_rows",
            ),
            (
                "ingest.max_bytes_per_second",
                self.max_bytes_per_second,
                self.batch_max_bytes,
                "ingest.batch_max_bytes",
            ),
        ] {
            if cap != 0 && cap < batch as u64 {
                return Err(KeyError::new(
                    key,
                    format!(
                        "{cap} is below one batch ({batch_key} = {batch}); use 0 for no cap, \
                         or at least one batch per second"
                    ),
                ));
            }
        }
        Ok(PaceLimits {
            rows_per_second: self.max_rows_per_second,
            bytes_per_second: self.max_bytes_per_second,
        })
    }

    /// `instance`, else the host name; it names a folder, so only a safe alphabet.
    fn instance_name(&self) -> Result<String, KeyError> {
        let instance = if self.instance.is_empty() {
            host_name()
        } else {
            self.instance.clone()
        };
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if instance.is_empty() || !instance.chars().all(safe) {
            return Err(KeyError::new(
                "ingest.instance",
                format!("`{instance}`: use letters, digits, `-`, `_` or `.` (it names a folder)"),
            ));
        }
        // `processing/.` is processing/ itself, `processing/..` the state root.
        if instance == "." || instance == ".." {
            return Err(KeyError::new(
                "ingest.instance",
                format!(
                    "`{instance}` is not a folder name of its own (it names the folder \
                     processing/<instance>): use letters or digits, e.g. the host's name"
                ),
            ));
        }
        Ok(instance)
    }
}

impl WatchConfig {
    fn validate(&self) -> Result<(), KeyError> {
        for (key, interval) in [
            ("watch.rescan_interval", self.rescan_interval),
            ("watch.poll_interval", self.poll_interval),
            ("watch.changed_backoff", self.changed_backoff),
        ] {
            if interval.is_zero() {
                return Err(KeyError::new(key, "must be above zero"));
            }
        }
        if self.changed_backoff_max < self.changed_backoff {
            return Err(KeyError::new(
                "watch.changed_backoff_max",
                "must be at least watch.changed_backoff",
            ));
        }
        Ok(())
    }
}

impl InputConfig {
    /// The exchange time zone and the adjustment the store holds.
    fn validate(&self) -> Result<(Tz, Adjustment), KeyError> {
        let tz = self.timezone.parse().map_err(|_| {
            KeyError::new(
                "input.timezone",
                format!(
                    "`{}` is not an IANA time zone name (e.g. America/New_York)",
                    self.timezone
                ),
            )
        })?;
        let adjustment = Adjustment::from_name(&self.adjustment).ok_or_else(|| {
            let names: Vec<&str> = Adjustment::ALL.iter().map(|a| a.name()).collect();
            KeyError::new(
                "input.adjustment",
                format!("`{}`: use one of {}", self.adjustment, names.join(", ")),
            )
        })?;
        Ok((tz, adjustment))
    }
}

impl MetricsConfig {
    /// The listen address.
    fn validate(&self) -> Result<SocketAddr, KeyError> {
        self.listen.parse().map_err(|e| {
            KeyError::new(
                "metrics.listen",
                format!("`{}` is not an ip:port address: {e}", self.listen),
            )
        })
    }
}

/// Default upper bound of the adaptive limit on batches in flight. Under a steady load the
/// limit climbs to it (see docs/scaling.md): it caps the queueing a loader may add on the cluster.
const DEFAULT_MAX_IN_FLIGHT: usize = 128;
/// Default lower bound of the adaptive limit.
const DEFAULT_MIN_IN_FLIGHT: usize = 4;
/// Default start of the adaptive limit.
const DEFAULT_INITIAL_IN_FLIGHT: usize = 32;
/// Most batches in flight a configuration may allow: each holds up to `batch_max_bytes`.
const MAX_IN_FLIGHT_CAP: usize = 1024;

/// ScyllaDB's batch size warning threshold: our batches stay below it.
pub(crate) const MAX_BATCH_BYTES: usize = 128 * 1024;

/// The host name (gethostname(2), which needs no /proc), used as the default instance name.
fn host_name() -> String {
    gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned()
}

/// `host[:port]`, `[v6]:port` or a bare IPv6 address, normalised to `host:port`.
fn parse_contact_point(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("empty".into());
    }
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_CQL_PORT).to_string());
    }
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err("port 0 is not a port".into());
        }
        return Ok(addr.to_string());
    }
    if raw.starts_with('[') {
        return Err("not a valid [IPv6]:port".into());
    }
    let (host, port) = match raw.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p
                .parse()
                .map_err(|_| format!("port `{p}` is not a number from 1 to 65535"))?;
            if port == 0 {
                return Err("port 0 is not a port".into());
            }
            (h, port)
        }
        None => (raw, DEFAULT_CQL_PORT),
    };
    if host.is_empty() {
        return Err("host name missing".into());
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("`{host}` is not a valid IPv4 address"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(format!("{host}:{port}"))
}

/// CQL identifiers we create: unquoted, so letters, digits and `_`, starting with a letter.
fn check_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || name.len() > 48 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "`{name}` is not a valid name: use 1 to 48 letters, digits or `_`, starting with a letter"
        ));
    }
    Ok(())
}

fn parse_consistency(s: &str) -> Result<scylla::statement::Consistency, String> {
    use scylla::statement::Consistency::*;
    Ok(match s.to_ascii_uppercase().as_str() {
        "ANY" => Any,
        "ONE" => One,
        "TWO" => Two,
        "THREE" => Three,
        "QUORUM" => Quorum,
        "ALL" => All,
        "LOCAL_QUORUM" => LocalQuorum,
        "EACH_QUORUM" => EachQuorum,
        "LOCAL_ONE" => LocalOne,
        _ => {
            return Err(format!(
                "`{s}` is not a consistency level (ONE, QUORUM, LOCAL_QUORUM, LOCAL_ONE, ALL, ...)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_points_parse_and_normalise() {
        assert_eq!(parse_contact_point("127.0.0.1").unwrap(), "127.0.0.1:9042");
        assert_eq!(
            parse_contact_point("db-1.example:19042").unwrap(),
            "db-1.example:19042"
        );
        assert_eq!(parse_contact_point("scylla").unwrap(), "scylla:9042");
        assert_eq!(parse_contact_point("::1").unwrap(), "[::1]:9042");
        assert_eq!(parse_contact_point("[::1]:9043").unwrap(), "[::1]:9043");
        for bad in [
            "",
            "host:99999",
            "host:",
            "999.1.1.1",
            "bad_host!",
            ":9042",
            "[::1",
            "h:0",
        ] {
            assert!(
                parse_contact_point(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(check_identifier("bars_1min").is_ok());
        for bad in ["", "1bars", "bars-1", "bars;drop", &"x".repeat(49)] {
            assert!(check_identifier(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = toml::from_str::<Config>("[database]\ncontact_pointz = []\n").unwrap_err();
        assert!(err.to_string().contains("contact_pointz"), "{err}");
    }

    #[test]
    fn env_override_replaces_contact_points() {
        let s = Settings::defaults(Some("10.1.2.3, db2:9043")).unwrap();
        assert_eq!(s.database.contact_points, vec!["10.1.2.3:9042", "db2:9043"]);
        let err = Settings::defaults(Some("db:notaport"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(ENV_CONTACT_POINTS) && err.contains("notaport"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[input]\nadjustment = \"adjsplit\"\n", "input.adjustment"),
            ("[input]\ntimezone = \"Mars/Olympus\"\n", "input.timezone"),
            ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
            (
                "[database]\nconsistency = \"MOST\"\n",
                "database.consistency",
            ),
            ("[database]\nkeyspace = \"a-b\"\n", "database.keyspace"),
            (
                "[database.replication]\nclass = \"Fancy\"\n",
                "database.replication.class",
            ),
            (
                "[database]\npassword_file = \"/no/such/file\"\nusername = \"u\"\n",
                "database.password_file",
            ),
            (
                "[database.tls]\nenabled = true\nca_file = \"/no/such/ca.pem\"\n",
                "database.tls.ca_file",
            ),
        ];
        for (text, key) in cases {
            let config: Config = toml::from_str(text).unwrap();
            let err = Settings::validate(config, Some(Path::new("x.toml")), None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.starts_with("x.toml"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        const SECRET: &str = "hunter2-not-for-logs";
        let text = format!("[database]\nusername = \"u\"\npassword = \"{SECRET}\"\n");
        let config: Config = toml::from_str(&text).unwrap();
        let settings = Settings::validate(config.clone(), None, None).unwrap();
        let (user, password) = settings.database.credentials.clone().unwrap();
        assert_eq!((user.as_str(), password.expose()), ("u", SECRET));
        for shown in [
            format!("{settings:?}"),
            format!("{settings:#?}"),
            format!("{:?}", settings.database),
        ] {
            assert!(!shown.contains(SECRET), "password shown: {shown}");
            assert!(shown.contains("\"<redacted>\""), "{shown}");
        }
        let raw = format!("{config:?}");
        assert!(!raw.contains(SECRET), "password shown: {raw}");
        assert!(raw.contains("password: \"<redacted>\""), "{raw}");
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A password file or TLS key that its group or others can open is refused, naming the key
    /// and the mode; 0600 and 0400 are accepted.
    #[test]
    fn secret_files_open_to_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "pw\n").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o640, false),
            (0o644, false),
            (0o666, false),
        ] {
            set_mode(&password, mode);
            let mut config = Config::default();
            config.database.username = "u".into();
            config.database.password_file = Some(password.clone());
            match Settings::validate(config, None, None) {
                Ok(_) => assert!(ok, "mode {mode:o} accepted"),
                Err(e) => {
                    assert!(!ok, "mode {mode:o} refused: {e}");
                    let shown = e.to_string();
                    assert!(shown.contains("database.password_file"), "{shown}");
                    assert!(shown.contains(&format!("{mode:04o}")), "{shown}");
                }
            }
        }
        let (ca, cert, key) = (
            dir.path().join("ca"),
            dir.path().join("cert"),
            dir.path().join("key"),
        );
        for f in [&ca, &cert, &key] {
            std::fs::write(f, "x").unwrap();
        }
        set_mode(&key, 0o644);
        let mut config = Config::default();
        config.database.tls = TlsConfig {
            enabled: true,
            ca_file: Some(ca),
            cert_file: Some(cert),
            key_file: Some(key),
            server_name: None,
        };
        let err = Settings::validate(config, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database.tls.key_file") && err.contains("0644"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_never_shows_a_password_read_from_a_file() {
        const SECRET: &str = "from-a-file-not-for-logs";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, format!("{SECRET}\nsecond line ignored\n")).unwrap();
        set_mode(&file, 0o600);
        let mut config = Config::default();
        config.database.username = "u".into();
        config.database.password_file = Some(file);
        let settings = Settings::validate(config, None, None).unwrap();
        let (_, password) = settings.database.credentials.clone().unwrap();
        assert_eq!(password.expose(), SECRET);
        let shown = format!("{settings:?}");
        assert!(!shown.contains(SECRET), "password shown: {shown}");
        assert!(
            shown.contains("credentials: Some((\"u\", \"<redacted>\"))"),
            "{shown}"
        );
    }

    fn ingest(text: &str) -> Ingest {
        let config: Config = toml::from_str(text).unwrap();
        Settings::validate(config, None, None).unwrap().ingest
    }

    /// `.` and `..` passed as instance names: `processing/.` is processing/ itself (resume then
    /// took every instance's folder for a file of its own), `processing/..` the state root.
    #[test]
    fn an_instance_named_dot_or_dot_dot_was_accepted() {
        for name in [".", ".."] {
            let config: Config =
                toml::from_str(&format!("[ingest]\ninstance = \"{name}\"\n")).unwrap();
            let err = Settings::validate(config, None, None)
                .map(|s| s.ingest.instance)
                .unwrap_err()
                .to_string();
            assert!(err.contains("ingest.instance"), "{err}");
        }
        assert_eq!(ingest("[ingest]\ninstance = \"a.b\"\n").instance, "a.b");
    }

    #[test]
    fn in_flight_bounds_default_and_files_from_before_stay_valid() {
        let bounds = |min, initial, max| InFlightBounds { min, initial, max };
        assert_eq!(ingest("").in_flight, bounds(4, 32, 128));
        // A file written for the fixed bound: the limit adapts below it.
        assert_eq!(
            ingest("[ingest]\nmax_batches_in_flight = 64\n").in_flight,
            bounds(4, 32, 64)
        );
        assert_eq!(
            ingest("[ingest]\nmax_batches_in_flight = 2\n").in_flight,
            bounds(2, 2, 2)
        );
        assert_eq!(
            ingest("[ingest]\nmax_batches_in_flight = 16\n").in_flight,
            bounds(4, 16, 16)
        );
        // A fixed limit: both bounds the same.
        let fixed = "[ingest]\nmin_batches_in_flight = 48\nmax_batches_in_flight = 48\n";
        assert_eq!(ingest(fixed).in_flight, bounds(48, 48, 48));
        assert_eq!(
            ingest("[ingest]\nmin_batches_in_flight = 40\n").in_flight,
            bounds(40, 40, 128)
        );
    }

    #[test]
    fn pace_caps_default_to_none_and_take_one_batch_per_second_at_least() {
        assert_eq!(ingest("").pace, PaceLimits::default());
        let caps = "[ingest]\nmax_rows_per_second = 50000\nmax_bytes_per_second = 32768\n";
        assert_eq!(
            ingest(caps).pace,
            PaceLimits {
                rows_per_second: 50_000,
                bytes_per_second: 32_768,
            }
        );
        // The floor follows the batch size.
        let small = "[ingest]\nbatch_rows = 10\nmax_rows_per_second = 10\n";
        assert_eq!(ingest(small).pace.rows_per_second, 10);
        let config: Config = toml::from_str("[ingest]\nmax_rows_per_second = 99\n").unwrap();
        let err = Settings::validate(config, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ingest.batch_rows = 100"), "{err}");
    }

    #[test]
    fn every_section_names_its_key() {
        let cases = [
            (
                "[database]\nrequest_timeout = \"0s\"\n",
                "database.request_timeout",
            ),
            (
                "[database]\nbars_table = \"t\"\nhistory_table = \"t\"\n",
                "database.history_table",
            ),
            (
                "[database]\ndays_table = \"load_history\"\n",
                "database.days_table",
            ),
            ("[database]\npassword = \"p\"\n", "database.username"),
            (
                "[database.replication]\nfactor = 0\n",
                "database.replication.factor",
            ),
            (
                "[database.tls]\ncert_file = \"/etc/hostname\"\n",
                "database.tls.cert_file",
            ),
            ("[paths]\nstate_root = \"\"\n", "paths.state_root"),
            ("[ingest]\nbatch_rows = 0\n", "ingest.batch_rows"),
            (
                "[ingest]\nreject_threshold = 1.5\n",
                "ingest.reject_threshold",
            ),
            ("[ingest]\ninstance = \"a/b\"\n", "ingest.instance"),
            (
                "[ingest]\nmax_batches_in_flight = 0\n",
                "ingest.max_batches_in_flight",
            ),
            (
                "[ingest]\nmax_batches_in_flight = 1025\n",
                "ingest.max_batches_in_flight",
            ),
            (
                "[ingest]\nmin_batches_in_flight = 0\n",
                "ingest.min_batches_in_flight",
            ),
            (
                "[ingest]\nmax_batches_in_flight = 8\nmin_batches_in_flight = 9\n",
                "ingest.min_batches_in_flight",
            ),
            (
                "[ingest]\nmax_batches_in_flight = 16\ninitial_batches_in_flight = 17\n",
                "ingest.initial_batches_in_flight",
            ),
            (
                "[ingest]\nmin_batches_in_flight = 8\ninitial_batches_in_flight = 7\n",
                "ingest.initial_batches_in_flight",
            ),
            (
                "[ingest]\nmax_rows_per_second = 99\n",
                "ingest.max_rows_per_second",
            ),
            (
                "[ingest]\nmax_bytes_per_second = 32767\n",
                "ingest.max_bytes_per_second",
            ),
            ("[watch]\npoll_interval = \"0s\"\n", "watch.poll_interval"),
        ];
        for (text, key) in cases {
            let config: Config = toml::from_str(text).unwrap();
            let err = Settings::validate(config, Some(Path::new("x.toml")), None).unwrap_err();
            match err {
                ConfigError::Invalid { key: named, .. } => assert_eq!(named, key, "{text}"),
                other => panic!("{text}: {other}"),
            }
        }
    }
}
